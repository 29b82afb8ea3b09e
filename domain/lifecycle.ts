// One exposure's lifecycle as a pure state machine, held by its campaign's workflow
// (workflows/campaign/): the state, the SLA clock and escalation level, the decisions and the evidence
// of one asset × weakness, and what each event does to them.
//
//   validated ─► awaiting-decision ─► remediating ─► verifying ─► resolved
//                  │                       ▲               │  (a re-scan after the fix no longer sees it)
//                  │                       └───────────────┘  (a scan still sees it; the ticket reopened)
//                  ├─► snoozed(until) ──────► awaiting-decision
//                  ├─► risk-accepted(until) ► reopened ─► awaiting-decision
//                  └─► false-positive                         ▲
//   resolved + seen again ─► reopened ────────────────────────┘
//   any open state + asset retired ─► retired
//
// `step` takes a cell and one event and returns the new cell and what should happen: records for the
// audit trail, and requests the campaign turns into one ticket, one rollout, one re-scan or one
// message for all the cells that asked in the same turn. Deterministic (time is an input), so it runs
// in workflow code, and every lifecycle rule is tested without Temporal (lifecycle.test.ts).
import type { Decision, ExposureState } from './exposure.ts';
import { terminalStates } from './exposure.ts';
import { awaitingDecisionReason, decisionWhy, reopenedReason, validatedReason } from './exposureAdmission.ts';
import {
  cappedDeadline,
  dueEscalation,
  effectiveDue,
  firedLevelAfterRescore,
  isBreach,
  nextEscalation,
  pauseClock,
  rescoreClock,
  resumeClock,
  startClock,
  type EscalationAudience,
  type LifecycleRules,
  type SlaClock,
} from './sla.ts';

/** States whose SLA clock runs (escalations fire); snoozed and risk-accepted pause it. */
export const clockRuns: readonly ExposureState[] = [
  'open',
  'triaged',
  'validated',
  'awaiting-decision',
  'reopened',
  'remediating',
  'verifying',
];

/** One exposure inside its campaign. Compact: details (titles, reasons, evidence) live in PostgreSQL. */
export interface Cell {
  /** Exposure id, "<asset id>:<weakness key>". */
  id: string;
  assetId: number;
  weaknessKey: string;
  state: ExposureState;
  /** SSVC label: "Act", "Attend", "Track*", "Track". */
  priority: string;
  policyVersion: string;
  contextualCvss?: number | null;
  kev?: boolean;
  /** The SLA clock: started when ctem learned of the exposure (or after the scope's onboarding grace). */
  clock: SlaClock;
  /** Highest escalation level fired (-1: none). */
  level: number;
  /** Records written so far: the idempotency sequence of this lifecycle. */
  seq: number;
  /** Idempotency prefix of this lifecycle ("<exposure>:<lifecycle>:<seq>"): stable across moves. */
  lifecycle: string;
  /** When the scanner first saw it (shown; the SLA clock starts when ctem learned of it). */
  firstSeen: string;
  lastObservedMs: number;
  snoozedUntil?: string;
  riskAccepted?: { by: string; until: string; justification: string; reminded?: boolean };
  /** When the fix was applied (a patch finished, a ticket was closed): verification counts scans after it. */
  fixedAt?: string;
  /** Approved, and the campaign has not yet started its remediation for it. */
  toRemediate?: boolean;
  /** The campaign's patch rollout it waits for. */
  rollout?: string;
  /** Verification windows that ran out without evidence. */
  unverifiedWindows: number;
  verifiedBy?: { scanId: number; at: string };
  slaBreachedAt?: string;
  resolvedAt?: string;
}

/** What happened to a cell, for the audit trail (and the read model, from the cell after the step). */
export interface RecordEffect {
  kind: 'record';
  /** The cell's sequence number of this record: its idempotency key is "<id>:<lifecycle>:<seq>". */
  seq: number;
  type: string;
  reason: string;
  actor?: string;
  from?: ExposureState;
  to?: ExposureState;
  inputs?: unknown;
  evidence?: unknown;
}

/** What the campaign is asked to do on the cell's behalf; requests of one turn become one action. */
export type Request =
  | { kind: 'askOwner'; why: string }
  | {
      kind: 'notify';
      notification: 'reminder' | 'escalation';
      /** Cells with the same topic in one turn share one message: "sla:<level>:<day>". */
      topic: string;
      audiences: EscalationAudience[];
      level: number;
      /** One line about this cell, listed in the shared message. */
      line: string;
    }
  | { kind: 'ticket'; action: 'comment' | 'reopen' | 'refresh'; text: string }
  | { kind: 'rescan'; fixedAt: string };

