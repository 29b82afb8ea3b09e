// What an exposure workflow is started with, and what it carries over continue-as-new. Types only:
// the dispatcher (an activity) builds the input, the workflow reads it.
import type { AuthorizationContext } from '../domain/authorization.ts';
import type { ExposureState } from '../domain/exposure.ts';
import type { LifecycleRules, SlaClock } from '../domain/sla.ts';
import type { ExposureView } from './exposure.ts';

/** The triage decided set-based by the dispatcher and passed in at start. */
export interface Triage {
  /** SSVC outcome label: "Act", "Attend", "Track*", "Track". */
  priority: string;
  /** ISO time: the policy's deadline (the scope's SLA override applied). */
  slaDue: string;
  reasons: string[];
  policyVersion: string;
  /** Contextual CVSS score, null without a usable vector (absent in inputs from before it was passed). */
  contextualCvss?: number | null;
  /** In CISA KEV. */
  kev?: boolean;
  /** Scan that brought the exposure in (or back): evidence, and the key of its decision request. */
  scanId: number;
  /** ISO time of that scan. */
  observedAt: string;
}

export interface ExposureWorkflowInput {
  exposureId: string;
  scope: string;
  assetId: number;
  weaknessKey: string;
  /** ISO time the exposure was first seen: the SLA clock starts there. */
  firstSeen: string;
  owner?: string;
  remediationUnitId?: string;
  triage: Triage;
  /** The dispatcher already recorded the "triaged" transition (set-based, with the triage). */
  triageRecorded: boolean;
  /**
   * The dispatcher also validated the exposure and asked its unit's owner (set-based, one message
   * per unit) and recorded it: the workflow starts in awaiting-decision.
   */
  decisionRequested?: boolean;
  /** Set when the weakness came back after the exposure was closed: the state it was in. */
  reopenedFrom?: ExposureState;
  authorization: AuthorizationContext;
  rules: LifecycleRules;
  /** Continue as new after this many history events (tests lower it). */
  historyLimit?: number;
  /** Heartbeat timeout of the outside-system activities (tests lower it to see a killed worker sooner). */
  heartbeatTimeoutMs?: number;
  /** State carried over continue-as-new; absent on a fresh start. */
  carried?: CarriedState;
  /**
   * The lifecycle revision the dispatcher started this workflow with (LIFECYCLE_REVISION). Kept
   * across continue-as-new, so a run keeps the behaviour it started with and replays deterministically;
   * absent (0) in workflows started before revisions existed. Changes gated on it, unlike `patched()`,
   * add no marker and no search-attribute update to every history.
   */
  revision?: number;
}

/**
 * The current lifecycle revision:
 *  1. remediation is routed by a local activity to the steps the scope has configured (unconfigured
 *     ones are recorded as skipped with no activity), and the main loop keeps one wake-up timer
 *     while its time is unchanged instead of cancelling and starting one on every change.
 */
export const LIFECYCLE_REVISION = 1;

/** Everything the workflow knows that is not in its input, carried across runs. */
export interface CarriedState {
  view: ExposureView;
  clock: SlaClock;
  /** Number of transitions recorded so far: the idempotency sequence. */
  seq: number;
  /** Idempotency prefix of this lifecycle: the first run id, stable across continue-as-new. */
  lifecycleKey: string;
  approvedAtMs?: number;
  /** Remediation steps done for the current approval. */
  remediationStarted: boolean;
  rescanRequestedForFixMs?: number;
  /** The unit's patch rollout this lifecycle waits for (its end arrives as a signal). */
  patchRolloutId?: string;
  /** The reminder before a risk acceptance ends was sent. */
  riskReminderSent?: boolean;
  /** Verification windows that already ran out without evidence. */
  unverifiedWindows: number;
  lastObservedMs: number;
  /** Signals received but not yet handled when the run continued as new. */
  inbox: InboxItem[];
}

export type InboxItem =
  | { kind: 'observed'; scanId: number; at: string }
  | { kind: 'absent'; scanId: number; at: string; assetRetired?: boolean }
  | {
      kind: 'rescored';
      priority: string;
      slaDue: string;
      reasons: string[];
      policyVersion: string;
      contextualCvss?: number | null;
      kev?: boolean;
    }
  | {
      kind: 'patchRolloutFinished';
      rolloutId: string;
      status: 'succeeded' | 'failed' | 'blocked' | 'rejected';
      summary: string;
      finishedAt?: string;
    }
  | {
      kind: 'ticketChanged';
      ticket: { system: string; key: string; url?: string };
      status: 'open' | 'in-progress' | 'done';
      at: string;
      by?: string;
    };
