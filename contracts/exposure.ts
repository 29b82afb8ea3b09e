// The exposure workflow's message contract: what bots, the dashboard, ingest, re-scoring and ticket
// sync may send it, and what it answers. Definitions only (no handlers), so clients import this file
// without pulling in workflow code.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Decision, ExposureState } from '../domain/exposure.ts';
import type { TicketRef, TicketStatusCategory } from '../domain/ports.ts';

export { exposureWorkflowId } from '../domain/exposure.ts';

/** The workflow type name, for clients that start it by name (signalWithStart, schedules). */
export const exposureWorkflowType = 'exposureWorkflow';

export type ApproveDecision = Extract<Decision, { kind: 'approve' }>;
export type SnoozeDecision = Extract<Decision, { kind: 'snooze' }>;
export type AcceptRiskDecision = Extract<Decision, { kind: 'acceptRisk' }>;
export type FalsePositiveDecision = Extract<Decision, { kind: 'markFalsePositive' }>;
export type ReassignDecision = Extract<Decision, { kind: 'reassign' }>;

/** What every decision update returns: the exposure's state after the decision. */
export interface DecisionResult {
  exposureId: string;
  state: ExposureState;
}

// ---- updates (validated: well-formed, actor authorized for the scope and role, allowed now) -----

export const approveUpdate = defineUpdate<DecisionResult, [ApproveDecision]>('approve');
export const snoozeUpdate = defineUpdate<DecisionResult, [SnoozeDecision]>('snooze');
export const acceptRiskUpdate = defineUpdate<DecisionResult, [AcceptRiskDecision]>('acceptRisk');
export const markFalsePositiveUpdate = defineUpdate<DecisionResult, [FalsePositiveDecision]>(
  'markFalsePositive',
);
export const reassignUpdate = defineUpdate<DecisionResult, [ReassignDecision]>('reassign');

/** The update definition for a decision kind (the decision API dispatches on it). */
export const decisionUpdates = {
  approve: approveUpdate,
  snooze: snoozeUpdate,
  acceptRisk: acceptRiskUpdate,
  markFalsePositive: markFalsePositiveUpdate,
  reassign: reassignUpdate,
} as const;

// ---- signals ------------------------------------------------------------------------------------

/** A scan saw the weakness on the asset (sent only when that changes something: back after gone, seen while verifying). */
export interface ObservedSignal {
  scanId: number;
  /** ISO time the scan ran (finished). */
  at: string;
}

/** A scan that covered the asset no longer sees the weakness. Evidence for verification. */
export interface AbsentSignal {
  scanId: number;
  /** ISO time the scan ran (finished); only scans after the fix time count. */
  at: string;
  /** The asset left the inventory: the exposure closes as retired, not as fixed. */
  assetRetired?: boolean;
}

/** Prioritization changed the decision or the deadline (policy change, new intel). */
export interface RescoredSignal {
  /** SSVC outcome label: "Act", "Attend", "Track*", "Track". */
  priority: string;
  contextualCvss?: number | null;
  kev?: boolean;
  /** ISO time: the policy's deadline, counted from first seen (paused time is added by the workflow). */
  slaDue: string;
  reasons: string[];
  policyVersion: string;
}

/** A ticket of the exposure's remediation unit changed (a human closed or reopened it). */
export interface TicketChangedSignal {
  ticket: TicketRef;
  status: TicketStatusCategory;
  /** ISO time of the change in the ticket system. */
  at: string;
  /** Who changed it, as the ticket system says (free text, for the record). */
  by?: string;
}

/**
 * The patch rollout of the exposure's remediation unit ended (workflows/patch.ts tells every exposure
 * of the unit, whoever started it). Only "succeeded" moves the exposure on (to verifying).
 */
export interface PatchRolloutFinishedSignal {
  rolloutId: string;
  status: 'succeeded' | 'failed' | 'blocked' | 'rejected';
  summary: string;
  /** ISO time the last host finished: verification counts scans after it. */
  finishedAt?: string;
}

export const observedSignal = defineSignal<[ObservedSignal]>('observed');
export const absentSignal = defineSignal<[AbsentSignal]>('absent');
export const rescoredSignal = defineSignal<[RescoredSignal]>('rescored');
export const ticketChangedSignal = defineSignal<[TicketChangedSignal]>('ticketChanged');
export const patchRolloutFinishedSignal = defineSignal<[PatchRolloutFinishedSignal]>('patchRolloutFinished');

// ---- query --------------------------------------------------------------------------------------

/** One decision as it was taken and what it did. */
export interface DecisionRecord {
  decision: Decision;
  at: string;
  from: ExposureState;
  to: ExposureState;
}

export interface ExposureView {
  exposureId: string;
  scope: string;
  assetId: number;
  weaknessKey: string;
  state: ExposureState;
  /** SSVC outcome label. */
  priority: string;
  /** ISO time, paused time included; undefined for states without a running clock. */
  slaDue?: string;
  /** True while the SLA clock is paused (snoozed, risk accepted). */
  slaPaused: boolean;
  owner?: string;
  reasons: string[];
  policyVersion: string;
  /** Contextual CVSS score (environmental/threat) of the triage, when a vector was known. */
  contextualCvss?: number | null;
  /** In CISA KEV when triaged. */
  kev?: boolean;
  remediationUnitId?: string;
  /** The unit's patch rollout this exposure waits for (workflows/patch.ts id), while it runs. */
  patchRolloutId?: string;
  history: DecisionRecord[];
  tickets: TicketRef[];
  /** Highest escalation step fired in the current SLA window (-1 none, 0 owner reminder, 1 team + manager, 2 CISO). */
  escalationLevel: number;
  breaches: { at: string; kind: 'sla' | 'fix-not-verified'; level: number }[];
  snoozedUntil?: string;
  riskAccepted?: { by: string; until: string; justification: string };
  /** When the fix was reported (patch finished, ticket done). */
  fixedAt?: string;
  verifiedBy?: { scanId: number; at: string };
  firstSeen: string;
  resolvedAt?: string;
}

export const exposureStateQuery = defineQuery<ExposureView>('exposureState');