export type Effect = RecordEffect | Request;

export type CellEvent =
  | { kind: 'decision'; decision: Decision }
  | { kind: 'observed'; scanId: number; at: string }
  | { kind: 'absent'; scanId: number; at: string; assetRetired?: boolean }
  | {
      kind: 'rescored';
      priority: string;
      slaDue: string;
      policyVersion: string;
      contextualCvss?: number | null;
      kev?: boolean;
    }
  | {
      kind: 'ticketChanged';
      ticket: { system: string; key: string };
      status: 'open' | 'in-progress' | 'done';
      at: string;
      by?: string;
    }
  | {
      kind: 'patchFinished';
      rolloutId: string;
      status: 'succeeded' | 'failed' | 'blocked' | 'rejected';
      summary: string;
      finishedAt?: string;
    }
  /** Seen again after its lifecycle closed: a new lifecycle of the same exposure begins. */
  | { kind: 'reopened'; scanId: number; at: string; from: ExposureState; reasons?: string[] }
  /** Reassigned into this campaign from another owner's. */
  | { kind: 'movedIn'; by: string; owner: string }
  /** Something the campaign did (or could not do) for the exposure, for its audit trail. */
  | { kind: 'note'; type: string; reason: string; evidence?: unknown }
  | { kind: 'time' };

export interface StepContext {
  nowMs: number;
  rules: LifecycleRules;
}

export interface StepResult {
  cell: Cell;
  effects: Effect[];
}

const iso = (ms: number) => new Date(ms).toISOString();

/** A deep copy of a cell (plain data only). */
export function copyCell(cell: Cell): Cell {
  return JSON.parse(JSON.stringify(cell)) as Cell;
}

/** Works on a copy: `step` never changes the cell it is given. */
class Stepper {
  readonly effects: Effect[] = [];
  readonly c: Cell;

  constructor(
    cell: Cell,
    readonly ctx: StepContext,
  ) {
    this.c = copyCell(cell);
  }

  record(
    type: string,
    reason: string,
    opts: Omit<RecordEffect, 'kind' | 'type' | 'reason' | 'seq'> = {},
  ): void {
    this.effects.push({ kind: 'record', seq: ++this.c.seq, type, reason, ...opts });
  }

  /** Change state and record it; the clock pauses while snoozed or risk-accepted. */
  transition(
    to: ExposureState,
    reason: string,
    opts: { actor?: string; type?: string; inputs?: unknown; evidence?: unknown } = {},
  ): void {
    const c = this.c;
    const from = c.state;
    const now = this.ctx.nowMs;
    if (to === 'snoozed' || to === 'risk-accepted') c.clock = pauseClock(c.clock, now);
    else if (from === 'snoozed' || from === 'risk-accepted') c.clock = resumeClock(c.clock, now);
    c.state = to;
    if (to === 'resolved' || to === 'false-positive' || to === 'retired') c.resolvedAt = iso(now);
    const { type, ...rest } = opts;
    this.record(type ?? to, reason, { ...rest, from, to });
  }

  /** The owner has to decide (again): the campaign asks once for every cell that needs it in a turn. */
  askOwner(why: string): void {
    if (this.c.state !== 'awaiting-decision')
      this.transition('awaiting-decision', awaitingDecisionReason(why));
    this.effects.push({ kind: 'askOwner', why });
  }
}

/** One event applied to one cell. A decision is applied as given: the campaign validated it. */
export function step(cell: Cell, event: CellEvent, ctx: StepContext): StepResult {
  const s = new Stepper(cell, ctx);
  switch (event.kind) {
    case 'decision':
      decide(s, event.decision);
      break;
    case 'observed':
      observed(s, event);
      break;
    case 'absent':
      absent(s, event);
      break;
    case 'rescored':
      rescored(s, event);
      break;
    case 'ticketChanged':
      ticketChanged(s, event);
      break;
    case 'patchFinished':
      patchFinished(s, event);
      break;
    case 'reopened':
      reopened(s, event);
      break;
    case 'movedIn':
      movedIn(s, event);
      break;
    case 'note':
      s.record(event.type, event.reason, event.evidence !== undefined ? { evidence: event.evidence } : {});
      break;
    case 'time':
      onTime(s);
      break;
  }
  return { cell: s.c, effects: s.effects };
}

