// The shapes the exposure workflow exchanges with its activities. Types only, so the workflow can
// import them (`import type`) without pulling activity code into the sandbox.
import type { ExposureState } from '../domain/exposure.ts';
import type { EscalationAudience } from '../domain/sla.ts';
import type { NotificationKind, PatchTarget, RescanTicket, TicketRef } from '../domain/ports.ts';

/** The exposure's current row as the workflow sees it; written only if `seq` is newer than the row's. */
export interface ExposureRow {
  exposureId: string;
  assetId: number;
  weaknessKey: string;
  scope: string;
  state: ExposureState;
  priority: string;
  slaDue?: string;
  policyVersion: string;
  owner?: string;
  reasons: string[];
  /** Contextual CVSS and KEV of the latest triage; undefined keeps what the row holds. */
  contextualCvss?: number | null;
  kev?: boolean;
  remediationUnitId?: string;
  escalationLevel: number;
  slaPaused: boolean;
  slaBreachedAt?: string;
  snoozedUntil?: string;
  riskAcceptedUntil?: string;
  riskAcceptedBy?: string;
  fixedAt?: string;
  verifiedAt?: string;
  verifiedScanId?: number;
  resolvedAt?: string;
  exposureSeconds?: number;
  firstSeen: string;
  /** The lifecycle (first run id) and its sequence number: the row keeps the newest write. */
  lifecycle: string;
  seq: number;
}

/** One append-only event, with the row it leaves behind when it changes the exposure. */
export interface LifecycleRecord {
  /** Idempotency key: `<exposure>:<lifecycle>:<seq>`; a retried or replayed write is a no-op. */
  key: string;
  exposureId: string;
  /** What happened: a state ("validated", "resolved"), a decision ("approve"), or an event ("sla-escalated"). */
  type: string;
  /** Person id, or "system". */
  actor: string;
  reason: string;
  /** ISO workflow time. */
  at: string;
  data: {
    seq: number;
    from?: ExposureState;
    to?: ExposureState;
    policyVersion: string;
    inputs?: unknown;
    evidence?: unknown;
  };
  row?: ExposureRow;
}

export interface NotifyRequest {
  /** Notification idempotency key; exposures of one unit share it, so the unit gets one message. */
  key: string;
  kind: NotificationKind;
  exposureId: string;
  scope: string;
  owner?: string;
  unitId?: string;
  level?: number;
  audiences: EscalationAudience[];
  text: string;
  /** Key of the exposure's own event about it. */
  eventKey: string;
  /** A patch approval request: the rollout workflow whose approvePatch/rejectPatch updates answer it. */
  patchRolloutId?: string;
}

export interface NotifyOutcome {
  delivered: { via: string; ref: string }[];
  /** Why nothing was sent, when nothing was (no notifier configured, nobody to reach). */
  skipped?: string;
  recipients: string[];
  /** Another exposure of the unit (or an earlier attempt) already sent this key. */
  alreadySent: boolean;
}

export interface RemediationRequest {
  exposureId: string;
  scope: string;
  unitId?: string;
  eventKey: string;
}

export interface RemediationRouteRequest {
  exposureId: string;
  scope: string;
  /** Idempotency keys of the skip records, should a step not be configured. */
  ticketEventKey: string;
  patchEventKey: string;
}

/** The remediation steps the scope has configured: the workflow runs only those. */
export interface RemediationRoute {
  tickets: boolean;
  patch: boolean;
}

export interface TicketOutcome {
  ticket?: TicketRef;
  skipped?: string;
}

export interface PatchOutcome {
  /** Undefined when no patch ran (skipped). */
  ok?: boolean;
  /** ISO time the patch job finished: the fix time verification counts from. */
  finishedAt?: string;
  summary: string;
  skipped?: string;
}

export interface PatchRolloutJoinRequest extends RemediationRequest {
  /** ISO time of the approval that sent the exposure to remediation: rollouts that ended before it are old. */
  since: string;
}

/**
 * The unit's patch rollout this exposure takes part in: one per unit and round, shared by its
 * exposures. `finished` when it already ended (the exposure joins too late to wait for it).
 */
export interface PatchRolloutJoin {
  skipped?: string;
  rolloutId?: string;
  unitId?: string;
  targets?: PatchTarget[];
  exposures?: { exposureId: string; assetId: number; weaknessKey: string }[];
  finished?: {
    status: 'succeeded' | 'failed' | 'blocked' | 'rejected';
    summary: string;
    finishedAt?: string;
  };
}

export interface TicketUpdateRequest extends RemediationRequest {
  /**
   * close-if-done closes the unit's ticket only when every exposure of the unit is closed; refresh
   * renders the ticket again from what the unit's exposures hold now (after a re-score).
   */
  action: 'comment' | 'reopen' | 'close-if-done' | 'refresh';
  text: string;
}

export interface TicketUpdateOutcome {
  done: boolean;
  skipped?: string;
}

export interface RescanRequestInput {
  requestId: string;
  exposureId: string;
  scope: string;
  assetId: number;
  weaknessKey: string;
  notBefore: string;
  eventKey: string;
}

export type RescanOutcome = RescanTicket;

export interface MoveToOwnerRequest {
  exposureId: string;
  scope: string;
  owner: string;
}
