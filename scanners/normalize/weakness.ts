// One exposure per (asset, weakness): a scanner check that lists several CVEs reports several
// weaknesses on that asset, each with its own lifecycle (fixing one CVE of a plugin does not fix the
// others, and KEV/EPSS differ per CVE). So a multi-CVE check fans out into one Finding per CVE, all
// sharing the check's ruleId; a check without CVE is keyed by "<scanner>:<rule id>".

import type { Finding } from '../../domain/finding.ts';

export type FindingWithoutKey = Omit<Finding, 'weaknessKey'>;

/** The findings of one check; `base` is consumed (the single-finding case reuses it, no copy). */
export function perCve(base: FindingWithoutKey, cves: readonly string[], fallbackKey: string): Finding[] {
  if (cves.length <= 1) return [Object.assign(base, { weaknessKey: cves[0] ?? fallbackKey })];
  return cves.map((cve) => ({ ...base, weaknessKey: cve }));
}