function decide(s: Stepper, d: Decision): void {
  const c = s.c;
  const actor = d.actor.personId;
  switch (d.kind) {
    case 'approve':
      c.fixedAt = undefined;
      c.rollout = undefined;
      c.toRemediate = true;
      s.transition('remediating', `fix approved by ${actor}${d.comment ? `: ${d.comment}` : ''}`, {
        actor,
        type: d.kind,
        inputs: d,
      });
      return;
    case 'snooze':
      c.snoozedUntil = d.until;
      s.transition('snoozed', `snoozed by ${actor} until ${d.until}${d.reason ? `: ${d.reason}` : ''}`, {
        actor,
        type: d.kind,
        inputs: d,
      });
      return;
    case 'acceptRisk':
      c.riskAccepted = { by: actor, until: d.expires, justification: d.justification };
      s.transition('risk-accepted', `risk accepted by ${actor} until ${d.expires}: ${d.justification}`, {
        actor,
        type: d.kind,
        inputs: d,
      });
      return;
    case 'markFalsePositive':
      c.toRemediate = undefined;
      s.transition('false-positive', `marked false positive by ${actor}: ${d.reason}`, {
        actor,
        type: d.kind,
        inputs: d,
      });
      return;
    case 'reassign':
      // The campaign moves the cell to the new owner's campaign; the record stays with the exposure.
      s.record(d.kind, `reassigned by ${actor} to ${d.to}${d.reason ? `: ${d.reason}` : ''}`, {
        actor,
        inputs: d,
        from: c.state,
        to: c.state,
      });
      return;
  }
}

function reopened(s: Stepper, e: Extract<CellEvent, { kind: 'reopened' }>): void {
  const c = s.c;
  c.lastObservedMs = Math.max(c.lastObservedMs, Date.parse(e.at));
  s.transition('reopened', reopenedReason(e.scanId, c.weaknessKey, e.from), {
    evidence: { scanId: e.scanId, at: e.at },
  });
  s.transition('validated', validatedReason(e.scanId, e.reasons ?? []), {
    evidence: { scanId: e.scanId, at: e.at, reasons: e.reasons ?? [] },
  });
  s.askOwner(decisionWhy(e.from));
}

function movedIn(s: Stepper, e: Extract<CellEvent, { kind: 'movedIn' }>): void {
  const c = s.c;
  s.record('moved', `joined ${e.owner}'s campaign, reassigned by ${e.by}`, { from: c.state, to: c.state });
  if (c.state === 'awaiting-decision' || c.state === 'reopened')
    s.askOwner(`assigned to ${e.owner} by ${e.by}`);
}

function observed(s: Stepper, e: { scanId: number; at: string }): void {
  const c = s.c;
  const atMs = Date.parse(e.at);
  if (terminalStates.includes(c.state)) {
    // Seen again after it was resolved (before the campaign let go of it): the weakness is back. Scan
    // times are compared with the scan that showed it gone, not with when the workflow resolved it.
    const goneAt = c.verifiedBy?.at ?? c.resolvedAt;
    if (c.state === 'resolved' && goneAt !== undefined && atMs > Date.parse(goneAt)) {
      c.verifiedBy = undefined;
      c.fixedAt = undefined;
      c.resolvedAt = undefined;
      c.level = -1;
      c.unverifiedWindows = 0;
      // Back after it closed: a new SLA clock of the same window, as the dispatcher starts for one
      // that comes back after its campaign let go of it (README, "The SLA clock").
      const now = s.ctx.nowMs;
      c.clock = startClock(now, now + Math.max(0, c.clock.dueMs - c.clock.startMs));
      c.slaBreachedAt = undefined;
      reopened(s, { kind: 'reopened', scanId: e.scanId, at: e.at, from: 'resolved' });
    }
    return;
  }
  c.lastObservedMs = Math.max(c.lastObservedMs, atMs);
  if (c.state === 'verifying' && c.fixedAt && atMs > Date.parse(c.fixedAt)) {
    const fixedAt = c.fixedAt;
    c.fixedAt = undefined;
    s.transition(
      'remediating',
      `scan ${e.scanId} at ${e.at} still sees ${c.weaknessKey} after the fix of ${fixedAt}`,
      { type: 'fix-failed', evidence: { scanId: e.scanId, at: e.at, fixedAt } },
    );
    s.effects.push({
      kind: 'ticket',
      action: 'reopen',
      text: `The fix of ${fixedAt} did not remove ${c.weaknessKey} on asset ${c.assetId}: scan ${e.scanId} at ${e.at} still sees it.`,
    });
  }
}

