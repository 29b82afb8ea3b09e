// The exposure lifecycle's vocabulary: ids, states, decisions. Pure and deterministic, so both the
// workflow sandbox and the activities use the same definitions.

/** Lifecycle states (DESIGN.md §5), plus "retired" when the asset left the inventory. */
export const exposureStates = [
  'open',
  'triaged',
  'validated',
  'awaiting-decision',
  'remediating',
  'verifying',
  'resolved',
  'snoozed',
  'risk-accepted',
  'false-positive',
  'reopened',
  'retired',
] as const;
export type ExposureState = (typeof exposureStates)[number];

/** States in which nothing is left to do until something new is observed. */
export const terminalStates: readonly ExposureState[] = ['resolved', 'false-positive', 'retired'];

/**
 * The exposure id is deterministic: the inventory's asset id and the weakness key. The same asset ×
 * weakness always maps to the same row, the same workflow and the same events, whatever the scanner.
 */
export function exposureId(assetId: number, weaknessKey: string): string {
  return `${assetId}:${weaknessKey}`;
}

export function exposureWorkflowId(id: string): string {
  return `exposure-${id}`;
}

export function parseExposureId(id: string): { assetId: number; weaknessKey: string } | undefined {
  const m = /^(\d+):(.+)$/.exec(id);
  if (!m) return undefined;
  return { assetId: Number(m[1]), weaknessKey: m[2]! };
}

/** Who acted, through which channel. `personId` is a people[].id from ctem.yaml. */
export interface Actor {
  personId: string;
  via: 'slack' | 'teams' | 'dashboard' | 'cli' | 'api';
}

/** A decision an owner (or a security lead…) takes on an exposure. */
export type Decision =
  | { kind: 'approve'; actor: Actor; comment?: string }
  | { kind: 'snooze'; actor: Actor; until: string; reason?: string }
  | { kind: 'acceptRisk'; actor: Actor; justification: string; expires: string }
  | { kind: 'markFalsePositive'; actor: Actor; reason: string }
  | { kind: 'reassign'; actor: Actor; to: string; reason?: string };

export type DecisionKind = Decision['kind'];
