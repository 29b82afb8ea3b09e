// The policy compiled into a finite table for set-based re-scoring in SQL. Every input of `judge` is
// discrete except the contextual CVSS score, which only matters relative to the thresholds the
// policy names, so it becomes a bucket. Each row is produced by `judge` itself: the SQL re-score and
// `decidePriority` cannot disagree about an outcome or a deadline.
import { judge } from './decide.ts';
import type { Policy } from './schema.ts';
import {
  AUTOMATABLE,
  CRITICALITY,
  EXPLOITATION,
  SYSTEM_EXPOSURE,
  TECHNICAL_IMPACT,
  type Automatable,
  type Criticality,
  type Exploitation,
  type Outcome,
  type SystemExposure,
  type TechnicalImpact,
} from './ssvc.ts';

export interface DecisionTableRow {
  exploitation: Exploitation;
  exposure: SystemExposure;
  automatable: Automatable;
  technicalImpact: TechnicalImpact;
  criticality: Criticality;
  kev: boolean;
  /** -1: no contextual score; k ≥ 0: the score reaches exactly the k lowest thresholds. */
  cvssBucket: number;
  outcome: Outcome;
  /** Deadline = min(firstSeen + daysFromFirstSeen, max(firstSeen, kevDateAdded) + daysFromKev). */
  daysFromFirstSeen: number;
  daysFromKev: number | null;
}

export interface DecisionTable {
  policyHash: string;
  /** Ascending contextual CVSS thresholds used by the policy's conditions. */
  cvssThresholds: number[];
  rows: DecisionTableRow[];
}

export function cvssThresholds(policy: Policy): number[] {
  const all = [...policy.floors.map((f) => f.when), ...policy.deadlines.map((d) => d.when)]
    .map((c) => c.contextualCvssAtLeast)
    .filter((t): t is number => t !== undefined);
  return [...new Set(all)].sort((a, b) => a - b);
}

export function cvssBucket(thresholds: readonly number[], score: number | null): number {
  if (score === null) return -1;
  return thresholds.filter((t) => score >= t).length;
}

export function compileDecisionTable(policy: Policy): DecisionTable {
  const thresholds = cvssThresholds(policy);
  const rows: DecisionTableRow[] = [];
  for (let bucket = -1; bucket <= thresholds.length; bucket++) {
    // A score equal to the k-th threshold reaches exactly thresholds[0..k-1].
    const score = bucket < 0 ? null : bucket === 0 ? 0 : thresholds[bucket - 1]!;
    for (const exploitation of EXPLOITATION)
      for (const exposure of SYSTEM_EXPOSURE)
        for (const automatable of AUTOMATABLE)
          for (const technicalImpact of TECHNICAL_IMPACT)
            for (const criticality of CRITICALITY)
              for (const kev of [false, true]) {
                const humanImpact = policy.humanImpact[criticality][technicalImpact];
                const j = judge(policy, {
                  kev,
                  exploitation,
                  exposure,
                  automatable,
                  technicalImpact,
                  humanImpact,
                  criticality,
                  contextualCvss: score,
                });
                const fromFirstSeen = j.deadlines.filter((d) => d.from === 'firstSeen').map((d) => d.days);
                const fromKev = j.deadlines.filter((d) => d.from === 'kevDateAdded').map((d) => d.days);
                rows.push({
                  exploitation,
                  exposure,
                  automatable,
                  technicalImpact,
                  criticality,
                  kev,
                  cvssBucket: bucket,
                  outcome: j.outcome,
                  daysFromFirstSeen: Math.min(...fromFirstSeen),
                  daysFromKev: kev && fromKev.length > 0 ? Math.min(...fromKev) : null,
                });
              }
  }
  return { policyHash: policy.hash, cvssThresholds: thresholds, rows };
}