function absent(s: Stepper, e: { scanId: number; at: string; assetRetired?: boolean }): void {
  const c = s.c;
  if (terminalStates.includes(c.state)) return;
  if (e.assetRetired) {
    s.transition(
      'retired',
      `the asset was retired from the inventory (scan ${e.scanId}); closed as retired, not as fixed`,
      { evidence: { scanId: e.scanId, at: e.at } },
    );
    return;
  }
  const atMs = Date.parse(e.at);
  // Evidence counts only after the last scan that saw it, and while verifying, after the fix too.
  const baseline =
    c.state === 'verifying' && c.fixedAt
      ? Math.max(Date.parse(c.fixedAt), c.lastObservedMs)
      : c.lastObservedMs;
  if (atMs <= baseline) {
    s.record(
      'evidence-ignored',
      `scan ${e.scanId} at ${e.at} is not after ${iso(baseline)}, so it proves nothing`,
      {
        evidence: { scanId: e.scanId, at: e.at },
      },
    );
    return;
  }
  const how =
    c.state === 'verifying'
      ? `verifying the fix of ${c.fixedAt}`
      : c.state === 'remediating'
        ? 'a scan after the approval no longer sees it'
        : 'a scan no longer sees it (fixed outside a ticket)';
  if (c.state !== 'verifying')
    s.transition('verifying', `${how}; scan ${e.scanId} at ${e.at} is the evidence`, {
      evidence: { scanId: e.scanId, at: e.at },
    });
  c.verifiedBy = { scanId: e.scanId, at: e.at };
  c.toRemediate = undefined;
  s.transition(
    'resolved',
    `scan ${e.scanId} at ${e.at} covered the asset and no longer sees ${c.weaknessKey}`,
    {
      evidence: { scanId: e.scanId, at: e.at, fixedAt: c.fixedAt },
    },
  );
}

function rescored(s: Stepper, e: Extract<CellEvent, { kind: 'rescored' }>): void {
  const c = s.c;
  const { nowMs, rules } = s.ctx;
  if (terminalStates.includes(c.state)) return;
  const before = {
    priority: c.priority,
    slaDue: iso(effectiveDue(c.clock, nowMs)),
    policyVersion: c.policyVersion,
  };
  const dueMs = cappedDeadline(rules, e.priority, c.clock.startMs, Date.parse(e.slaDue));
  if (e.priority === c.priority && dueMs === c.clock.dueMs && e.policyVersion === c.policyVersion) return;
  c.clock = rescoreClock(c.clock, dueMs);
  c.priority = e.priority;
  c.policyVersion = e.policyVersion;
  if (e.contextualCvss !== undefined) c.contextualCvss = e.contextualCvss;
  if (e.kev !== undefined) c.kev = e.kev;
  c.level = firedLevelAfterRescore(rules.ladder, c.clock, c.level, nowMs);
  const due = iso(effectiveDue(c.clock, nowMs));
  s.record('rescored', `re-scored ${before.priority} → ${e.priority}, deadline ${before.slaDue} → ${due}`, {
    inputs: { before, after: e },
  });
  if (e.priority !== before.priority || due !== before.slaDue)
    s.effects.push({
      kind: 'ticket',
      action: 'refresh',
      text: `re-scored ${before.priority} → ${e.priority}, due ${due}`,
    });
}

function ticketChanged(s: Stepper, e: Extract<CellEvent, { kind: 'ticketChanged' }>): void {
  const c = s.c;
  if (terminalStates.includes(c.state)) return;
  const by = e.by ? ` by ${e.by}` : '';
  if (e.status === 'done' && c.state === 'remediating') {
    c.fixedAt = e.at;
    c.rollout = undefined;
    c.unverifiedWindows = 0; // the windows count from this fix
    s.transition(
      'verifying',
      `ticket ${e.ticket.key} closed${by}: the fix is verified by a re-scan, not by the ticket`,
      {
        evidence: { ticket: e.ticket, at: e.at },
      },
    );
    s.effects.push({ kind: 'rescan', fixedAt: e.at });
  } else if (e.status !== 'done' && c.state === 'verifying') {
    c.fixedAt = undefined;
    s.transition('remediating', `ticket ${e.ticket.key} reopened${by}`, {
      evidence: { ticket: e.ticket, at: e.at },
    });
  } else {
    s.record('ticket-changed', `ticket ${e.ticket.key} is ${e.status}${by}`, {
      evidence: { ticket: e.ticket, at: e.at },
    });
  }
}

