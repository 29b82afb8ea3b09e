// What a chat message about a remediation unit shows, independent of Slack or Teams: the
// notification as the lifecycle sent it, the latest state of each exposure, and the decisions taken
// from chat. The model is stored beside each posted message (chat_messages.model) so a click, a
// retry or a later notification with the same key re-renders the same message in place.
import { createHash } from 'node:crypto';
import type { OwnerNotification } from '../domain/ports.ts';
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
}

export interface ChatMessageModel {
  notification: OwnerNotification;
  /** Latest known state per exposure id, overriding the notification's snapshot. */
  states: Record<string, ExposureState>;
  actions: ChatAction[];
}

/** A scope alert (bots/alerts.ts): a fact for the scope's channel, no decisions on it. */
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
export type StoredModel = ChatMessageModel | AlertModel;

export function isAlert(model: unknown): model is AlertModel {
  return typeof model === 'object' && model !== null && (model as { type?: unknown }).type === 'alert';
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
function patchAsked(model: ChatMessageModel): boolean {
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

/**
 * States a notification may show for an exposure whose owner is still to decide: the message is
 * rendered from a snapshot taken while the lifecycle was asking, so it can lag a step behind.
 */
const beforeDecision: readonly ExposureState[] = [
  'open',
  'triaged',
  'validated',
  'awaiting-decision',
  'reopened',
];

/**
 * Exposures of the message a decision of this kind may still apply to, as far as the message
 * knows; the workflow's validator has the last word (and its refusal is shown and recorded).
 */
export function actionableIds(model: ChatMessageModel, kind: DecisionKind): string[] {
  // A patch approval request is answered about the rollout, never per exposure.
  if (patchRolloutOf(model.notification) !== undefined) return [];
  return model.notification.campaign.exposures
    .filter((e) => {
      const s = stateOf(model, e.id);
      return s !== undefined && (beforeDecision.includes(s) || admittedIn[kind].includes(s));
    })
    .map((e) => e.id);
}

// ---- the view both renderers fill their templates from ------------------------------------------

export interface SnoozeChoice {
  days: number;
  label: string;
}

export interface ExposureLine {
  ref: string;
  weaknessKey: string;
  title: string;
  asset: string;
  priority: string;
  state: ExposureState;
  stateLabel: string;
  /** Some decision may still be taken on it. */
  open: boolean;
  /** Position among the shown lines (Slack action ids must be unique per message). */
  index: number;
}

export interface MessageView {
  kind: OwnerNotification['kind'];
  kindLabel: string;
  level?: number;
  /** The notification's first line; `detail` the rest (a patch plan's steps, a failure's output). */
  headline: string;
  detail?: string;
  scope: string;
  action: string;
  priority: string;
  slaDue?: string;
  overdue: boolean;
  owner?: string;
  reasons: string[];
  fixes: string[];
  exposures: ExposureLine[];
  moreCount: number;
  total: number;
  /** How many exposures a decision "for all" would still touch. */
  openCount: number;
  many: boolean;
  snoozeChoices: SnoozeChoice[];
  acted: string[];
  /** A patch plan's approval request: approve or reject the rollout, nothing per exposure. */
  patch?: { rolloutId: string; open: boolean };
  url?: string;
  /** Fallback text for notifications and screen readers. */
  summary: string;
}

export interface ViewContext {
  nowMs: number;
  personName(id: string): string;
  snoozeChoices: SnoozeChoice[];
  /** Most exposure lines a message lists (the rest are counted). */
  maxLines?: number;
}

const kindLabels: Record<OwnerNotification['kind'], string> = {
  'decision-request': 'Decision needed',
  reminder: 'Reminder',
  escalation: 'SLA escalation',
  alert: 'Alert',
  'state-change': 'Update',
};

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

const verbs: Record<DecisionKind | PatchDecisionKind, string> = {
  approvePatch: 'approved the patch plan',
  rejectPatch: 'rejected the patch plan',
  approve: 'approved the fix',
  snooze: 'snoozed',
  acceptRisk: 'accepted the risk',
  markFalsePositive: 'marked as false positive',
  reassign: 'reassigned',
};

export function stateLabel(state: ExposureState): string {
  return stateLabels[state];
}

export function formatTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function relative(ms: number): string {
  const abs = Math.abs(ms);
  if (abs >= 86_400_000) return `${Math.round(abs / 86_400_000)} d`;
  if (abs >= 3_600_000) return `${Math.round(abs / 3_600_000)} h`;
  return `${Math.max(1, Math.round(abs / 60_000))} min`;
}

export function buildView(model: ChatMessageModel, ctx: ViewContext): MessageView {
  const n = model.notification;
  const unit = n.campaign;
  const maxLines = ctx.maxLines ?? 15;
  const rolloutId = patchRolloutOf(n);
  const lines: ExposureLine[] = unit.exposures.slice(0, maxLines).map((e, index) => {
    const state = stateOf(model, e.id) ?? e.state;
    return {
      ref: exposureRef(e.id),
      weaknessKey: e.weaknessKey,
      title: e.title,
      asset: e.asset,
      priority: e.priority,
      state,
      stateLabel: stateLabel(state),
      open:
        rolloutId === undefined &&
        !terminalStates.includes(state) &&
        (Object.keys(admittedIn) as DecisionKind[]).some((k) => admittedIn[k].includes(state)),
      index,
    };
  });
  const reasons = [...new Set([...unit.exposures.flatMap((e) => e.reasons)])].slice(0, 6);
  const fixes = [unit.action];
  for (const e of unit.exposures) {
    const p = e.package;
    if (p?.name && p.fixedVersion) {
      const line = `${p.name}${p.version ? ` ${p.version}` : ''} → ${p.fixedVersion} or later (${e.weaknessKey})`;
      if (!fixes.includes(line) && fixes.length < 6) fixes.push(line);
    }
  }
  const dueMs = unit.slaDue ? Date.parse(unit.slaDue) : NaN;
  const overdue = !Number.isNaN(dueMs) && dueMs < ctx.nowMs;
  const slaDue = unit.slaDue
    ? `${formatTime(unit.slaDue)} (${overdue ? `overdue by ${relative(ctx.nowMs - dueMs)}` : `in ${relative(dueMs - ctx.nowMs)}`})`
    : undefined;
  const openCount =
    rolloutId !== undefined
      ? 0
      : unit.exposures.filter((e) => {
          const s = stateOf(model, e.id) ?? e.state;
          return !terminalStates.includes(s) && s !== 'remediating' && s !== 'verifying';
        }).length;
  const acted = model.actions.map((a) => {
    const count = a.exposureIds.length === 1 ? '' : ` for ${a.exposureIds.length} exposures`;
    return `${a.name} ${verbs[a.kind]}${count}${a.detail ? ` (${a.detail})` : ''} · ${formatTime(a.at)} via ${a.via}`;
  });
  const levelWords = n.kind === 'escalation' && n.level !== undefined ? ` (level ${n.level})` : '';
  const label =
    rolloutId !== undefined && n.kind === 'decision-request'
      ? 'Patch approval needed'
      : `${kindLabels[n.kind]}${levelWords}`;
  const summary = `${label}: ${unit.action} [${unit.priority}]`;
  return {
    kind: n.kind,
    kindLabel: label,
    level: n.level,
    headline: n.text.split('\n')[0]!,
    ...(n.text.includes('\n') ? { detail: n.text.slice(n.text.indexOf('\n') + 1).trim() } : {}),
    scope: unit.scope,
    action: unit.action,
    priority: unit.priority,
    slaDue,
    overdue,
    owner: unit.owner ? ctx.personName(unit.owner) : undefined,
    reasons,
    fixes,
    exposures: lines,
    moreCount: Math.max(0, unit.exposures.length - lines.length),
    total: unit.exposures.length,
    openCount,
    many: unit.exposures.length > 1,
    snoozeChoices: ctx.snoozeChoices,
    acted,
    ...(rolloutId !== undefined ? { patch: { rolloutId, open: patchAsked(model) } } : {}),
    url: unit.url,
    summary,
  };
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
