// The views both renderers fill their templates from (templates/slack, templates/teams): a
// campaign's message (header with priority and action, where it stands, its exposures, the decisions
// still possible), a reply in its thread (no decision buttons: decisions are taken on the original),
// and a digest about many campaigns (with bulk actions for a daily queue).
import type { CampaignSummary, OwnerNotification } from '../domain/ports.ts';
import type { DecisionKind, ExposureState } from '../domain/exposure.ts';
import { terminalStates } from '../domain/exposure.ts';
import {
  actedLine,
  campaignStatus,
  currentStates,
  exposureRef,
  formatTime,
  kindsAdmittedIn,
  patchAsked,
  patchRolloutOf,
  plural,
  relative,
  stateLabel,
  stateOf,
  waitingCount,
  type ChatMessageModel,
  type DigestModel,
  type SnoozeChoice,
} from './messages.ts';

export interface ViewContext {
  nowMs: number;
  personName(id: string): string;
  /** The snooze durations a scope's forms offer. */
  snoozeChoices(scope: string): SnoozeChoice[];
  /** Most exposure lines a message lists (the rest are counted). */
  maxLines?: number;
}

const optionLabels: Record<DecisionKind, string> = {
  approve: 'Approve fix',
  snooze: 'Snooze…',
  acceptRisk: 'Accept risk…',
  markFalsePositive: 'False positive…',
  reassign: 'Reassign…',
};

export interface ExposureLine {
  ref: string;
  weaknessKey: string;
  title: string;
  asset: string;
  priority: string;
  state: ExposureState;
  stateLabel: string;
  /** Decided or closed: shown as such. */
  settled: boolean;
  /** The decisions still possible on this exposure alone (an exception to the campaign's decision). */
  options: { kind: DecisionKind; label: string; value: string }[];
  /** Some decision may still be taken on it. */
  open: boolean;
  /** Position among the shown lines (Slack action ids must be unique per message). */
  index: number;
}

/** A decision a Teams form may apply: to the whole campaign ("all") or to one listed exposure. */
export interface TargetChoice {
  title: string;
  value: string;
}

export interface MessageView {
  kind: OwnerNotification['kind'];
  kindLabel: string;
  /** "Decision needed · Act · Upgrade openssl to 3.0.8 or later on 2 assets". */
  header: string;
  level?: number;
  /** The notification's first line; `detail` the rest (a patch plan's steps, a failure's output). */
  headline: string;
  detail?: string;
  /** A reply's first line: the headline, said as what it is ("Reminder: …"). */
  replyTitle: string;
  /** Where the campaign stands: "2 of 3 open exposures on 2 assets wait for a decision". */
  status: string;
  scope: string;
  action: string;
  priority: string;
  slaDue?: string;
  overdue: boolean;
  owner?: string;
  /** Open of all exposures, and on how many assets: "3 open of 5 exposures on 2 assets". */
  totalsText: string;
  reasons: string[];
  fixes: string[];
  /** What the notification lists under its text (a reminder's exposures). */
  lines: string[];
  exposures: ExposureLine[];
  moreCount: number;
  total: number;
  /**
   * How many exposures a decision for the whole campaign takes now (0: no campaign-wide buttons).
   * The campaign-wide decisions are offered while it is above 0.
   */
  waiting: number;
  approveLabel: string;
  snoozeChoices: SnoozeChoice[];
  /** Teams: per decision kind, what the form may apply it to (empty: the action is not offered). */
  targets: Record<DecisionKind, TargetChoice[]>;
  /** Some decision is still possible from this message (campaign-wide or on one exposure). */
  decidable: boolean;
  acted: string[];
  /** A patch plan's approval request: approve or reject the rollout, nothing per exposure. */
  patch?: { rolloutId: string; open: boolean };
  /** A reply in the original's thread: no decision buttons (they live on the original). */
  inThread: boolean;
  url?: string;
  /** Fallback text for notifications and screen readers. */
  summary: string;
}

const kindLabels: Record<OwnerNotification['kind'], string> = {
  'decision-request': 'Decision needed',
  reminder: 'Reminder',
  escalation: 'SLA escalation',
  alert: 'Alert',
  'state-change': 'Update',
};

function dueText(slaDue: string | undefined, nowMs: number): { slaDue?: string; overdue: boolean } {
  if (!slaDue) return { overdue: false };
  const dueMs = Date.parse(slaDue);
  if (Number.isNaN(dueMs)) return { slaDue, overdue: false };
  const overdue = dueMs < nowMs;
  return {
    slaDue: `${formatTime(slaDue)} (${overdue ? `overdue by ${relative(nowMs - dueMs)}` : `in ${relative(dueMs - nowMs)}`})`,
    overdue,
  };
}