function patchFinished(s: Stepper, e: Extract<CellEvent, { kind: 'patchFinished' }>): void {
  const c = s.c;
  if (c.rollout !== e.rolloutId) return; // another round's rollout
  c.rollout = undefined;
  if (c.state !== 'remediating') return;
  if (e.status === 'succeeded' && e.finishedAt) {
    c.fixedAt = e.finishedAt;
    c.unverifiedWindows = 0; // the windows count from this fix
    s.transition('verifying', `patch finished at ${e.finishedAt}: verifying by re-scan`, {
      evidence: { patch: { rolloutId: e.rolloutId, status: e.status, summary: e.summary } },
    });
    s.effects.push({ kind: 'rescan', fixedAt: e.finishedAt });
    return;
  }
  // A failed rollout has escalated by itself (workflows/patch.ts).
  s.record(
    `patch-rollout-${e.status}`,
    `patch rollout ${e.rolloutId} ${e.status}: the exposure stays in remediation (ticket, a later approval, or a scan showing it gone)`,
    { evidence: { rolloutId: e.rolloutId, summary: e.summary } },
  );
}

function verifyDeadlineMs(c: Cell, rules: LifecycleRules): number | undefined {
  return c.state === 'verifying' && c.fixedAt
    ? Date.parse(c.fixedAt) + rules.verifyWithinMs * (c.unverifiedWindows + 1)
    : undefined;
}

function riskReminderMs(c: Cell, rules: LifecycleRules): number | undefined {
  return c.state === 'risk-accepted' && c.riskAccepted && !c.riskAccepted.reminded
    ? Date.parse(c.riskAccepted.until) - rules.riskExpiryReminderMs
    : undefined;
}

/** When the cell next needs the time event (undefined: not until something happens). */
export function nextWake(c: Cell, rules: LifecycleRules): number | undefined {
  let next: number | undefined;
  const consider = (t: number | undefined) => {
    if (t !== undefined && (next === undefined || t < next)) next = t;
  };
  if (clockRuns.includes(c.state)) consider(nextEscalation(rules.ladder, c.clock, c.level)?.atMs);
  if (c.state === 'snoozed' && c.snoozedUntil) consider(Date.parse(c.snoozedUntil));
  if (c.state === 'risk-accepted' && c.riskAccepted) {
    consider(Date.parse(c.riskAccepted.until));
    consider(riskReminderMs(c, rules));
  }
  consider(verifyDeadlineMs(c, rules));
  return next;
}

function onTime(s: Stepper): void {
  const c = s.c;
  const { nowMs: now, rules } = s.ctx;
  if (c.state === 'snoozed' && c.snoozedUntil && Date.parse(c.snoozedUntil) <= now) {
    s.askOwner(`the snooze until ${c.snoozedUntil} ended`);
    return;
  }
  if (c.state === 'risk-accepted' && c.riskAccepted) {
    riskTime(s, c.riskAccepted);
    return;
  }
  const verify = verifyDeadlineMs(c, rules);
  if (verify !== undefined && verify <= now) {
    notVerified(s);
    return;
  }
  if (clockRuns.includes(c.state)) slaTime(s);
}

function riskTime(s: Stepper, acc: NonNullable<Cell['riskAccepted']>): void {
  const c = s.c;
  const { nowMs: now, rules } = s.ctx;
  if (Date.parse(acc.until) <= now) {
    s.transition('reopened', `the risk acceptance by ${acc.by} ended on ${acc.until}`);
    s.askOwner(`the risk acceptance by ${acc.by} ended`);
    return;
  }
  const reminder = riskReminderMs(c, rules);
  if (reminder !== undefined && reminder <= now) {
    acc.reminded = true;
    s.effects.push({
      kind: 'notify',
      notification: 'reminder',
      topic: `acceptance-expiring:${acc.until.slice(0, 10)}`,
      audiences: ['owner', 'securityLead'],
      level: 0,
      line: `${c.weaknessKey} on asset ${c.assetId}: the risk acceptance by ${acc.by} ends on ${acc.until}`,
    });
    s.record('acceptance-expiring', `risk acceptance by ${acc.by} ends on ${acc.until}`);
  }
}

