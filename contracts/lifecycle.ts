// The shapes the campaign workflow exchanges with its activities. Types only, so the workflow can
// import them (`import type`) without pulling activity code into the sandbox.
import type { ExposureState } from '../domain/exposure.ts';
import type { Cell } from '../domain/lifecycle.ts';
import type { EscalationAudience } from '../domain/sla.ts';
import type { NotificationReceipt, PatchTarget, RescanTicket, TicketRef } from '../domain/ports.ts';

/** An exposure's current row as its campaign sees it; written only if `seq` is newer than the row's. */
export interface ExposureRow {
  exposureId: string;
  assetId: number;
  weaknessKey: string;
  scope: string;
  campaignId: string;
  shard: number;
  state: ExposureState;
  priority: string;
  slaDue?: string;
  policyVersion: string;
  owner?: string;
  /** Contextual CVSS and KEV of the latest triage; undefined keeps what the row holds. */
  contextualCvss?: number | null;
  kev?: boolean;
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
  /** The lifecycle and its sequence number: the row keeps the newest write. */
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
    campaignId: string;
    from?: ExposureState;
    to?: ExposureState;
    policyVersion: string;
    inputs?: unknown;
    evidence?: unknown;
  };
  row?: ExposureRow;
}

/** The campaign (and shard) a request comes from. */
export interface CampaignRef {
  campaignId: string;
  shard: number;
  scope: string;
  owner?: string;
}

/** The owner has to decide on some of the campaign's exposures (again). */
export interface AskOwnerRequest extends CampaignRef {
  /** Idempotency key of this request (campaign turn). */
  key: string;
  exposureIds: string[];
  /** Why, one per distinct reason. */
  why: string[];
}

export interface NotifyOutcome extends NotificationReceipt {
  /**
   * now: a message was sent (or updated); queued: not urgent under the notification policy, it is
   * in the owner's next daily queue; aggregated: waiting for the audience's next escalation digest.
   */
  sent: 'now' | 'queued' | 'aggregated' | 'skipped';
  recipients: string[];
  /** An earlier attempt already sent this key. */
  alreadySent: boolean;
}

/** A reminder or an escalation about some of the campaign's exposures, one message per audience. */
export interface CampaignNotifyRequest extends CampaignRef {
  key: string;
  kind: 'reminder' | 'escalation';
  level: number;
  audiences: EscalationAudience[];
  /** One line per exposure it is about. */
  lines: string[];
  exposureIds: string[];
}

/** An approval round: the campaign's ticket, and what its patch rollout would cover. */
export interface RemediateRequest extends CampaignRef {
  /** Idempotency prefix of the round's records. */
  key: string;
  round: number;
  exposureIds: string[];
}

export interface RemediateOutcome {
  ticket?: TicketRef;
  /** Why no ticket was opened (no ticket system in the scope). */
  ticketSkipped?: string;
  /** What the round's rollout patches; absent when the scope has no patch executor. */
  patch?: {
    targets: PatchTarget[];
    exposures: { exposureId: string; assetId: number; weaknessKey: string }[];
  };
  patchSkipped?: string;
}

export interface CampaignTicketRequest extends CampaignRef {
  key: string;
  /**
   * close-if-done closes the campaign's ticket only when every exposure of the campaign is closed;
   * refresh renders the ticket again from what the campaign holds now (after a re-score).
   */
  action: 'comment' | 'reopen' | 'close-if-done' | 'refresh';
  text: string;
  exposureIds: string[];
}

export interface TicketUpdateOutcome {
  done: boolean;
  skipped?: string;
}

/** A verifying re-scan of some of the campaign's assets, for one fix time. */
export interface CampaignRescanRequest extends CampaignRef {
  /** One request per id, whoever asks: the campaign, its shard, the fix time and the verification window. */
  requestId: string;
  key: string;
  exposureIds: string[];
  assetIds: number[];
  weaknessKeys: string[];
  notBefore: string;
}

export type RescanOutcome = RescanTicket;

/** Reassigned exposures leave for the new owner's campaign (exactly once: the target keeps the first). */
export interface MoveRequest extends CampaignRef {
  key: string;
  to: string;
  by: string;
  cells: Cell[];
}

export interface MoveOutcome {
  moved: { exposureId: string; campaignId: string; shard: number }[];
}
