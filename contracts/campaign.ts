// The campaign workflow's contract: what it is started with, what dispatch, re-scoring, ticket sync,
// patch rollouts, the bots and the dashboard may send it, and what it answers. Definitions only (no
// handlers), so clients import this file without pulling in workflow code.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { AuthorizationContext } from '../domain/authorization.ts';
import type { Cell } from '../domain/lifecycle.ts';
import type { Decision, ExposureState } from '../domain/exposure.ts';
import type { TicketRef, TicketStatusCategory } from '../domain/ports.ts';
import type { LifecycleRules } from '../domain/sla.ts';

export { campaignWorkflowId } from '../domain/campaign.ts';

/** The workflow type name, for clients that start it by name. */
export const campaignWorkflowType = 'campaignWorkflow';

/** An exposure entering a campaign, with its lifecycle so far. */
export interface Admission {
  cell: Cell;
  /**
   * new: discovered, its admission (triaged → validated → awaiting-decision) already recorded by the
   *   dispatcher, the owner asked or queued by it;
   * reopened: seen again after it closed; the campaign records the reopening and asks the owner;
   * moved: reassigned from another campaign (its lifecycle continues here, and the new owner is asked
   *   if a decision is pending);
   * migrated: a lifecycle of the previous release, taken over as it stood.
   */
  how: 'new' | 'reopened' | 'moved' | 'migrated';
  /** For reopened: the scan that saw it again. */
  evidence?: { scanId: number; at: string; from: ExposureState; reasons: string[] };
  /** For moved: who reassigned it. */
  by?: string;
}

export interface CampaignWorkflowInput {
  campaignId: string;
  /** 1 for the campaign's first workflow; a large campaign is split over shards 2, 3… */
  shard: number;
  scope: string;
  owner?: string;
  authorization: AuthorizationContext;
  rules: LifecycleRules;
  /** Exposures admitted at start (more arrive through the `admit` signal). */
  admissions: Admission[];
  /** State carried over continue-as-new; absent on a fresh start. */
  carried?: CampaignCarried;
  /** Continue as new after this many history events (tests lower it). */
  historyLimit?: number;
  /** Heartbeat timeout of the outside-system activities (tests lower it to see a killed worker sooner). */
  heartbeatTimeoutMs?: number;
  /**
   * Set when a workflow of this campaign shard may have run (and ended) before: this chain of runs
   * then tags its rollout ids and idempotency keys with its own id (the first run's id), since its
   * turn and round counters start again at 0.
   */
  laterGeneration?: boolean;
}

/** The tag a later generation of a campaign shard puts in its rollout ids and keys. */
export function generationTag(firstExecutionRunId: string): string {
  return firstExecutionRunId.replaceAll('-', '').slice(-12);
}

/** Everything the workflow knows that is not in its input, carried across runs. */
export interface CampaignCarried {
  cells: Cell[];
  /** Side-effect turns so far: the idempotency sequence of the campaign's own requests. */
  turn: number;
  /** Approval rounds so far: each round's patch rollout is its own workflow. */
  round: number;
  /** Messages received but not yet handled when the run continued as new. */
  inbox: InboxItem[];
  /** The campaign's ticket, once opened. */
  ticket?: TicketRef;
}

// ---- signals ------------------------------------------------------------------------------------

/** What a scan said about some of the campaign's exposures (only what changes something). */
export interface ScanChange {
  exposureId: string;
  /** observed: seen again (back after gone, or still there while a fix is verified); absent: covered and not seen. */
  kind: 'observed' | 'absent' | 'retired';
  scanId: number;
  /** ISO time of the scan. */
  at: string;
}

/** Prioritization changed an exposure's decision or deadline (policy change, new intel). */
export interface Rescore {
  exposureId: string;
  /** SSVC outcome label: "Act", "Attend", "Track*", "Track". */
  priority: string;
  /** ISO time: the policy's deadline from the SLA start (paused time is added by the workflow). */
  slaDue: string;
  policyVersion: string;
  contextualCvss?: number | null;
  kev?: boolean;
}

/** A ticket of some of the campaign's exposures changed (a human closed or reopened it). */
export interface TicketChange {
  ticket: TicketRef;
  status: TicketStatusCategory;
  /** ISO time of the change in the ticket system. */
  at: string;
  /** Who changed it, as the ticket system says (free text, for the record). */
  by?: string;
  /** The exposures on the ticket; the campaign applies the change to those it holds. */
  exposureIds: string[];
}