function notVerified(s: Stepper): void {
  const c = s.c;
  c.unverifiedWindows++;
  s.effects.push({
    kind: 'notify',
    notification: 'escalation',
    topic: `fix-not-verified:${c.unverifiedWindows}`,
    audiences: ['owner', 'channel', 'manager'],
    level: 1,
    line: `${c.weaknessKey} on asset ${c.assetId}: no scan after the fix of ${c.fixedAt} has covered it`,
  });
  s.record(
    'fix-not-verified',
    `no scan after the fix of ${c.fixedAt} proved ${c.weaknessKey} gone within the verification window`,
    { evidence: { window: c.unverifiedWindows } },
  );
  s.effects.push({
    kind: 'ticket',
    action: 'comment',
    text: `Fix not verified: no scan after ${c.fixedAt} has shown ${c.weaknessKey} gone on asset ${c.assetId}; a re-scan is requested again.`,
  });
  s.effects.push({ kind: 'rescan', fixedAt: c.fixedAt! });
}

function slaTime(s: Stepper): void {
  const c = s.c;
  const { nowMs: now, rules } = s.ctx;
  const due = dueEscalation(rules.ladder, c.clock, c.level, now);
  if (!due) return;
  c.level = due.level;
  const breach = isBreach(due.step);
  const dueAt = iso(effectiveDue(c.clock, now));
  if (breach && c.slaBreachedAt === undefined) c.slaBreachedAt = iso(now);
  s.effects.push({
    kind: 'notify',
    // A step before the deadline reminds (whoever it reaches); a breach escalates (README, Notifications).
    notification: breach ? 'escalation' : 'reminder',
    topic: `sla:${due.level}:${dueAt.slice(0, 10)}`,
    audiences: due.step.notify,
    level: due.level,
    line: breach
      ? `${c.priority} ${c.weaknessKey} on asset ${c.assetId} was due ${dueAt}${due.step.afterDueMs ? ' (past its grace period)' : ''}`
      : `${c.priority} ${c.weaknessKey} on asset ${c.assetId} is due ${dueAt}`,
  });
  s.record(
    breach ? 'sla-escalated' : 'sla-reminder',
    `${breach ? 'SLA breached' : 'SLA reminder'}: level ${due.level} to ${due.step.notify.join(', ')} (due ${dueAt})`,
    { evidence: { level: due.level, audiences: due.step.notify, dueAt } },
  );
  if (breach)
    s.effects.push({
      kind: 'ticket',
      action: 'comment',
      text: `SLA breached (due ${dueAt}) for ${c.weaknessKey} on asset ${c.assetId}; escalated to ${due.step.notify.join(', ')}.`,
    });
}

/** The SLA deadline shown for a cell now (none once closed). */
export function dueAt(c: Cell, nowMs: number): string | undefined {
  return terminalStates.includes(c.state) ? undefined : iso(effectiveDue(c.clock, nowMs));
}

/** A new exposure's cell, as the dispatcher admits it (its admission already recorded up to `seq`). */
export function newCell(f: {
  id: string;
  assetId: number;
  weaknessKey: string;
  state: ExposureState;
  priority: string;
  policyVersion: string;
  contextualCvss?: number | null;
  kev?: boolean;
  slaStartMs: number;
  slaDueMs: number;
  firstSeen: string;
  observedAtMs: number;
  seq: number;
  lifecycle: string;
}): Cell {
  return {
    id: f.id,
    assetId: f.assetId,
    weaknessKey: f.weaknessKey,
    state: f.state,
    priority: f.priority,
    policyVersion: f.policyVersion,
    ...(f.contextualCvss !== undefined ? { contextualCvss: f.contextualCvss } : {}),
    ...(f.kev !== undefined ? { kev: f.kev } : {}),
    clock: startClock(f.slaStartMs, f.slaDueMs),
    level: -1,
    seq: f.seq,
    lifecycle: f.lifecycle,
    firstSeen: f.firstSeen,
    lastObservedMs: f.observedAtMs,
    unverifiedWindows: 0,
  };
}
