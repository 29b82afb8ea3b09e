// From facts (threat intel about a weakness + the asset's context) to a decision: an SSVC outcome,
// an SLA deadline and the reasons in plain words. Pure and deterministic: `now` is an input, so the
// same facts and policy always give the same decision, in an activity or in workflow code.
import {
  baseCharacteristics,
  contextualCvss,
  CvssVectorError,
  parseCvssVector,
  type ContextualCvssScore,
  type CvssVector,
  type ExploitMaturity,
  type Requirement,
} from '../cvss.ts';
import { treeOutcome, type EpssThreshold, type Policy, type PolicyCondition } from './schema.ts';
import {
  automatableFromCvss,
  exploitationRank,
  moreUrgent,
  OUTCOME_LABEL,
  technicalImpactFromCvss,
  type Automatable,
  type Criticality,
  type Exploitation,
  type HumanImpact,
  type Outcome,
  type Reachability,
  type SystemExposure,
  type TechnicalImpact,
} from './ssvc.ts';

/** What is known about one weakness on one asset. Absent intel is `undefined` or `null`. */
export interface PriorityFacts {
  /** CVE id or scanner rule id. */
  weakness: string;
  kev?: { dateAdded: string; dueDate?: string | null; knownRansomware?: boolean } | null;
  epss?: { probability: number; percentile: number; scoreDate?: string | null } | null;
  /** The CISA ADP SSVC assessment of the CVE record. */
  ssvc?: {
    exploitation?: Exploitation | null;
    automatable?: Automatable | null;
    technicalImpact?: TechnicalImpact | null;
    assessedAt?: string | null;
  } | null;
  /** The published CVSS vector (v3.0, v3.1 or v4.0) and who published it. */
  cvss?: { vector: string; source?: string | null } | null;
  /** A scanner reported a public exploit for it. */
  exploitAvailable?: boolean | null;
  asset: {
    name?: string;
    criticality: Criticality;
    reachability: Reachability;
    /** The scope's CIA requirements. */
    requirements?: { cr?: Requirement; ir?: Requirement; ar?: Requirement };
    /** Explicit modified metrics for this asset (they win over the policy's attack-vector cap). */
    modified?: Readonly<Record<string, string>>;
  };
  /** When the SLA clock starts (the exposure's first sighting, or when ctem learned of it). */
  firstSeen: string;
  /** How the clock start is described in the reasons ("first seen" unless said otherwise). */
  clockStartedAt?: string;
}

/** The discrete inputs of the tree, floors and deadlines. */
export interface DecisionPoints {
  kev: boolean;
  exploitation: Exploitation;
  exposure: SystemExposure;
  automatable: Automatable;
  technicalImpact: TechnicalImpact;
  humanImpact: HumanImpact;
  criticality: Criticality;
  /** Contextual CVSS score (CVSS-BTE), null without a valid published vector. */
  contextualCvss: number | null;
}

export interface DeadlineCandidate {
  /** "outcome:act" for the outcome's SLA, else the policy's deadline rule name. */
  rule: string;
  from: 'firstSeen' | 'kevDateAdded';
  days: number;
  because?: string;
}

export interface Judgement {
  treeOutcome: Outcome;
  outcome: Outcome;
  /** The floor that raised the tree's outcome, if one did. */
  floor?: { name: string; because?: string };
  /** Every deadline that applies; the earliest wins. */
  deadlines: DeadlineCandidate[];
}

export interface DecisionPoint<T> {
  value: T;
  /** Where the value came from, in plain words. */
  because: string;
}

export interface PriorityDecision {
  weakness: string;
  outcome: Outcome;
  /** "Act", "Attend", "Track*", "Track". */
  label: string;
  dueAt: string;
  /** The deadline that won: "outcome:act" or a deadline rule's name. */
  deadlineRule: string;
  overdue: boolean;
  points: {
    exploitation: DecisionPoint<Exploitation>;
    exposure: DecisionPoint<SystemExposure>;
    automatable: DecisionPoint<Automatable>;
    technicalImpact: DecisionPoint<TechnicalImpact>;
    humanImpact: DecisionPoint<HumanImpact>;
  };
  treeOutcome: Outcome;
  floor?: { name: string; because?: string };
  cvss?: Pick<
    ContextualCvssScore,
    'publishedVector' | 'vector' | 'base' | 'score' | 'severity' | 'nomenclature'
  >;
  /** Every reason, one sentence each, in the order they were weighed. */
  reasons: string[];
  /** One line: "in CISA KEV since 2021-12-10; EPSS 0.94 (99.9th pct); internet-facing; critical asset → Act: fix by 2026-11-26". */
  summary: string;
  policy: { name: string; version: string; hash: string };
  decidedAt: string;
}

