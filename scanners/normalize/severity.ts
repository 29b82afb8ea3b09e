// Scanner severities → the normalized scale. Each scanner has its own words and numbers; these are
// the mappings they document (CVSS qualitative ranges; Nessus 0–4; Qualys levels 1–5).

import type { Severity } from '../../domain/finding.ts';

/** CVSS v3/v4 qualitative rating of a base score (0 → info). */
export function severityFromScore(score: number | undefined): Severity {
  if (score === undefined || !Number.isFinite(score) || score < 0) return 'unknown';
  if (score >= 9) return 'critical';
  if (score >= 7) return 'high';
  if (score >= 4) return 'medium';
  if (score > 0) return 'low';
  return 'info';
}

const LABELS: Readonly<Record<string, Severity>> = {
  critical: 'critical',
  urgent: 'critical',
  high: 'high',
  serious: 'high',
  medium: 'medium',
  moderate: 'medium',
  low: 'low',
  minimal: 'low',
  info: 'info',
  informational: 'info',
  information: 'info',
  none: 'info',
  log: 'info',
  debug: 'info',
  // One-letter forms used by Qualys PCI / HackerGuardian exports.
  c: 'critical',
  h: 'high',
  m: 'medium',
  l: 'low',
  i: 'info',
};

/** A severity word ("High", "medium", "Log", "M"); undefined when the word is not a known severity. */
export function severityFromLabel(label: string | undefined): Severity | undefined {
  if (label === undefined) return undefined;
  return LABELS[label.trim().toLowerCase()];
}

/** Nessus `severity` attribute: 0 info, 1 low, 2 medium, 3 high, 4 critical. */
export function severityFromNessus(level: number | undefined): Severity | undefined {
  switch (level) {
    case 0:
      return 'info';
    case 1:
      return 'low';
    case 2:
      return 'medium';
    case 3:
      return 'high';
    case 4:
      return 'critical';
    default:
      return undefined;
  }
}

/** Qualys severity level 1 (minimal) … 5 (urgent), as DefectDojo and Qualys' own CVSS mapping read it. */
export function severityFromQualys(level: number | undefined): Severity | undefined {
  switch (level) {
    case 1:
      return 'info';
    case 2:
      return 'low';
    case 3:
      return 'medium';
    case 4:
      return 'high';
    case 5:
      return 'critical';
    default:
      return undefined;
  }
}
