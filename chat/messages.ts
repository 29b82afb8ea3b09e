// What a chat message holds, independent of Slack or Teams: a campaign's message (the notification
// as the lifecycle sent it, the latest state of its exposures, the decisions taken on it), a digest
// about many campaigns (the daily queue, gathered escalations, an onboarding summary), or a scope
// alert. The model is stored beside each posted message (chat_messages.model) so a click, a retry,
// a decision elsewhere or a later notification with the same key re-renders the same message in place.
import { createHash } from 'node:crypto';
import type { CampaignSummary, DigestNotification, OwnerNotification } from '../domain/ports.ts';
import type { Decision, DecisionKind, ExposureState } from '../domain/exposure.ts';
import { terminalStates } from '../domain/exposure.ts';
import { admittedIn } from '../domain/decisionAdmission.ts';

/** The answers to a patch plan's approval request (workflows/patch.ts approvePatch / rejectPatch). */
export type PatchDecisionKind = 'approvePatch' | 'rejectPatch';

export interface ChatAction {
  personId: string;
  name: string;
  kind: DecisionKind | PatchDecisionKind;
  exposureIds: string[];
  /** ISO time. */
  at: string;
  /** What was decided, in words: "snoozed until 2026-01-10". */
  detail: string;
  via: string;
  /** The campaign it was about (a digest shows each decision under its campaign). */
  campaignId?: string;
}

export interface ChatMessageModel {
  notification: OwnerNotification;
  /** Latest known state per exposure id, overriding the notification's snapshot. */
  states: Record<string, ExposureState>;
  actions: ChatAction[];
  /**
   * When the campaign's summary shown was read after a decision (epoch ms, by campaign id): of two
   * refreshes at once, the one read last is kept (chat/delivery.ts).
   */
  readAt?: Record<string, number>;
}

/** A message about many campaigns (domain/ports.ts DigestNotification) and the decisions taken on it. */
export interface DigestModel {
  type: 'digest';
  digest: DigestNotification;
  actions: ChatAction[];
  /** When each campaign's entry was last read after a decision (epoch ms, by campaign id). */
  readAt?: Record<string, number>;
}

/** A scope alert (chat/alerts.ts): a fact for the scope's channel, no decisions on it. */
export interface AlertModel {
  type: 'alert';
  rule: 'new-exposure' | 'sla-breached' | 'end-of-life';
  scope: string;
  title: string;
  /** Why the rule fired, one sentence each. */
  because: string[];
  facts: { title: string; value: string }[];
  /** ISO time the alert was raised. */
  at: string;
  url?: string;
}

/** What chat_messages.model holds. */
export type StoredModel = ChatMessageModel | DigestModel | AlertModel;

export function isAlert(model: unknown): model is AlertModel {
  return typeof model === 'object' && model !== null && (model as { type?: unknown }).type === 'alert';
}

export function isDigest(model: unknown): model is DigestModel {
  return typeof model === 'object' && model !== null && (model as { type?: unknown }).type === 'digest';
}

/** How a stored model is rendered: where the message sits. */
export interface RenderContext {
  /** Posted (or to be posted) as a reply in the thread of the campaign's original message. */
  inThread: boolean;
}

/**
 * The patch rollout a notification is about, if any: `patchRolloutId` as the rollout workflow sets
 * it (workflows/patch.ts). A request sent before that field existed is recognised by its key,
 * "<unit>:patch-approval:<rollout id>".
 */
export function patchRolloutOf(n: OwnerNotification): string | undefined {
  if (n.patchRolloutId) return n.patchRolloutId;
  if (n.kind !== 'decision-request') return undefined;
  return /:patch-approval:(patch-.+)$/.exec(n.key)?.[1];
}

/** Whether the message still asks for a patch answer: a request or reminder, not yet answered. */
export function patchAsked(model: ChatMessageModel): boolean {
  const kind = model.notification.kind;
  return (kind === 'decision-request' || kind === 'reminder') && patchDecisionOf(model) === undefined;
}