const DAY_MS = 86_400_000;

/** Which exploitation level an EPSS score is evidence of under the policy, if any. */
export function epssEvidence(
  policy: Policy,
  epss: { probability: number; percentile: number } | null | undefined,
): 'active' | 'public poc' | null {
  if (!epss) return null;
  if (meetsEpss(policy.exploitation.epss.active, epss)) return 'active';
  if (meetsEpss(policy.exploitation.epss.publicPoc, epss)) return 'public poc';
  return null;
}

function meetsEpss(t: EpssThreshold | null, epss: { probability: number; percentile: number }): boolean {
  if (!t) return false;
  return (
    (t.probabilityAtLeast !== undefined && epss.probability >= t.probabilityAtLeast) ||
    (t.percentileAtLeast !== undefined && epss.percentile >= t.percentileAtLeast)
  );
}

export function formatEpss(epss: { probability: number; percentile: number }): string {
  const p =
    epss.probability >= 0.1
      ? epss.probability.toFixed(2)
      : Number(epss.probability.toPrecision(2)).toString();
  const pct = Math.floor(epss.percentile * 1000) / 10;
  const whole = Number.isInteger(pct);
  const suffix = !whole
    ? 'th'
    : pct % 100 >= 11 && pct % 100 <= 13
      ? 'th'
      : (({ 1: 'st', 2: 'nd', 3: 'rd' } as Record<number, string>)[pct % 10] ?? 'th');
  return `EPSS ${p} (${pct}${suffix} pct)`;
}

function thresholdText(t: EpssThreshold): string {
  const parts: string[] = [];
  if (t.probabilityAtLeast !== undefined) parts.push(`probability ≥ ${t.probabilityAtLeast}`);
  if (t.percentileAtLeast !== undefined) parts.push(`percentile ≥ ${t.percentileAtLeast}`);
  return parts.join(' or ');
}

/** A published vector, or undefined with the reason it was unusable. */
function publishedVector(facts: Pick<PriorityFacts, 'cvss'>): { vector?: CvssVector; problem?: string } {
  if (!facts.cvss?.vector) return {};
  try {
    return { vector: parseCvssVector(facts.cvss.vector) };
  } catch (err) {
    if (err instanceof CvssVectorError) return { problem: err.message };
    throw err;
  }
}

/** The weakness-level points: they depend on threat intel and the policy, not on the asset. */
export interface IntelPoints {
  kev: boolean;
  exploitation: DecisionPoint<Exploitation>;
  automatable: DecisionPoint<Automatable>;
  technicalImpact: DecisionPoint<TechnicalImpact>;
  /** Why the published vector was ignored, if it was. */
  cvssProblem?: string;
}