/** "3 open of 5 exposures on 2 assets". */
export function totalsText(c: CampaignSummary, states?: Record<string, ExposureState>): string {
  const counts = currentStates(c, states);
  const closed = terminalStates.reduce((a, s) => a + (counts[s] ?? 0), 0);
  const open = Math.max(0, c.totals.exposures - closed);
  return `${open} open of ${plural(c.totals.exposures, 'exposure')} on ${plural(c.totals.assets, 'asset')}`;
}

/** States of exposures nobody has decided on yet. */
const undecided: readonly ExposureState[] = ['awaiting-decision', 'reopened', 'open', 'triaged', 'validated'];

function label(model: ChatMessageModel, awaiting: number, open: number): string {
  const n = model.notification;
  if (patchRolloutOf(n) !== undefined && n.kind === 'decision-request') return 'Patch approval needed';
  if (n.kind === 'decision-request')
    return awaiting > 0 ? 'Decision needed' : open > 0 ? 'Decided' : 'Closed';
  return `${kindLabels[n.kind]}${n.kind === 'escalation' && n.level !== undefined ? ` (level ${n.level})` : ''}`;
}

export function buildView(
  model: ChatMessageModel,
  ctx: ViewContext,
  where: { inThread: boolean } = { inThread: false },
): MessageView {
  const n = model.notification;
  const c = n.campaign;
  const maxLines = ctx.maxLines ?? 15;
  const rolloutId = patchRolloutOf(n);
  // Replies and patch requests carry no decisions on the campaign: those are taken on the original.
  const decisionsHere = rolloutId === undefined && !where.inThread;
  const lines: ExposureLine[] = c.exposures.slice(0, maxLines).map((e, index) => {
    const state = stateOf(model, e.id) ?? e.state;
    const ref = exposureRef(e.id);
    const options = decisionsHere
      ? kindsAdmittedIn(state).map((kind) => ({ kind, label: optionLabels[kind], value: `${kind}|${ref}` }))
      : [];
    return {
      ref,
      weaknessKey: e.weaknessKey,
      title: e.title,
      asset: e.asset,
      priority: e.priority,
      state,
      stateLabel: stateLabel(state),
      settled: !undecided.includes(state),
      options,
      open: options.length > 0,
      index,
    };
  });
  const reasons = [...new Set(c.exposures.flatMap((e) => e.reasons))].slice(0, 6);
  const fixes = [c.action];
  for (const e of c.exposures) {
    const p = e.package;
    if (p?.name && p.fixedVersion) {
      const line = `${p.name}${p.version ? ` ${p.version}` : ''} → ${p.fixedVersion} or later (${e.weaknessKey})`;
      if (!fixes.includes(line) && fixes.length < 6) fixes.push(line);
    }
  }
  const waiting = decisionsHere ? waitingCount(c, model.states) : 0;
  const counts = currentStates(c, model.states);
  const open = Object.entries(counts)
    .filter(([s]) => !terminalStates.includes(s as ExposureState))
    .reduce((a, [, k]) => a + (k ?? 0), 0);
  const awaiting = undecided.reduce((a, s) => a + (counts[s] ?? 0), 0);
  const kindLabel = label(model, awaiting, open);
  const targets = {} as Record<DecisionKind, TargetChoice[]>;
  for (const kind of ['approve', 'snooze', 'acceptRisk', 'markFalsePositive', 'reassign'] as DecisionKind[])
    targets[kind] = [
      ...(waiting > 0
        ? [
            {
              title:
                waiting === 1
                  ? 'The exposure waiting for a decision'
                  : `All ${waiting} exposures waiting for a decision`,
              value: 'all',
            },
          ]
        : []),
      ...lines
        .filter((l) => l.options.some((o) => o.kind === kind))
        .map((l) => ({ title: clip(`${l.weaknessKey} on ${l.asset} (${l.stateLabel})`, 120), value: l.ref })),
    ];
  const moreCount = Math.max(0, c.exposures.length - lines.length) + (c.more ?? 0);
  const acted = model.actions.map(actedLine);
  const headline = n.text.split('\n')[0]!;
  return {
    kind: n.kind,
    kindLabel,
    header: `${kindLabel} · ${c.priority} · ${c.action}`,
    level: n.level,
    headline,
    // The lifecycle's reminders and escalations say what they are already ("Reminder: …").
    replyTitle: /^(reminder|escalation)\b/i.test(headline) ? headline : `${kindLabel}: ${headline}`,
    ...(n.text.includes('\n') ? { detail: n.text.slice(n.text.indexOf('\n') + 1).trim() } : {}),
    status: campaignStatus(c, model.states),
    scope: c.scope,
    action: c.action,
    priority: c.priority,
    ...dueText(c.slaDue, ctx.nowMs),
    owner: c.owner ? ctx.personName(c.owner) : undefined,
    totalsText: totalsText(c, model.states),
    reasons,
    fixes,
    lines: n.lines ?? [],
    exposures: lines,
    moreCount,
    total: c.totals.exposures || c.exposures.length,
    waiting,
    approveLabel: waiting > 1 ? `Approve fix for all ${waiting}` : 'Approve fix',
    snoozeChoices: ctx.snoozeChoices(c.scope),
    targets,
    decidable: decisionsHere && (waiting > 0 || lines.some((l) => l.open)),
    acted,
    ...(rolloutId !== undefined ? { patch: { rolloutId, open: patchAsked(model) } } : {}),
    inThread: where.inThread,
    url: c.url,
    summary: `${kindLabel}: ${c.action} [${c.priority}]`,
  };
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

// ---- digests --------------------------------------------------------------------------------------

/** Campaigns a digest shows in full (with their buttons); the rest it lists one line each. */
export const DIGEST_FULL = 12;
/** Exposures listed under each campaign of a digest. */
const DIGEST_EXPOSURES = 3;

export interface DigestCampaignView {
  /** Its position in the digest: the bulk actions name it. */
  index: number;
  id: string;
  priority: string;
  action: string;
  heading: string;
  /** "Escalation level 2", for an escalation digest. */
  levelLabel?: string;
  status: string;
  totalsText: string;
  slaDue?: string;
  overdue: boolean;
  lines: string[];
  exposures: string[];
  moreExposures: number;
  url?: string;
  /** The daily queue's bulk actions are offered (something in it still waits for a decision). */
  actionable: boolean;
  approveLabel: string;
  snoozeChoices: SnoozeChoice[];
  acted: string[];
}

export interface DigestView {
  kind: 'queue' | 'escalations' | 'onboarding';
  title: string;
  text: string;
  campaigns: DigestCampaignView[];
  /** Listed campaigns beyond the ones shown in full, one line each. */
  compact: string[];
  /** Campaigns not listed at all. */
  moreCount: number;
  url?: string;
  summary: string;
}

export function buildDigestView(model: DigestModel, ctx: ViewContext): DigestView {
  const d = model.digest;
  const views = d.campaigns.map(({ campaign: c, lines, level }, index): DigestCampaignView => {
    const waiting = d.kind === 'queue' ? waitingCount(c) : 0;
    const acted = model.actions.filter((a) => a.campaignId === c.id).map(actedLine);
    const shown = c.exposures.slice(0, DIGEST_EXPOSURES);
    return {
      index,
      id: c.id,
      priority: c.priority,
      action: c.action,
      heading: `${c.priority} · ${c.action}`,
      ...(level !== undefined && d.kind === 'escalations' ? { levelLabel: `Escalation level ${level}` } : {}),
      status: campaignStatus(c),
      totalsText: totalsText(c),
      ...dueText(c.slaDue, ctx.nowMs),
      // The queue's own lines say what waited when it was sent; once decided, the status says it.
      lines: acted.length > 0 && d.kind === 'queue' ? [] : (lines ?? []),
      exposures: shown.map((e) => `${e.weaknessKey} on ${e.asset} · ${stateLabel(e.state)}`),
      moreExposures: Math.max(0, c.exposures.length - shown.length) + (c.more ?? 0),
      ...(c.url ? { url: c.url } : {}),
      actionable: waiting > 0,
      approveLabel: waiting > 1 ? `Approve fix for all ${waiting}` : 'Approve fix',
      snoozeChoices: ctx.snoozeChoices(c.scope),
      acted,
    };
  });
  const full = views.slice(0, DIGEST_FULL);
  const compact = views
    .slice(DIGEST_FULL)
    .map((v) => `${v.heading} — ${v.totalsText}${v.slaDue ? `, due ${v.slaDue}` : ''}`);
  return {
    kind: d.kind,
    title: d.title,
    text: d.text,
    campaigns: full,
    compact,
    moreCount: d.more ?? 0,
    ...(d.url ? { url: d.url } : {}),
    summary: d.title,
  };
}
