// The patch rollout's contract with its clients (the campaign workflow, the chat bots, the CLI): its
// workflow type and id, input, view and result, and the approval updates and query. The workflow
// itself is workflows/patch.ts.
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { HostApplyOutcome } from './patching.ts';
import type { PatchPlan, PatchTarget, RescanTicket } from '../domain/ports.ts';
import type { Actor } from '../domain/exposure.ts';

export const patchRolloutWorkflowType = 'patchRollout';

/**
 * One rollout per campaign shard and approval round: "patch-<campaign>[~<shard>][.<generation>]-r<round>"
 * (a later generation of the shard's workflow tags its rounds: contracts/campaign.ts generationTag).
 */
export function patchRolloutWorkflowId(
  campaignId: string,
  shard: number,
  round: number,
  generation?: string,
): string {
  return `patch-${campaignId}${shard > 1 ? `~${shard}` : ''}${generation ? `.${generation}` : ''}-r${round}`;
}

export interface PatchRolloutInput {
  /** The campaign it patches (absent in rollouts of the previous release, which name `unitId`). */
  campaignId?: string;
  /** The remediation unit of a rollout started by the previous release. */
  unitId?: string;
  scope: string;
  targets: PatchTarget[];
  /** The exposures the rollout fixes: audit trail, notifications and the verifying re-scan. */
  exposures: { exposureId: string; assetId: number; weaknessKey: string }[];
  /** Owner to tell about failures (people[].id); the scope's owners otherwise. */
  owner?: string;
  /** false when the caller requests verification itself (the campaign workflow does). Default true. */
  requestRescan?: boolean;
  /** The workflow told how the rollout ended (patchRolloutFinished), the campaign's that started it. */
  reportTo?: string;
  /** Heartbeat timeout of the plan and of each host's apply (default 2 minutes; tests lower it to see a killed worker sooner). */
  heartbeatTimeoutMs?: number;
}

export type PatchRolloutStatus =
  | 'planning'
  | 'blocked'
  | 'awaiting-approval'
  | 'rejected'
  | 'waiting-for-window'
  | 'waiting-for-slot'
  | 'applying'
  | 'succeeded'
  | 'failed';

export type HostStatus = 'pending' | 'applying' | 'succeeded' | 'failed' | 'skipped';

export interface PatchRolloutView {
  rolloutId: string;
  campaignId: string;
  scope: string;
  status: PatchRolloutStatus;
  plan?: PatchPlan;
  approvers: string[];
  decision?: { by: string; via?: string; at: string; comment?: string; approved: boolean };
  window: string;
  /** ISO time the window next opens, while waiting for it. */
  windowOpensAt?: string;
  hosts: { host: string; status: HostStatus; canary: boolean; rebootRequired?: boolean; jobId?: string }[];
  failure?: string;
  /** Times the unanswered approval request was escalated. */
  approvalEscalations?: number;
}

export interface PatchRolloutResult {
  status: 'succeeded' | 'failed' | 'blocked' | 'rejected';
  summary: string;
  /** ISO time the last host finished: verification counts scans after it. */
  finishedAt?: string;
  hosts: HostApplyOutcome[];
  rescans: RescanTicket[];
  escalated: boolean;
}

export interface PatchApproval {
  actor: Actor;
  comment?: string;
}

export const approvePatchUpdate = defineUpdate<PatchRolloutView, [PatchApproval]>('approvePatch');
export const rejectPatchUpdate = defineUpdate<PatchRolloutView, [PatchApproval]>('rejectPatch');
export const patchRolloutQuery = defineQuery<PatchRolloutView>('patchRollout');
