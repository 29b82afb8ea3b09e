// SSVC decision points and outcomes used by the policies, with the values CERT/CC publishes.
//
// The default policy is the SSVC deployer tree ("Deployer Patch Application Priority" v1.0.0:
// Exploitation v1.1.0, System Exposure v1.0.1, Automatable v2.0.0, Human Impact v2.0.2 →
// defer / scheduled / out-of-cycle / immediate), github.com/CERTCC/SSVC,
// data/csv/ssvc/deployer_patch_application_priority_1_0_0.csv. Its outcomes are named with CISA's
// labels (Track / Track* / Attend / Act, data/csv/cisa/cisa_coordinator_2_0_3.csv), which keep the
// same order of urgency: defer → Track, scheduled → Track*, out-of-cycle → Attend, immediate → Act.
import type { BaseCharacteristics } from '../cvss.ts';

export const EXPLOITATION = ['none', 'public poc', 'active'] as const;
export const SYSTEM_EXPOSURE = ['small', 'controlled', 'open'] as const;
export const AUTOMATABLE = ['no', 'yes'] as const;
export const TECHNICAL_IMPACT = ['partial', 'total'] as const;
export const HUMAN_IMPACT = ['low', 'medium', 'high', 'very high'] as const;
export const CRITICALITY = ['low', 'medium', 'high', 'critical'] as const;
/** Least to most urgent. */
export const OUTCOMES = ['track', 'track*', 'attend', 'act'] as const;
/** Where an asset can be reached from; the scope's `internetFacing` gives internet or internal. */
export const REACHABILITY = ['internet', 'internal', 'isolated'] as const;

export type Exploitation = (typeof EXPLOITATION)[number];
export type SystemExposure = (typeof SYSTEM_EXPOSURE)[number];
export type Automatable = (typeof AUTOMATABLE)[number];
export type TechnicalImpact = (typeof TECHNICAL_IMPACT)[number];
export type HumanImpact = (typeof HUMAN_IMPACT)[number];
export type Criticality = (typeof CRITICALITY)[number];
export type Outcome = (typeof OUTCOMES)[number];
export type Reachability = (typeof REACHABILITY)[number];

export const OUTCOME_LABEL: Record<Outcome, string> = {
  track: 'Track',
  'track*': 'Track*',
  attend: 'Attend',
  act: 'Act',
};

export function outcomeRank(o: Outcome): number {
  return OUTCOMES.indexOf(o);
}

export function moreUrgent(a: Outcome, b: Outcome): Outcome {
  return outcomeRank(a) >= outcomeRank(b) ? a : b;
}

export function exploitationRank(e: Exploitation): number {
  return EXPLOITATION.indexOf(e);
}

/** The key of one row of a four-point tree. */
export function treeKey(e: Exploitation, x: SystemExposure, a: Automatable, h: HumanImpact): string {
  return `${e}|${x}|${a}|${h}`;
}

/**
 * SSVC Automatable from CVSS, as CISA's vulnrichment does it: the first four steps of the kill chain
 * (reconnaissance, weaponization, delivery, exploitation) can be automated when the vulnerable
 * system is reachable over the network, with no special conditions, no privileges and no user.
 */
export function automatableFromCvss(b: BaseCharacteristics): Automatable {
  return b.attackVector === 'N' &&
    b.attackComplexity === 'L' &&
    b.attackRequirements === 'N' &&
    b.privilegesRequired === 'N' &&
    b.userInteraction === 'none'
    ? 'yes'
    : 'no';
}

/**
 * SSVC Technical Impact from CVSS, per CERT/CC's mapping (data/csv/ssvc/cvssv4_to_technical_impact_1_0_0.csv,
 * applied to v3 C/I the same way as to v4 VC/VI): total when confidentiality and integrity are both
 * high, or when no privileges are needed and one of them is high while the other is at least low.
 */
export function technicalImpactFromCvss(b: BaseCharacteristics): TechnicalImpact {
  const c = b.confidentiality;
  const i = b.integrity;
  if (c === 'H' && i === 'H') return 'total';
  if (b.privilegesRequired === 'N' && c !== 'N' && i !== 'N' && (c === 'H' || i === 'H')) return 'total';
  return 'partial';
}