/** The patch decision shown on the message, once one was taken from chat (or seen elsewhere). */
export function patchDecisionOf(model: ChatMessageModel): ChatAction | undefined {
  return model.actions.find((a) => a.kind === 'approvePatch' || a.kind === 'rejectPatch');
}

export function newModel(notification: OwnerNotification, previous?: ChatMessageModel): ChatMessageModel {
  // A later notification with the same key brings fresh states; decisions already shown stay shown.
  const states: Record<string, ExposureState> = {};
  for (const e of notification.campaign.exposures) states[e.id] = e.state;
  return { notification, states, actions: previous?.actions ?? [] };
}

/** Action values carry the exposure id, or a digest of it when the id is too long for Slack (150 chars). */
export function exposureRef(id: string): string {
  return id.length <= 100 ? id : `#${createHash('sha256').update(id).digest('hex').slice(0, 20)}`;
}

export function resolveRef(model: ChatMessageModel, ref: string): string | undefined {
  return model.notification.campaign.exposures.find((e) => exposureRef(e.id) === ref)?.id;
}

export function stateOf(model: ChatMessageModel, exposureId: string): ExposureState | undefined {
  return (
    model.states[exposureId] ?? model.notification.campaign.exposures.find((e) => e.id === exposureId)?.state
  );
}

/** Decision kinds, in the order forms and menus offer them. */
export const decisionKinds: readonly DecisionKind[] = [
  'approve',
  'snooze',
  'acceptRisk',
  'markFalsePositive',
  'reassign',
];

/** The decision kinds an exposure in this state may still take. */
export function kindsAdmittedIn(state: ExposureState): DecisionKind[] {
  return decisionKinds.filter((k) => admittedIn[k].includes(state));
}

/**
 * States in which an exposure still waits for its owner's decision: what a decision for the whole
 * campaign applies to (approve, snooze… take every exposure in these states).
 */
export const waitingStates: readonly ExposureState[] = admittedIn.approve;

/** How many of the campaign's exposures (all of them, listed or not) a campaign-wide decision would take. */
export function waitingCount(campaign: CampaignSummary, states?: Record<string, ExposureState>): number {
  let n = 0;
  for (const [state, count] of Object.entries(campaign.totals.states) as [ExposureState, number][])
    if (waitingStates.includes(state)) n += count;
  if (!states) return n;
  // Listed exposures whose state the message learnt after the summary was taken.
  for (const e of campaign.exposures) {
    const now = states[e.id];
    if (now === undefined || now === e.state) continue;
    n += Number(waitingStates.includes(now)) - Number(waitingStates.includes(e.state));
  }
  return Math.max(0, n);
}

/**
 * Exposures of the message a decision of this kind may still apply to, as far as the message knows
 * (the listed ones); the workflow's validator has the last word.
 */
export function actionableIds(model: ChatMessageModel, kind: DecisionKind): string[] {
  // A patch approval request is answered about the rollout, never per exposure.
  if (patchRolloutOf(model.notification) !== undefined) return [];
  return model.notification.campaign.exposures
    .filter((e) => {
      const s = stateOf(model, e.id);
      return s !== undefined && admittedIn[kind].includes(s);
    })
    .map((e) => e.id);
}

// ---- words shared by the views ------------------------------------------------------------------

export interface SnoozeChoice {
  days: number;
  label: string;
}

const stateLabels: Record<ExposureState, string> = {
  open: 'open',
  triaged: 'awaiting triage',
  validated: 'validated',
  'awaiting-decision': 'awaiting decision',
  remediating: 'fix approved, remediating',
  verifying: 'verifying by re-scan',
  resolved: 'resolved',
  snoozed: 'snoozed',
  'risk-accepted': 'risk accepted',
  'false-positive': 'false positive',
  reopened: 'reopened',
  retired: 'asset retired',
};

/** The order a campaign's state counts are spelt out in: what waits first, what is closed last. */
const stateOrder: readonly ExposureState[] = [
  'awaiting-decision',
  'reopened',
  'open',
  'triaged',
  'validated',
  'snoozed',
  'risk-accepted',
  'remediating',
  'verifying',
  'resolved',
  'false-positive',
  'retired',
];

export function stateLabel(state: ExposureState): string {
  return stateLabels[state];
}

