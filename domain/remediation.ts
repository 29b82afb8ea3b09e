// Remediation units: what a person actually does. Exposures that one action fixes (same package
// upgrade on the same asset, for the same owner) form one unit, so a ticket, a chat message and a
// patch job are per unit, not per CVE. Pure: ids are derived from the facts, so every process
// computes the same unit for the same exposure.
import { sha256Hex } from './policy/sha256.ts';

export interface FixFacts {
  scope: string;
  owner?: string;
  assetId: number;
  /** Human name of the asset (hostname, image…), for the action text. */
  assetName: string;
  weaknessKey: string;
  package?: { name: string; type?: string; version?: string; fixedVersion?: string };
}

export interface FixAction {
  /** Groups exposures fixed by the same action on one asset: "pkg:deb:openssl" or "weakness:CVE-…". */
  key: string;
  /** What to do, in words. */
  action: string;
}

/** The fix for one exposure: upgrading its package when the scanner named one, else fixing the weakness. */
export function fixActionOf(f: FixFacts): FixAction {
  if (f.package?.name) {
    const p = f.package;
    const to = p.fixedVersion ? ` to ${p.fixedVersion} or later` : ' to a fixed version';
    return { key: `pkg:${p.type ?? 'any'}:${p.name}`, action: `Upgrade ${p.name}${to} on ${f.assetName}` };
  }
  return { key: `weakness:${f.weaknessKey}`, action: `Remediate ${f.weaknessKey} on ${f.assetName}` };
}

/** "ru:<scope>:<owner>:<asset>:<12 hex of the fix key>": readable, stable, short enough for an external ticket key. */
export function remediationUnitId(f: Pick<FixFacts, 'scope' | 'owner' | 'assetId'>, fixKey: string): string {
  return `ru:${f.scope}:${f.owner ?? 'unowned'}:${f.assetId}:${sha256Hex(fixKey).slice(0, 12)}`;
}

/**
 * A unit's action once every member is known: a package upgrade must reach the highest fixed version
 * any member needs ("openssl to 3.0.8" closes the CVE fixed in 3.0.7 too).
 */
export function unitAction(members: FixFacts[]): string {
  const first = members[0];
  if (!first) return '';
  const pkg = first.package;
  if (!pkg?.name) return fixActionOf(first).action;
  const versions = members.map((m) => m.package?.fixedVersion).filter((v): v is string => !!v);
  const highest = versions.sort(compareVersions).at(-1);
  return fixActionOf({ ...first, package: { ...pkg, fixedVersion: highest } }).action;
}

/**
 * Order version strings by their numeric and alphabetic runs ("1.10" after "1.9", "3.0.7" before
 * "3.0.8-r1"). Good enough to pick the highest of a few fixed versions; not a package manager's rules.
 */
export function compareVersions(a: string, b: string): number {
  const split = (v: string) => v.split(/(\d+)/).filter((s) => s !== '');
  const pa = split(a);
  const pb = split(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    if (!Number.isNaN(nx) && !Number.isNaN(ny)) {
      if (nx !== ny) return nx - ny;
    } else if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}
