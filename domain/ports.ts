// The interfaces the exposure lifecycle drives. Each integration family implements one of them in
// its folder (tickets/, patching/, chat/, discovery/); the composition root (app/) builds
// them from ctem.yaml into one Integrations object, and the lifecycle calls them through these
// shapes only. Every call is idempotent, keyed by the ids given, because activities run at least once.
import type { Scope } from './config.ts';
import type { ExposureState } from './exposure.ts';

/** How a campaign fixes its exposures (domain/campaign.ts). */
export type CampaignKind = 'package' | 'advisory' | 'config' | 'weakness';

/** What one campaign is about, enough to write a ticket or a chat message. */
export interface CampaignSummary {
  /** Stable id of the campaign ("cmp:<scope>:<owner>:<fix hash>"); the idempotency key of its ticket. */
  id: string;
  scope: string;
  /** Person id of the owner (ctem.yaml people[].id). */
  owner?: string;
  kind: CampaignKind;
  /** What is upgraded, applied or fixed: "openssl", "KB5034441", "CVE-2024-1234". */
  subject: string;
  /** What a person does, in words: "Upgrade openssl to 3.0.7 or later on 120 assets". */
  action: string;
  /** The most urgent priority among its open exposures. */
  priority: string;
  /** ISO time; the earliest SLA deadline among its open exposures. */
  slaDue?: string;
  /** Over the whole campaign, whatever the list below shows. */
  totals: { exposures: number; open: number; assets: number; states: Partial<Record<ExposureState, number>> };
  /** Its exposures, most urgent first; cut to a limit for messages (`more` says how many are left out). */
  exposures: {
    id: string;
    weaknessKey: string;
    title: string;
    asset: string;
    state: ExposureState;
    priority: string;
    reasons: string[];
    package?: { name: string; version?: string; fixedVersion?: string };
  }[];
  /** Exposures not in the list above. */
  more?: number;
  /** Link back to the dashboard's view of this campaign. */
  url?: string;
}

// ---- tickets ---------------------------------------------------------------------------------

export interface TicketRef {
  system: string;
  /** The ticket key in the remote system (Jira "SEC-12", ServiceNow sys_id, GLPI id). */
  key: string;
  url?: string;
}

/** Status category, not names: each system maps its own statuses onto these. */
export type TicketStatusCategory = 'open' | 'in-progress' | 'done';

export interface TicketSystem {
  readonly name: string;
  /** Create the unit's ticket, or find and update it (found by the external key on the ticket). */
  upsert(unit: CampaignSummary): Promise<TicketRef>;
  comment(ref: TicketRef, text: string, idempotencyKey: string): Promise<void>;
  close(ref: TicketRef, resolution: string): Promise<void>;
  reopen(ref: TicketRef, reason: string): Promise<void>;
  status(ref: TicketRef): Promise<TicketStatusCategory>;
}

// ---- patching --------------------------------------------------------------------------------

export interface PatchTarget {
  /** Inventory asset id and how to reach it. */
  assetId: number;
  host: string;
  /** Packages to bring to at least fixedVersion. Validated by the executor before any use. */
  packages: { name: string; fixedVersion?: string }[];
  /** KBs (WSUS) or errata ids (Satellite), when the scanner gave them. */
  advisories?: string[];
  cves: string[];
}

export interface PatchPlan {
  executor: string;
  /** The rollout the plan is for (a campaign's round); the idempotency key of the apply. */
  rolloutId: string;
  targets: PatchTarget[];
  /** Human-readable dry run, shown in the approval request. */
  summary: string;
  steps: { host: string; description: string; command?: string[] }[];
  /** What the dry run found that would keep apply from reaching the fix (fix not in the repositories, host unknown). */
  problems?: { host: string; message: string }[];
}

export interface PatchResult {
  ok: boolean;
  /** Per host outcome with the captured output as evidence. */
  hosts: { host: string; ok: boolean; output: string; rebootRequired?: boolean; jobId?: string }[];
  finishedAt: string;
}

export interface PatchExecutor {
  readonly name: string;
  /**
   * The advisories this executor applies by id that a scanner names in its text (aliases, solution):
   * Microsoft KBs for WSUS, Red Hat errata for Satellite. None when it upgrades packages instead.
   */
  advisoriesIn?(text: string): string[];
  plan(rolloutId: string, targets: PatchTarget[]): Promise<PatchPlan>;
  apply(plan: PatchPlan): Promise<PatchResult>;
}

// ---- scanning --------------------------------------------------------------------------------

export interface RescanRequest {
  /** Idempotency key (e.g. the campaign and the fix time). */
  requestId: string;
  scope: string;
  assetIds: number[];
  weaknessKeys: string[];
  /** Only scans finished after this time count as verification evidence. */
  notBefore: string;
}

export interface RescanTicket {
  requestId: string;
  status: 'queued' | 'running' | 'done' | 'unavailable';
  /** Id of the imported scan once done. */
  scanId?: number;
  detail?: string;
}

