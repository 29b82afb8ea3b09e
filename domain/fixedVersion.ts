// "Is the installed version at least the fixed one?" — the question an SSH package check answers.
// Ordering comes from domain/packages.ts (dpkg's and rpm's own algorithms); this adds how scanners
// state a fix: often one version per maintained branch ("1.1.1w, 3.0.7").
import { compareVersions, type PackageFamily } from './packages.ts';

/**
 * The installed version meets the fix when it is at least the fixed version of its own branch
 * (alternatives sharing its leading number), or, when no alternative shares its branch, at least the
 * lowest one. So 3.0.5 does not meet "1.1.1w, 3.0.7" although it is above 1.1.1w.
 */
export function meetsFixedVersion(family: PackageFamily, installed: string, fixed: string): boolean {
  const alternatives = fixed
    .split(/\s*,\s*/)
    .map((s) => s.trim())
    .filter(Boolean);
  if (alternatives.length === 0) return false;
  const branch = (v: string): string => /^[0-9]+/.exec(v.replace(/^\d+:/, ''))?.[0] ?? '';
  const sameBranch = alternatives.filter((f) => branch(f) === branch(installed));
  const candidates = sameBranch.length > 0 ? sameBranch : alternatives;
  return candidates.some((f) => compareVersions(family, installed, f) >= 0);
}
