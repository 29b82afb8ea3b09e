// The shapes the patch rollout workflow (workflows/patch.ts) exchanges with its activities. Types
// only, so the workflow imports them without pulling activity code into its sandbox.
import type { PatchPlan, PatchTarget } from '../domain/ports.ts';

export interface PlanRolloutRequest {
  rolloutId: string;
  unitId: string;
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