/** A patch rollout of the campaign ended (workflows/patch.ts). Only "succeeded" moves exposures on. */
export interface PatchRolloutFinished {
  rolloutId: string;
  status: 'succeeded' | 'failed' | 'blocked' | 'rejected';
  summary: string;
  /** ISO time the last host finished: verification counts scans after it. */
  finishedAt?: string;
}

export const admitSignal = defineSignal<[Admission[]]>('admit');
export const scanChangesSignal = defineSignal<[ScanChange[]]>('scanChanges');
export const rescoredSignal = defineSignal<[Rescore[]]>('rescored');
export const ticketChangedSignal = defineSignal<[TicketChange]>('ticketChanged');
export const patchRolloutFinishedSignal = defineSignal<[PatchRolloutFinished]>('patchRolloutFinished');

/** Messages queued for the main loop, in arrival order (carried over continue-as-new). */
export type InboxItem =
  | { kind: 'admit'; admissions: Admission[] }
  | { kind: 'scanChanges'; changes: ScanChange[] }
  | { kind: 'rescored'; rescores: Rescore[] }
  | { kind: 'ticketChanged'; change: TicketChange }
  | { kind: 'patchRolloutFinished'; end: PatchRolloutFinished };

// ---- the decision update ------------------------------------------------------------------------

/** One decision for the whole campaign, or for some of its exposures (an exception). */
export interface CampaignDecision {
  decision: Decision;
  /** The exposures it is for; absent: every exposure of the campaign it applies to. */
  exposureIds?: string[];
}

export interface CampaignDecisionResult {
  /** Exposures the decision was applied to, with their state after it. */
  applied: { exposureId: string; state: ExposureState }[];
  /** Exposures it was not applied to, and why (refused by the rules, not held here). */
  refused: { exposureId: string; reason: string }[];
}

/**
 * Validated (well-formed, the actor authorized for the scope and role, allowed in each exposure's
 * state): refused outright when it applies to none of the exposures it names.
 */
export const decideUpdate = defineUpdate<CampaignDecisionResult, [CampaignDecision]>('decide');

// ---- queries ------------------------------------------------------------------------------------

/** One exposure as its campaign holds it. */
export interface ExposureView {
  exposureId: string;
  campaignId: string;
  scope: string;
  assetId: number;
  weaknessKey: string;
  state: ExposureState;
  /** SSVC outcome label. */
  priority: string;
  /** ISO time, paused time included; undefined once closed. */
  slaDue?: string;
  /** True while the SLA clock is paused (snoozed, risk accepted). */
  slaPaused: boolean;
  /** When the SLA clock started (ctem learned of it, or the end of the scope's onboarding grace). */
  slaStart: string;
  owner?: string;
  policyVersion: string;
  contextualCvss?: number | null;
  kev?: boolean;
  /** The campaign's patch rollout this exposure waits for, while it runs. */
  patchRolloutId?: string;
  /** Highest escalation step fired in the current SLA window (-1 none). */
  escalationLevel: number;
  slaBreachedAt?: string;
  /** Verification windows that ran out without evidence. */
  unverifiedWindows: number;
  snoozedUntil?: string;
  riskAccepted?: { by: string; until: string; justification: string };
  fixedAt?: string;
  verifiedBy?: { scanId: number; at: string };
  /** When the scanner first saw it. */
  firstSeen: string;
  resolvedAt?: string;
}

export interface CampaignView {
  campaignId: string;
  shard: number;
  scope: string;
  owner?: string;
  /** Open exposures held, by state. */
  states: Partial<Record<ExposureState, number>>;
  exposures: number;
  assets: number;
  /** The earliest deadline among running clocks. */
  nextDue?: string;
  /** The most urgent priority held. */
  priority?: string;
  ticket?: TicketRef;
  round: number;
  /** The time the workflow next wakes for a deadline, reminder or expiry. */
  wakeAt?: string;
}

export const campaignQuery = defineQuery<CampaignView>('campaign');
export const exposureQuery = defineQuery<ExposureView | null, [string]>('exposure');
/** Every held exposure's view (small campaigns; tests, the migration check). */
export const exposuresQuery = defineQuery<ExposureView[]>('exposures');