export function intelPoints(policy: Policy, facts: Omit<PriorityFacts, 'asset' | 'firstSeen'>): IntelPoints {
  const { vector, problem } = publishedVector(facts);
  const base = vector ? baseCharacteristics(vector) : undefined;

  const evidence: DecisionPoint<Exploitation>[] = [];
  if (policy.exploitation.kev && facts.kev)
    evidence.push({
      value: 'active',
      because: `in CISA KEV since ${facts.kev.dateAdded}${facts.kev.knownRansomware ? ', used in ransomware campaigns' : ''}`,
    });
  if (policy.exploitation.adpSsvc && facts.ssvc?.exploitation)
    evidence.push({
      value: facts.ssvc.exploitation,
      because: `CISA's SSVC assessment says exploitation ${facts.ssvc.exploitation}`,
    });
  if (facts.epss) {
    const { active, publicPoc } = policy.exploitation.epss;
    if (meetsEpss(active, facts.epss))
      evidence.push({
        value: 'active',
        because: `${formatEpss(facts.epss)} meets ${thresholdText(active!)}`,
      });
    else if (meetsEpss(publicPoc, facts.epss))
      evidence.push({
        value: 'public poc',
        because: `${formatEpss(facts.epss)} meets ${thresholdText(publicPoc!)}`,
      });
  }
  if (policy.exploitation.scannerExploit && facts.exploitAvailable)
    evidence.push({ value: 'public poc', because: 'a scanner reports a public exploit' });
  if (policy.exploitation.cvssExploitMaturity && vector?.metrics.E) {
    const e = vector.metrics.E;
    const value: Exploitation | undefined =
      vector.version === '4.0'
        ? e === 'A'
          ? 'active'
          : e === 'P'
            ? 'public poc'
            : undefined
        : e === 'U'
          ? undefined
          : 'public poc';
    if (value) evidence.push({ value, because: `the published CVSS vector has exploit maturity E:${e}` });
  }
  const top = evidence.reduce<Exploitation>(
    (best, ev) => (exploitationRank(ev.value) > exploitationRank(best) ? ev.value : best),
    'none',
  );
  const exploitation: DecisionPoint<Exploitation> =
    top === 'none'
      ? {
          value: 'none',
          because:
            'no evidence of exploitation (not in CISA KEV, no proof of concept known, EPSS below the thresholds)',
        }
      : {
          value: top,
          because: evidence
            .filter((ev) => ev.value === top)
            .map((ev) => ev.because)
            .join('; '),
        };

  let automatable: DecisionPoint<Automatable>;
  if (policy.automatable.adpSsvc && facts.ssvc?.automatable)
    automatable = {
      value: facts.ssvc.automatable,
      because: `CISA's SSVC assessment says automatable: ${facts.ssvc.automatable}`,
    };
  else if (policy.automatable.fromCvss && base) {
    const value = automatableFromCvss(base);
    automatable = {
      value,
      because:
        value === 'yes'
          ? 'network-reachable with no privileges, user or special conditions needed (CVSS)'
          : 'the CVSS vector needs privileges, a user, special conditions or local access',
    };
  } else
    automatable = {
      value: policy.automatable.otherwise,
      because: `no SSVC or CVSS data; the policy assumes automatable: ${policy.automatable.otherwise}`,
    };

  let technicalImpact: DecisionPoint<TechnicalImpact>;
  if (policy.technicalImpact.adpSsvc && facts.ssvc?.technicalImpact)
    technicalImpact = {
      value: facts.ssvc.technicalImpact,
      because: `CISA's SSVC assessment says technical impact ${facts.ssvc.technicalImpact}`,
    };
  else if (policy.technicalImpact.fromCvss && base) {
    const value = technicalImpactFromCvss(base);
    technicalImpact = {
      value,
      because: `CVSS confidentiality ${base.confidentiality}, integrity ${base.integrity}, privileges ${base.privilegesRequired} → ${value} impact`,
    };
  } else
    technicalImpact = {
      value: policy.technicalImpact.otherwise,
      because: `no SSVC or CVSS data; the policy assumes ${policy.technicalImpact.otherwise} impact`,
    };

  return {
    kev: Boolean(facts.kev),
    exploitation,
    automatable,
    technicalImpact,
    ...(problem ? { cvssProblem: problem } : {}),
  };
}

const ATTACK_VECTOR_EXPOSURE = ['N', 'A', 'L', 'P'];
const EXPLOIT_MATURITY: Record<Exploitation, ExploitMaturity> = {
  active: 'attacked',
  'public poc': 'poc',
  none: 'unreported',
};

/** The contextual CVSS score of a published vector for one asset, given the exploitation point. */
export function contextualScoreFor(
  policy: Policy,
  vector: string,
  exploitation: Exploitation,
  asset: Pick<PriorityFacts['asset'], 'reachability' | 'requirements' | 'modified'>,
): ContextualCvssScore {
  const published = parseCvssVector(vector);
  const modified: Record<string, string> = {};
  const cap = policy.contextualCvss.attackVectorCap[asset.reachability];
  const av = published.metrics.AV!;
  if (ATTACK_VECTOR_EXPOSURE.indexOf(av) < ATTACK_VECTOR_EXPOSURE.indexOf(cap)) modified.MAV = cap;
  Object.assign(modified, asset.modified ?? {});
  return contextualCvss(published.vector, {
    requirements: asset.requirements ?? {},
    modified,
    ...(policy.contextualCvss.exploitMaturityFromIntel
      ? { exploitMaturity: EXPLOIT_MATURITY[exploitation] }
      : {}),
  });
}

