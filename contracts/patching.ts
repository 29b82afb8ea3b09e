// The shapes the patch rollout workflow (workflows/patch.ts) exchanges with its activities. Types
// only, so the workflow imports them without pulling activity code into its sandbox.
import type { PatchPlan, PatchTarget } from '../domain/ports.ts';

export interface PlanRolloutRequest {
  rolloutId: string;
  campaignId: string;
  scope: string;
  targets: PatchTarget[];
  exposureIds: string[];
}

export interface PlannedRollout {
  plan: PatchPlan;
  /** The dry run found problems: applying would not reach the fix. */
  blocked: boolean;
}

export interface PatchDecisionRecord {
  rolloutId: string;
  decision: 'approved' | 'rejected';
  /** Person id, or "policy" for a scope that auto-approves. */
  by: string;
  via?: string;
  comment?: string;
}

export interface SlotRequest {
  rolloutId: string;
  scope: string;
  host: string;
  /** Hosts of the scope that may be applying at once. */
  limit: number;
  leaseMs: number;
}

export interface SlotGrant {
  granted: boolean;
  /** Hosts of the scope applying now (when not granted: who holds the slots). */
  holders: number;
  /** Set when this host's job already finished (a replayed or retried claim). */
  finished?: 'succeeded' | 'failed';
}

export interface HostApplyRequest {
  rolloutId: string;
  host: string;
}

export interface HostApplyOutcome {
  host: string;
  ok: boolean;
  rebootRequired?: boolean;
  jobId?: string;
  /** The end of the captured output (the whole evidence is in patch_jobs.output). */
  outputTail: string;
}

export interface HostFailureRecord {
  rolloutId: string;
  host: string;
  reason: string;
}

export interface RolloutFinish {
  rolloutId: string;
  outcome: 'succeeded' | 'failed' | 'blocked' | 'rejected';
  summary: string;
  /** ISO workflow time the rollout finished (what the exposures verify from); now() when absent. */
  finishedAt?: string;
}

/**
 * A rollout's approval request or escalation. `campaignId` names the campaign whose rollout it is;
 * rollouts started by the previous release name a remediation unit instead (`unitId`).
 */
export interface RolloutNotifyRequest {
  key: string;
  kind: 'decision-request' | 'escalation';
  /** The first exposure the rollout closes: the receipt is filed under it. */
  exposureId: string;
  scope: string;
  campaignId?: string;
  unitId?: string;
  owner?: string;
  level?: number;
  audiences: ('owner' | 'channel' | 'approver' | 'securityLead' | 'ciso')[];
  text: string;
  /** Key of the exposures' audit event about it. */
  eventKey: string;
  /** The rollout whose approvePatch / rejectPatch updates answer an approval request. */
  patchRolloutId: string;
  /** Every exposure the rollout closes, for their audit trail. */
  exposureIds?: string[];
}

/** A rollout's verifying re-scan of one exposure (rollouts started without a campaign). */
export interface RolloutRescanRequest {
  requestId: string;
  exposureId: string;
  campaignId?: string;
  scope: string;
  assetId: number;
  weaknessKey: string;
  notBefore: string;
  eventKey: string;
}