export function formatTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export function relative(ms: number): string {
  const abs = Math.abs(ms);
  if (abs >= 86_400_000) return `${Math.round(abs / 86_400_000)} d`;
  if (abs >= 3_600_000) return `${Math.round(abs / 3_600_000)} h`;
  return `${Math.max(1, Math.round(abs / 60_000))} min`;
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** "2 awaiting decision · 3 fix approved, remediating · 1 resolved". */
export function stateBreakdown(states: Partial<Record<ExposureState, number>>): string {
  return stateOrder
    .filter((s) => (states[s] ?? 0) > 0)
    .map((s) => `${states[s]} ${stateLabels[s]}`)
    .join(' · ');
}

/** A campaign's state counts with what the message learnt since its summary was taken. */
export function currentStates(
  campaign: CampaignSummary,
  states?: Record<string, ExposureState>,
): Partial<Record<ExposureState, number>> {
  const counts = { ...campaign.totals.states };
  if (!states) return counts;
  for (const e of campaign.exposures) {
    const now = states[e.id];
    if (now === undefined || now === e.state) continue;
    counts[e.state] = Math.max(0, (counts[e.state] ?? 1) - 1);
    counts[now] = (counts[now] ?? 0) + 1;
  }
  return counts;
}

/**
 * Where the campaign stands, in one sentence: what still waits for a decision, else what was
 * decided, else that it is closed.
 */
export function campaignStatus(campaign: CampaignSummary, states?: Record<string, ExposureState>): string {
  const counts = currentStates(campaign, states);
  const total = Object.values(counts).reduce((a, b) => a + (b ?? 0), 0);
  const open = total - terminalStates.reduce((a, s) => a + (counts[s] ?? 0), 0);
  const waiting = (['awaiting-decision', 'reopened', 'open', 'triaged', 'validated'] as const).reduce(
    (a, s) => a + (counts[s] ?? 0),
    0,
  );
  const assets = plural(campaign.totals.assets, 'asset');
  if (waiting > 0)
    return `${waiting} of ${plural(open, 'open exposure')} on ${assets} ${waiting === 1 ? 'waits' : 'wait'} for a decision`;
  if (open > 0) return `No decision pending on ${assets}: ${stateBreakdown(counts)}`;
  if (total > 0) return `Closed: ${stateBreakdown(counts)}`;
  return 'No exposure left in this campaign';
}

const verbs: Record<DecisionKind | PatchDecisionKind, string> = {
  approvePatch: 'approved the patch plan',
  rejectPatch: 'rejected the patch plan',
  approve: 'approved the fix',
  snooze: 'snoozed',
  acceptRisk: 'accepted the risk',
  markFalsePositive: 'marked as false positive',
  reassign: 'reassigned',
};

/** "Olivia Owner approved the fix for 2 exposures (…) · 2026-01-01 10:00 UTC via Slack". */
export function actedLine(a: ChatAction): string {
  const count = a.exposureIds.length === 1 ? '' : ` for ${a.exposureIds.length} exposures`;
  return `${a.name} ${verbs[a.kind]}${count}${a.detail ? ` (${a.detail})` : ''} · ${formatTime(a.at)} via ${a.via}`;
}

type WithoutActor<D> = D extends unknown ? Omit<D, 'actor'> : never;

/** A decision's particulars in words, for the "who acted" line: "until 2026-01-10 00:00 UTC: …". */
export function describeDecision(input: WithoutActor<Decision>, personName: (id: string) => string): string {
  const clip = (s: string) => (s.length > 200 ? `${s.slice(0, 199)}…` : s);
  switch (input.kind) {
    case 'approve':
      return input.comment ? clip(input.comment) : '';
    case 'snooze':
      return `until ${formatTime(input.until)}${input.reason ? `: ${clip(input.reason)}` : ''}`;
    case 'acceptRisk':
      return `until ${formatTime(input.expires)}: ${clip(input.justification)}`;
    case 'markFalsePositive':
      return clip(input.reason);
    case 'reassign':
      return `to ${personName(input.to)}${input.reason ? `: ${clip(input.reason)}` : ''}`;
  }
}