function holds<T extends string>(wanted: T | T[] | undefined, actual: T): boolean {
  return wanted === undefined || (Array.isArray(wanted) ? wanted.includes(actual) : wanted === actual);
}

/** Whether a policy condition holds. `outcome` is the tree's for floors, the final one for deadlines. */
export function conditionHolds(c: PolicyCondition, p: DecisionPoints, outcome: Outcome): boolean {
  return (
    (c.kev === undefined || c.kev === p.kev) &&
    holds(c.exploitation, p.exploitation) &&
    holds(c.exposure, p.exposure) &&
    holds(c.automatable, p.automatable) &&
    holds(c.technicalImpact, p.technicalImpact) &&
    holds(c.humanImpact, p.humanImpact) &&
    holds(c.criticality, p.criticality) &&
    holds(c.outcome, outcome) &&
    (c.contextualCvssAtLeast === undefined ||
      (p.contextualCvss !== null && p.contextualCvss >= c.contextualCvssAtLeast))
  );
}

/** Tree, floors and deadlines over discrete points. The bulk re-score compiles exactly this. */
export function judge(policy: Policy, p: DecisionPoints): Judgement {
  const fromTree = treeOutcome(policy, p.exploitation, p.exposure, p.automatable, p.humanImpact);
  let outcome = fromTree;
  let floor: Judgement['floor'];
  for (const f of policy.floors) {
    if (!conditionHolds(f.when, p, fromTree)) continue;
    const raised = moreUrgent(outcome, f.atLeast);
    if (raised !== outcome) {
      outcome = raised;
      floor = { name: f.name, ...(f.because ? { because: f.because } : {}) };
    }
  }
  const deadlines: DeadlineCandidate[] = [
    { rule: `outcome:${outcome}`, from: 'firstSeen', days: policy.outcomes[outcome].slaDays },
  ];
  for (const d of policy.deadlines)
    if (conditionHolds(d.when, p, outcome))
      deadlines.push({
        rule: d.name,
        from: d.from,
        days: d.days,
        ...(d.because ? { because: d.because } : {}),
      });
  return { treeOutcome: fromTree, outcome, ...(floor ? { floor } : {}), deadlines };
}

function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function parseTime(text: string, field: string): number {
  // Dates without a time ("2021-12-10") are midnight UTC, as CISA publishes them.
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text);
  if (Number.isNaN(ms)) throw new Error(`${field} "${text}" is not a date`);
  return ms;
}

const REACHABILITY_TEXT: Record<Reachability, string> = {
  internet: 'internet-facing',
  internal: 'internal network only',
  isolated: 'isolated',
};