export interface ScanConnector {
  readonly name: string;
  /** Launch a targeted scan and import its report through the ordinary ingest path. */
  rescan(req: RescanRequest): Promise<RescanTicket>;
}

// ---- notifications ---------------------------------------------------------------------------

export type NotificationKind = 'decision-request' | 'reminder' | 'escalation' | 'alert' | 'state-change';

export interface OwnerNotification {
  /** Idempotency key: one message per key, updated in place on later calls with the same key. */
  key: string;
  kind: NotificationKind;
  /** Person ids to reach directly. */
  to: string[];
  /** Scope channel(s) to post to as well. */
  channels?: { slack?: string; teams?: string };
  campaign: CampaignSummary;
  /** Escalation level (0 = owner, 1 = team + manager, 2 = CISO), for wording. */
  level?: number;
  text: string;
  /** What the message lists under its text (the exposures a reminder or an escalation is about). */
  lines?: string[];
  /**
   * Reply in the thread of the message sent under this notification key (Slack thread_ts, Teams
   * reply chain), where one was sent to the same conversation; a new message otherwise.
   */
  thread?: string;
  /**
   * Set on a patch approval request (and its escalations): the patch rollout workflow id, whose
   * updates `approvePatch` / `rejectPatch` ({ actor, comment? }) answer it (workflows/patch.ts).
   */
  patchRolloutId?: string;
}

export interface NotificationReceipt {
  delivered: { via: string; ref: string }[];
  /** Why nothing was sent, when nothing was. */
  skipped?: string;
}

/**
 * One message about many campaigns: a person's daily "your queue" (campaigns waiting for their
 * decision, with bulk actions), the aggregated escalations of a window for one audience, or the
 * summary of a backlog import.
 */
export interface DigestNotification {
  /** Idempotency key: one message per key. */
  key: string;
  kind: 'queue' | 'escalations' | 'onboarding';
  /** Person ids to reach directly. */
  to: string[];
  /** Channel(s) to post to (escalations to a scope's channel). */
  channels?: { slack?: string; teams?: string };
  /** The heading: "Your queue for Monday 7 December: 12 campaigns, 340 exposures". */
  title: string;
  /** A sentence under the heading. */
  text: string;
  /**
   * The campaigns, most urgent first (their exposure lists cut short), each with its own lines (in
   * a queue: what waits for a decision, then the reminders queued since the last queue).
   */
  campaigns: {
    campaign: CampaignSummary;
    lines?: string[];
    level?: number;
    /**
     * In a queue, why the campaign is urgent under the owner's policy ("in CISA KEV"): its request
     * was sent at once, and the queue lists it again because it still waits for a decision.
     */
    urgent?: string;
  }[];
  /** Campaigns not listed. */
  more?: number;
  /** Link to the dashboard's queue. */
  url?: string;
}

export interface Notifier {
  readonly name: string;
  notify(n: OwnerNotification): Promise<NotificationReceipt>;
  digest(n: DigestNotification): Promise<NotificationReceipt>;
}

// ---- chat posting ----------------------------------------------------------------------------

/** A ready-made message posted to a chat conversation (the weekly digest), through the chat bots' transports. */
export interface ChatPosting {
  slack?: { post(channel: string, message: unknown): Promise<string> };
  teams?: { post(conversation: string, activity: unknown): Promise<string> };
}

// ---- the integrations of one process ------------------------------------------------------------

/** What a scheduled job did, in one sentence, and the scans it imported (their changes are dispatched). */
export interface JobOutcome {
  detail: string;
  scanIds?: number[];
  /** Exposures whose priority or deadline changed (a feed sync's re-score): their workflows are told. */
  rescoredExposureIds?: string[];
}

/** What one scope uses, as ctem.yaml configures it (undefined where it configures nothing). */
export interface ScopeIntegrations {
  scope?: Scope;
  tickets?: TicketSystem;
  patch?: PatchExecutor;
  scanner?: ScanConnector;
}

/**
 * Every integration of one process, built from the configuration by the composition root (app/)
 * and handed down in the dependencies: the code that uses one never looks it up anywhere else.
 */
export interface Integrations {
  /** Throws UnknownIntegrationError when the scope names an implementation nobody registered. */
  forScope(scope: string): ScopeIntegrations;
  /** Every notifier whose integration section is present in ctem.yaml. */
  notifiers(): Notifier[];
  /** The work behind the Temporal Schedules (lifecycle/schedules.ts). */
  jobs: {
    /** A scope's full scan cycle: launch its scan, ingest the report (as a cycle scan). */
    scanCycle?: (scope: Scope) => Promise<JobOutcome>;
    /** Load every configured feed and re-score. */
    feedSync?: () => Promise<JobOutcome>;
    /** Render and send the weekly digest. */
    digest?: () => Promise<JobOutcome>;
  };
  /** Posting to chat conversations, when a chat bot is configured. */
  chat?: ChatPosting;
}

/** Thrown when ctem.yaml names an implementation nobody registered: a configuration error, not retryable. */
export class UnknownIntegrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnknownIntegrationError';
  }
}