/** Decide one exposure's priority and deadline, with every reason. */
export function decidePriority(policy: Policy, facts: PriorityFacts, now: Date): PriorityDecision {
  const intel = intelPoints(policy, facts);
  const { asset } = facts;
  const exposure: DecisionPoint<SystemExposure> = {
    value: policy.exposure[asset.reachability],
    because: `the asset is ${REACHABILITY_TEXT[asset.reachability]} → system exposure ${policy.exposure[asset.reachability]}`,
  };
  const human = policy.humanImpact[asset.criticality][intel.technicalImpact.value];
  const humanImpact: DecisionPoint<HumanImpact> = {
    value: human,
    because: `${asset.criticality} asset criticality with ${intel.technicalImpact.value} technical impact → human impact ${human}`,
  };
  let cvss: ContextualCvssScore | undefined;
  if (facts.cvss?.vector && !intel.cvssProblem)
    cvss = contextualScoreFor(policy, facts.cvss.vector, intel.exploitation.value, asset);

  const points: DecisionPoints = {
    kev: intel.kev,
    exploitation: intel.exploitation.value,
    exposure: exposure.value,
    automatable: intel.automatable.value,
    technicalImpact: intel.technicalImpact.value,
    humanImpact: human,
    criticality: asset.criticality,
    contextualCvss: cvss?.score ?? null,
  };
  const j = judge(policy, points);

  const firstSeen = parseTime(facts.firstSeen, 'firstSeen');
  const kevAdded = facts.kev ? parseTime(facts.kev.dateAdded, 'kev.dateAdded') : undefined;
  let best: { due: number; candidate: DeadlineCandidate } | undefined;
  for (const c of j.deadlines) {
    const start =
      c.from === 'kevDateAdded' && kevAdded !== undefined ? Math.max(firstSeen, kevAdded) : firstSeen;
    const due = start + c.days * DAY_MS;
    if (!best || due < best.due) best = { due, candidate: c };
  }
  const { due, candidate } = best!;
  const label = OUTCOME_LABEL[j.outcome];

  const reasons = [
    `Exploitation ${intel.exploitation.value}: ${intel.exploitation.because}.`,
    `Exposure ${exposure.value}: ${exposure.because}.`,
    `Automatable ${intel.automatable.value}: ${intel.automatable.because}.`,
    `Technical impact ${intel.technicalImpact.value}: ${intel.technicalImpact.because}.`,
    `Human impact ${human}: ${humanImpact.because}.`,
  ];
  if (intel.cvssProblem) reasons.push(`The published CVSS vector was ignored: ${intel.cvssProblem}`);
  if (cvss)
    reasons.push(
      `Contextual CVSS ${cvss.score.toFixed(1)} (${cvss.severity}, ${cvss.nomenclature} ${cvss.vector}); base ${cvss.base.toFixed(1)}.`,
    );
  reasons.push(
    `The SSVC tree gives ${OUTCOME_LABEL[j.treeOutcome]} for (${points.exploitation}, ${points.exposure}, ${points.automatable}, ${points.humanImpact}).`,
  );
  if (j.floor)
    reasons.push(
      `Raised to ${label} by rule ${j.floor.name}${j.floor.because ? `: ${j.floor.because}` : ''}.`,
    );
  const started =
    candidate.from === 'kevDateAdded' && kevAdded !== undefined && kevAdded > firstSeen
      ? `its KEV date ${isoDate(kevAdded)}`
      : `${facts.clockStartedAt ?? 'first seen'} ${isoDate(firstSeen)}`;
  reasons.push(
    candidate.rule.startsWith('outcome:')
      ? `${label} is due ${policy.outcomes[j.outcome].slaDays} days after ${started}: ${isoDate(due)}.`
      : `Deadline rule ${candidate.rule} (${candidate.days} days after ${started}) gives ${isoDate(due)}${candidate.because ? `: ${candidate.because}` : ''}.`,
  );

  const summaryParts: string[] = [];
  if (facts.kev) summaryParts.push(`in CISA KEV since ${facts.kev.dateAdded}`);
  if (facts.epss) summaryParts.push(formatEpss(facts.epss));
  if (!facts.kev && intel.exploitation.value !== 'none')
    summaryParts.push(`exploitation ${intel.exploitation.value}`);
  summaryParts.push(REACHABILITY_TEXT[asset.reachability]);
  if (intel.automatable.value === 'yes') summaryParts.push('automatable');
  if (intel.technicalImpact.value === 'total') summaryParts.push('total technical impact');
  summaryParts.push(`${asset.criticality} asset`);
  if (cvss) summaryParts.push(`${cvss.nomenclature} ${cvss.score.toFixed(1)}`);

  return {
    weakness: facts.weakness,
    outcome: j.outcome,
    label,
    dueAt: new Date(due).toISOString(),
    deadlineRule: candidate.rule,
    overdue: now.getTime() > due,
    points: {
      exploitation: intel.exploitation,
      exposure,
      automatable: intel.automatable,
      technicalImpact: intel.technicalImpact,
      humanImpact,
    },
    treeOutcome: j.treeOutcome,
    ...(j.floor ? { floor: j.floor } : {}),
    ...(cvss
      ? {
          cvss: {
            publishedVector: cvss.publishedVector,
            vector: cvss.vector,
            base: cvss.base,
            score: cvss.score,
            severity: cvss.severity,
            nomenclature: cvss.nomenclature,
          },
        }
      : {}),
    reasons,
    summary: `${summaryParts.join('; ')} → ${label}: fix by ${isoDate(due)}`,
    policy: { name: policy.name, version: policy.version, hash: policy.hash },
    decidedAt: now.toISOString(),
  };
}
