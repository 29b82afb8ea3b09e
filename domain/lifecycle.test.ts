// The lifecycle of one exposure as its campaign steps it (domain/lifecycle.ts), without Temporal: every
// transition, the SLA ladder over injected time, and exactly what each step asks the campaign to do.
import { describe, expect, it } from 'vitest';
import {
  dueAt,
  newCell,
  nextWake,
  step,
  type Cell,
  type CellEvent,
  type Effect,
  type RecordEffect,
  type Request,
} from './lifecycle.ts';
import type { Actor, Decision, ExposureState } from './exposure.ts';
import { defaultLifecycleRules, startClock, type LifecycleRules } from './sla.ts';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
/** When ctem learned of the exposure: its SLA clock starts here. Act: 8 days, due 2026-03-10T09:00Z. */
const T0 = Date.parse('2026-03-02T09:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

const rules: LifecycleRules = { ...defaultLifecycleRules, slaCapMs: {} };
const ID = '7:CVE-2026-0001';
const CVE = 'CVE-2026-0001';
const ROLLOUT = 'patch-cmp:prod:olivia:0123456789ab-r1';
const TICKET = { system: 'jira', key: 'SEC-12' };

/** A new Act exposure, admitted by the dispatcher with its first three records (seq 1-3) written. */
function cell(over: Partial<Cell> = {}): Cell {
  return {
    ...newCell({
      id: ID,
      assetId: 7,
      weaknessKey: CVE,
      state: 'awaiting-decision',
      priority: 'Act',
      policyVersion: 'v1',
      slaStartMs: T0,
      slaDueMs: T0 + 8 * DAY,
      firstSeen: '2025-11-20T00:00:00.000Z',
      observedAtMs: T0 - HOUR,
      seq: 3,
      lifecycle: 'scan-41',
    }),
    ...over,
  };
}

function at(nowMs: number, c: Cell, event: CellEvent, r: LifecycleRules = rules) {
  return step(c, event, { nowMs, rules: r });
}

/** Several events in order, each at its time: the final cell and every effect. */
function play(start: Cell, events: [number, CellEvent][], r: LifecycleRules = rules) {
  let c = start;
  const effects: Effect[] = [];
  for (const [nowMs, event] of events) {
    const res = at(nowMs, c, event, r);
    c = res.cell;
    effects.push(...res.effects);
  }
  return { cell: c, effects };
}

const recordsOf = (effects: Effect[]) => effects.filter((e): e is RecordEffect => e.kind === 'record');
const requestsOf = (effects: Effect[]) => effects.filter((e): e is Request => e.kind !== 'record');
const transitions = (effects: Effect[]) => recordsOf(effects).map((r) => `${r.from}→${r.to}`);

const olivia: Actor = { personId: 'olivia', via: 'slack' };
const approve: Decision = { kind: 'approve', actor: olivia, comment: 'patch tonight' };
const decide = (decision: Decision): CellEvent => ({ kind: 'decision', decision });
const time: CellEvent = { kind: 'time' };
const observed = (scanId: number, atMs: number): CellEvent => ({ kind: 'observed', scanId, at: iso(atMs) });
const absent = (scanId: number, atMs: number): CellEvent => ({ kind: 'absent', scanId, at: iso(atMs) });
const ticket = (status: 'open' | 'in-progress' | 'done', atMs: number, by?: string): CellEvent => ({
  kind: 'ticketChanged',
  ticket: TICKET,
  status,
  at: iso(atMs),
  ...(by ? { by } : {}),
});

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

describe('a new cell', () => {
  it('starts its SLA clock when ctem learned of it, with nothing fired and the admission records counted', () => {
    const c = cell();
    expect(c.clock).toEqual({ startMs: T0, dueMs: T0 + 8 * DAY, pausedMs: 0 });
    expect(c).toMatchObject({ level: -1, seq: 3, unverifiedWindows: 0, lastObservedMs: T0 - HOUR });
    expect(dueAt(c, T0)).toBe('2026-03-10T09:00:00.000Z');
    expect(nextWake(c, rules)).toBe(T0 + 4 * DAY); // the 50 % reminder
  });

  it('is never changed by a step, whatever the event', () => {
    const events: CellEvent[] = [
      decide(approve),
      decide({ kind: 'acceptRisk', actor: olivia, justification: 'legacy', expires: iso(T0 + 30 * DAY) }),
      observed(50, T0 + DAY),
      absent(51, T0 + DAY),
      time,
      { kind: 'rescored', priority: 'Attend', slaDue: iso(T0 + 30 * DAY), policyVersion: 'v2' },
      { kind: 'movedIn', by: 'olivia', owner: 'erin' },
    ];
    for (const state of ['awaiting-decision', 'remediating', 'verifying', 'resolved'] as const) {
      const given = deepFreeze(cell({ state, fixedAt: iso(T0), verifiedBy: { scanId: 1, at: iso(T0) } }));
      const before = JSON.stringify(given);
      for (const e of events) at(T0 + 20 * DAY, given, e);
      expect(JSON.stringify(given)).toBe(before);
    }
  });
});

describe('decisions', () => {
  const snooze: Decision = {
    kind: 'snooze',
    actor: olivia,
    until: iso(T0 + 3 * DAY),
    reason: 'change freeze',
  };
  const acceptRisk: Decision = {
    kind: 'acceptRisk',
    actor: olivia,
    justification: 'legacy host behind a WAF',
    expires: iso(T0 + 60 * DAY),
  };
  const falsePositive: Decision = { kind: 'markFalsePositive', actor: olivia, reason: 'package not loaded' };
  const reassign: Decision = {
    kind: 'reassign',
    actor: olivia,
    to: 'erin',
    reason: 'owns the billing hosts',
  };
  const outcomes: [Decision, ExposureState | 'unchanged', string][] = [
    [approve, 'remediating', 'fix approved by olivia: patch tonight'],
    [snooze, 'snoozed', 'snoozed by olivia until 2026-03-05T09:00:00.000Z: change freeze'],
    [
      acceptRisk,
      'risk-accepted',
      'risk accepted by olivia until 2026-05-01T09:00:00.000Z: legacy host behind a WAF',
    ],
    [falsePositive, 'false-positive', 'marked false positive by olivia: package not loaded'],
    [reassign, 'unchanged', 'reassigned by olivia to erin: owns the billing hosts'],
  ];
  const cases = (['open', 'triaged', 'validated', 'awaiting-decision'] as const).flatMap((from) =>
    outcomes.map(([d, to, reason]) => [from, d.kind, to, d, reason] as const),
  );

  it.each(cases)('%s + %s → %s, recorded with its actor and inputs', (from, _kind, to, d, reason) => {
    const now = T0 + DAY;
    const { cell: c, effects } = at(now, cell({ state: from }), decide(d));
    const state = to === 'unchanged' ? from : to;
    expect(c.state).toBe(state);
    expect(effects).toEqual([
      { kind: 'record', seq: 4, type: d.kind, reason, actor: 'olivia', from, to: state, inputs: d },
    ]);
    expect(c.seq).toBe(4);
    // Snoozed and risk-accepted stop the SLA clock; the rest keep it running.
    const paused = state === 'snoozed' || state === 'risk-accepted';
    expect(c.clock.pausedSinceMs).toBe(paused ? now : undefined);
  });

  it('approve asks the campaign for a remediation round and forgets an earlier fix and rollout', () => {
    const { cell: c, effects } = at(
      T0 + DAY,
      cell({ state: 'reopened', fixedAt: iso(T0 - DAY), rollout: 'old-round' }),
      decide({ kind: 'approve', actor: olivia }),
    );
    expect(c).toMatchObject({ state: 'remediating', toRemediate: true });
    expect(c.fixedAt).toBeUndefined();
    expect(c.rollout).toBeUndefined();
    expect(recordsOf(effects)[0]!.reason).toBe('fix approved by olivia');
  });

  it('snooze and risk acceptance keep their terms on the cell', () => {
    expect(at(T0, cell(), decide(snooze)).cell.snoozedUntil).toBe('2026-03-05T09:00:00.000Z');
    expect(at(T0, cell(), decide(acceptRisk)).cell.riskAccepted).toEqual({
      by: 'olivia',
      until: '2026-05-01T09:00:00.000Z',
      justification: 'legacy host behind a WAF',
    });
  });

  it('approving a snoozed exposure restarts its clock, the snooze counted in the owner’s favour', () => {
    const snoozed = at(T0 + DAY, cell(), decide(snooze)).cell;
    expect(dueAt(snoozed, T0 + 2 * DAY)).toBe(iso(T0 + 9 * DAY)); // the deadline moves while paused
    const { cell: c } = at(T0 + 3 * DAY, snoozed, decide(approve));
    expect(c.state).toBe('remediating');
    expect(c.clock).toEqual({ startMs: T0, dueMs: T0 + 8 * DAY, pausedMs: 2 * DAY });
    expect(dueAt(c, T0 + 5 * DAY)).toBe(iso(T0 + 10 * DAY));
    expect(nextWake(c, rules)).toBe(T0 + 6 * DAY); // the 50 % reminder, 2 days later
  });

  it('a false positive closes the exposure: no deadline, no wake-up, no remediation left', () => {
    const { cell: c } = at(
      T0 + DAY,
      cell({ state: 'remediating', toRemediate: true }),
      decide(falsePositive),
    );
    expect(c).toMatchObject({ state: 'false-positive', resolvedAt: iso(T0 + DAY) });
    expect(c.toRemediate).toBeUndefined();
    expect(dueAt(c, T0 + DAY)).toBeUndefined();
    expect(nextWake(c, rules)).toBeUndefined();
  });
});

describe('remediation: a patch rollout or a ticket closed by a human sends it to verification', () => {
  const remediating = cell({ state: 'remediating', rollout: ROLLOUT });
  const FIX = T0 + 2 * DAY;
  const finished = (
    status: 'succeeded' | 'failed' | 'blocked' | 'rejected',
    rolloutId = ROLLOUT,
  ): CellEvent => ({
    kind: 'patchFinished',
    rolloutId,
    status,
    summary: `patch ${status} on host-1`,
    ...(status === 'succeeded' ? { finishedAt: iso(FIX) } : {}),
  });

  it('its rollout succeeded: verifying from the finish time, and one re-scan asked for', () => {
    const { cell: c, effects } = at(FIX + MIN, remediating, finished('succeeded'));
    expect(c).toMatchObject({ state: 'verifying', fixedAt: iso(FIX) });
    expect(c.rollout).toBeUndefined();
    expect(effects).toEqual([
      {
        kind: 'record',
        seq: 4,
        type: 'verifying',
        reason: 'patch finished at 2026-03-04T09:00:00.000Z: verifying by re-scan',
        from: 'remediating',
        to: 'verifying',
        evidence: {
          patch: { rolloutId: ROLLOUT, status: 'succeeded', summary: 'patch succeeded on host-1' },
        },
      },
      { kind: 'rescan', fixedAt: iso(FIX) },
    ]);
    expect(nextWake(c, rules)).toBe(T0 + 4 * DAY); // the SLA reminder comes before the window ends
    expect(nextWake({ ...c, level: 0 }, rules)).toBe(FIX + 3 * DAY); // the verification window
  });

  it("another round's rollout does not concern it", () => {
    const { cell: c, effects } = at(FIX, remediating, finished('succeeded', `${ROLLOUT}0`));
    expect(effects).toEqual([]);
    expect(c).toEqual(remediating);
  });

  it.each(['failed', 'blocked', 'rejected'] as const)('its rollout %s: it stays in remediation', (status) => {
    const { cell: c, effects } = at(FIX, remediating, finished(status));
    expect(c.state).toBe('remediating');
    expect(c.rollout).toBeUndefined();
    expect(effects).toEqual([
      {
        kind: 'record',
        seq: 4,
        type: `patch-rollout-${status}`,
        reason: `patch rollout ${ROLLOUT} ${status}: the exposure stays in remediation (ticket, a later approval, or a scan showing it gone)`,
        evidence: { rolloutId: ROLLOUT, summary: `patch ${status} on host-1` },
      },
    ]);
  });

  it('a rollout ending after the exposure left remediation is only forgotten', () => {
    const accepted = cell({ state: 'risk-accepted', rollout: ROLLOUT });
    const { cell: c, effects } = at(FIX, accepted, finished('succeeded'));
    expect(effects).toEqual([]);
    expect(c).toEqual({ ...accepted, rollout: undefined });
  });

  it('the ticket closed by a human: verifying from the close, and a later rollout end is ignored', () => {
    const { cell: c, effects } = at(FIX + MIN, remediating, ticket('done', FIX, 'olivia@jira'));
    expect(c).toMatchObject({ state: 'verifying', fixedAt: iso(FIX) });
    expect(c.rollout).toBeUndefined();
    expect(effects).toEqual([
      {
        kind: 'record',
        seq: 4,
        type: 'verifying',
        reason: 'ticket SEC-12 closed by olivia@jira: the fix is verified by a re-scan, not by the ticket',
        from: 'remediating',
        to: 'verifying',
        evidence: { ticket: TICKET, at: iso(FIX) },
      },
      { kind: 'rescan', fixedAt: iso(FIX) },
    ]);
    expect(at(FIX + HOUR, c, finished('succeeded')).effects).toEqual([]);
  });

  it('a ticket moving without closing is only recorded', () => {
    const { cell: c, effects } = at(FIX, remediating, ticket('in-progress', FIX));
    expect(c.state).toBe('remediating');
    expect(effects).toEqual([
      {
        kind: 'record',
        seq: 4,
        type: 'ticket-changed',
        reason: 'ticket SEC-12 is in-progress',
        evidence: { ticket: TICKET, at: iso(FIX) },
      },
    ]);
    // Closed before anyone approved a fix: nothing to verify yet.
    const early = at(FIX, cell(), ticket('done', FIX));
    expect(early.cell.state).toBe('awaiting-decision');
    expect(recordsOf(early.effects).map((r) => r.type)).toEqual(['ticket-changed']);
  });

  it('the ticket reopened while verifying: back to remediation, the fix time forgotten', () => {
    const verifying = cell({ state: 'verifying', fixedAt: iso(FIX), level: 0 });
    const { cell: c, effects } = at(FIX + DAY, verifying, ticket('open', FIX + DAY, 'sam'));
    expect(c.state).toBe('remediating');
    expect(c.fixedAt).toBeUndefined();
    expect(effects).toEqual([
      {
        kind: 'record',
        seq: 4,
        type: 'remediating',
        reason: 'ticket SEC-12 reopened by sam',
        from: 'verifying',
        to: 'remediating',
        evidence: { ticket: TICKET, at: iso(FIX + DAY) },
      },
    ]);
    expect(nextWake(c, rules)).toBe(T0 + 8 * DAY); // no verification window any more: the next SLA step
  });
});

describe('verification: only a re-scan after the fix resolves it', () => {
  const FIX = T0 + DAY;
  // A 90-day window keeps the SLA ladder out of the way: the wake-ups here are verification windows.
  const verifying = cell({ state: 'verifying', fixedAt: iso(FIX), clock: startClock(T0, T0 + 90 * DAY) });

  it('a scan after the fix that covered the asset and no longer sees it: resolved, with the evidence', () => {
    const { cell: c, effects } = at(FIX + 2 * HOUR, verifying, absent(44, FIX + HOUR));
    expect(c).toMatchObject({
      state: 'resolved',
      verifiedBy: { scanId: 44, at: iso(FIX + HOUR) },
      resolvedAt: iso(FIX + 2 * HOUR),
    });
    expect(effects).toEqual([
      {
        kind: 'record',
        seq: 4,
        type: 'resolved',
        reason: `scan 44 at ${iso(FIX + HOUR)} covered the asset and no longer sees ${CVE}`,
        from: 'verifying',
        to: 'resolved',
        evidence: { scanId: 44, at: iso(FIX + HOUR), fixedAt: iso(FIX) },
      },
    ]);
    expect(dueAt(c, FIX + 2 * HOUR)).toBeUndefined();
    expect(nextWake(c, rules)).toBeUndefined();
  });

  it.each([
    ['before', FIX - HOUR],
    ['at', FIX],
  ])('a scan %s the fix time proves nothing', (_when, scanMs) => {
    const { cell: c, effects } = at(FIX + HOUR, verifying, absent(43, scanMs));
    expect(c.state).toBe('verifying');
    expect(effects).toEqual([
      {
        kind: 'record',
        seq: 4,
        type: 'evidence-ignored',
        reason: `scan 43 at ${iso(scanMs)} is not after ${iso(FIX)}, so it proves nothing`,
        evidence: { scanId: 43, at: iso(scanMs) },
      },
    ]);
    // Nor does a scan from before the fix that still saw it.
    expect(at(FIX + HOUR, verifying, observed(43, scanMs)).effects).toEqual([]);
    expect(at(FIX + HOUR, verifying, observed(43, scanMs)).cell.state).toBe('verifying');
  });

  it('a scan after the fix that still sees it: the fix failed, back to remediation, the ticket reopened', () => {
    const { cell: c, effects } = at(FIX + 2 * HOUR, verifying, observed(45, FIX + HOUR));
    expect(c.state).toBe('remediating');
    expect(c.fixedAt).toBeUndefined();
    expect(c.toRemediate).toBeUndefined(); // no new round without a new approval
    expect(effects).toEqual([
      {
        kind: 'record',
        seq: 4,
        type: 'fix-failed',
        reason: `scan 45 at ${iso(FIX + HOUR)} still sees ${CVE} after the fix of ${iso(FIX)}`,
        from: 'verifying',
        to: 'remediating',
        evidence: { scanId: 45, at: iso(FIX + HOUR), fixedAt: iso(FIX) },
      },
      {
        kind: 'ticket',
        action: 'reopen',
        text: `The fix of ${iso(FIX)} did not remove ${CVE} on asset 7: scan 45 at ${iso(FIX + HOUR)} still sees it.`,
      },
    ]);
  });

  it('a scan older than the last one that saw it proves nothing either, even after the fix', () => {
    // A scan saw it after the fix time the ticket gives; an older scan arriving later is not evidence.
    const { cell: c, effects } = play(cell({ state: 'remediating' }), [
      [FIX + 3 * HOUR, observed(50, FIX + 2 * HOUR)],
      [FIX + 4 * HOUR, ticket('done', FIX)],
      [FIX + 5 * HOUR, absent(49, FIX + HOUR)],
    ]);
    expect(c.state).toBe('verifying');
    expect(recordsOf(effects).map((r) => r.type)).toEqual(['verifying', 'evidence-ignored']);
    expect(at(FIX + 6 * HOUR, c, absent(51, FIX + 3 * HOUR)).cell.state).toBe('resolved');
  });

  it('no covering scan within the window: "fix not verified" once per window, a re-scan asked again', () => {
    expect(nextWake(verifying, rules)).toBe(FIX + 3 * DAY);
    expect(at(FIX + 3 * DAY - 1, verifying, time).effects).toEqual([]);
    const first = at(FIX + 3 * DAY, verifying, time);
    expect(first.cell).toMatchObject({ state: 'verifying', unverifiedWindows: 1 });
    expect(first.effects).toEqual([
      {
        kind: 'notify',
        notification: 'escalation',
        topic: 'fix-not-verified:1',
        audiences: ['owner', 'channel', 'manager'],
        level: 1,
        line: `${CVE} on asset 7: no scan after the fix of ${iso(FIX)} has covered it`,
      },
      {
        kind: 'record',
        seq: 4,
        type: 'fix-not-verified',
        reason: `no scan after the fix of ${iso(FIX)} proved ${CVE} gone within the verification window`,
        evidence: { window: 1 },
      },
      {
        kind: 'ticket',
        action: 'comment',
        text: `Fix not verified: no scan after ${iso(FIX)} has shown ${CVE} gone on asset 7; a re-scan is requested again.`,
      },
      { kind: 'rescan', fixedAt: iso(FIX) },
    ]);
    expect(nextWake(first.cell, rules)).toBe(FIX + 6 * DAY);
    expect(at(FIX + 5 * DAY, first.cell, time).effects).toEqual([]);
    const second = at(FIX + 6 * DAY, first.cell, time);
    expect(second.cell.unverifiedWindows).toBe(2);
    expect(requestsOf(second.effects).map((r) => (r.kind === 'notify' ? r.topic : r.kind))).toEqual([
      'fix-not-verified:2',
      'ticket',
      'rescan',
    ]);
    // Time alone never resolves it: only a covering scan after the fix does.
    expect(second.cell.state).toBe('verifying');
    expect(at(FIX + 6 * DAY + HOUR, second.cell, absent(46, FIX + 6 * DAY)).cell.state).toBe('resolved');
  });

  it('a new fix gets a full verification window again, whatever the last fix missed', () => {
    const missed = at(FIX + 3 * DAY, verifying, time).cell;
    const FIX2 = FIX + 5 * DAY;
    const { cell: c } = play(missed, [
      [FIX + 4 * DAY, observed(47, FIX + 4 * DAY)], // the fix failed: remediating again
      [FIX2, ticket('done', FIX2)], // fixed again by hand
    ]);
    expect(c).toMatchObject({ state: 'verifying', fixedAt: iso(FIX2), unverifiedWindows: 0 });
    expect(nextWake(c, rules)).toBe(FIX2 + 3 * DAY);
    const rolled = play({ ...missed, state: 'remediating', fixedAt: undefined, rollout: ROLLOUT }, [
      [
        FIX2,
        {
          kind: 'patchFinished',
          rolloutId: ROLLOUT,
          status: 'succeeded',
          summary: 'ok',
          finishedAt: iso(FIX2),
        },
      ],
    ]).cell;
    expect(rolled.unverifiedWindows).toBe(0);
    expect(nextWake(rolled, rules)).toBe(FIX2 + 3 * DAY);
  });
});

describe('gone without a fix through ctem', () => {
  it.each([
    ['awaiting-decision', 'a scan no longer sees it (fixed outside a ticket)'],
    ['remediating', 'a scan after the approval no longer sees it'],
    ['snoozed', 'a scan no longer sees it (fixed outside a ticket)'],
    ['risk-accepted', 'a scan no longer sees it (fixed outside a ticket)'],
  ] as const)('%s + a later covering scan without it: verifying, then resolved', (state, how) => {
    const from = cell({ state, toRemediate: state === 'remediating' ? true : undefined });
    const { cell: c, effects } = at(T0 + DAY + HOUR, from, absent(46, T0 + DAY));
    expect(c.state).toBe('resolved');
    expect(c.toRemediate).toBeUndefined();
    expect(effects).toEqual([
      {
        kind: 'record',
        seq: 4,
        type: 'verifying',
        reason: `${how}; scan 46 at ${iso(T0 + DAY)} is the evidence`,
        from: state,
        to: 'verifying',
        evidence: { scanId: 46, at: iso(T0 + DAY) },
      },
      {
        kind: 'record',
        seq: 5,
        type: 'resolved',
        reason: `scan 46 at ${iso(T0 + DAY)} covered the asset and no longer sees ${CVE}`,
        from: 'verifying',
        to: 'resolved',
        evidence: { scanId: 46, at: iso(T0 + DAY), fixedAt: undefined },
      },
    ]);
  });

  it('a scan not after the last one that saw it proves nothing', () => {
    const { cell: c, effects } = at(T0, cell(), absent(40, T0 - HOUR));
    expect(c.state).toBe('awaiting-decision');
    expect(effects).toEqual([
      {
        kind: 'record',
        seq: 4,
        type: 'evidence-ignored',
        reason: `scan 40 at ${iso(T0 - HOUR)} is not after ${iso(T0 - HOUR)}, so it proves nothing`,
        evidence: { scanId: 40, at: iso(T0 - HOUR) },
      },
    ]);
    // A scan that sees it again moves the baseline.
    const seen = at(T0 + DAY, cell(), observed(41, T0 + DAY)).cell;
    expect(seen.lastObservedMs).toBe(T0 + DAY);
    expect(recordsOf(at(T0 + DAY, seen, absent(42, T0 + DAY - MIN)).effects)[0]!.type).toBe(
      'evidence-ignored',
    );
  });

  it.each(['awaiting-decision', 'snoozed', 'remediating', 'verifying'] as const)(
    '%s + its asset retired: closed as retired, not as fixed',
    (state) => {
      const { cell: c, effects } = at(T0 + DAY, cell({ state, fixedAt: iso(T0) }), {
        kind: 'absent',
        scanId: 47,
        at: iso(T0 - DAY), // retirement is an inventory fact: the scan's time does not matter
        assetRetired: true,
      });
      expect(c).toMatchObject({ state: 'retired', resolvedAt: iso(T0 + DAY) });
      expect(effects).toEqual([
        {
          kind: 'record',
          seq: 4,
          type: 'retired',
          reason: 'the asset was retired from the inventory (scan 47); closed as retired, not as fixed',
          from: state,
          to: 'retired',
          evidence: { scanId: 47, at: iso(T0 - DAY) },
        },
      ]);
      expect(dueAt(c, T0 + DAY)).toBeUndefined();
      expect(nextWake(c, rules)).toBeUndefined();
    },
  );

  it.each(['resolved', 'false-positive', 'retired'] as const)(
    'a %s exposure ignores scans, re-scores, tickets and time',
    (state) => {
      const closed = cell({ state, resolvedAt: iso(T0), verifiedBy: { scanId: 44, at: iso(T0) } });
      const events: CellEvent[] = [
        absent(48, T0 + DAY),
        { kind: 'absent', scanId: 48, at: iso(T0 + DAY), assetRetired: true },
        { kind: 'rescored', priority: 'Track', slaDue: iso(T0 + 90 * DAY), policyVersion: 'v2' },
        ticket('open', T0 + DAY),
        time,
      ];
      if (state !== 'resolved') events.push(observed(48, T0 + DAY)); // only a resolved one comes back
      for (const e of events) {
        const r = at(T0 + 30 * DAY, closed, e);
        expect(r.effects).toEqual([]);
        expect(r.cell).toEqual(closed);
      }
      expect(nextWake(closed, rules)).toBeUndefined();
    },
  );
});

describe('reopen: seen again after it was resolved', () => {
  // Breached, fixed late, not verified in the first window, then resolved by scan 51.
  const GONE = T0 + 12 * DAY;
  const verifying = cell({
    state: 'verifying',
    level: 2,
    slaBreachedAt: iso(T0 + 8 * DAY),
    fixedAt: iso(T0 + 11 * DAY),
    unverifiedWindows: 1,
  });
  const resolved = at(GONE + 6 * HOUR, verifying, absent(51, GONE)).cell;

  it('a scan after the one that showed it gone: reopened, validated, the owner asked, on a new SLA clock', () => {
    const NOW = GONE + 7 * HOUR;
    // The scan ran before the workflow resolved the exposure, but after the scan that showed it gone.
    const { cell: c, effects } = at(NOW, resolved, observed(52, GONE + HOUR));
    expect(c.state).toBe('awaiting-decision');
    expect(effects).toEqual([
      {
        kind: 'record',
        seq: 5,
        type: 'reopened',
        reason: `scan 52 sees ${CVE} again after it was resolved`,
        from: 'resolved',
        to: 'reopened',
        evidence: { scanId: 52, at: iso(GONE + HOUR) },
      },
      {
        kind: 'record',
        seq: 6,
        type: 'validated',
        reason: 'observed by scan 52',
        from: 'reopened',
        to: 'validated',
        evidence: { scanId: 52, at: iso(GONE + HOUR), reasons: [] },
      },
      {
        kind: 'record',
        seq: 7,
        type: 'awaiting-decision',
        reason: 'owner asked to decide (back after resolved)',
        from: 'validated',
        to: 'awaiting-decision',
      },
      { kind: 'askOwner', why: 'back after resolved' },
    ]);
    expect(c).toMatchObject({
      level: -1,
      unverifiedWindows: 0,
      lastObservedMs: GONE + HOUR,
      lifecycle: 'scan-41',
    });
    for (const gone of ['verifiedBy', 'fixedAt', 'resolvedAt', 'slaBreachedAt'] as const)
      expect(c[gone]).toBeUndefined();
    // A new clock of the same 8-day window: no breach carried over from the old one.
    expect(c.clock).toEqual(startClock(NOW, NOW + 8 * DAY));
    expect(dueAt(c, NOW)).toBe(iso(NOW + 8 * DAY));
    expect(at(NOW, c, time).effects).toEqual([]);
    expect(nextWake(c, rules)).toBe(NOW + 4 * DAY);
  });

  it.each([
    ['the one that showed it gone', GONE],
    ['an older scan', GONE - HOUR],
  ])('%s seeing it does not reopen it', (_which, scanMs) => {
    const r = at(GONE + 7 * HOUR, resolved, observed(50, scanMs));
    expect(r.effects).toEqual([]);
    expect(r.cell).toEqual(resolved);
  });

  it('a new lifecycle of a closed exposure: reopened, validated on the triage evidence, the owner asked', () => {
    const fresh = newCell({
      id: ID,
      assetId: 7,
      weaknessKey: CVE,
      state: 'triaged',
      priority: 'Act',
      policyVersion: 'v1',
      slaStartMs: T0 + 40 * DAY,
      slaDueMs: T0 + 48 * DAY,
      firstSeen: '2025-11-20T00:00:00.000Z',
      observedAtMs: T0 + 40 * DAY - HOUR,
      seq: 0,
      lifecycle: 'scan-60',
    });
    const reasons = ['Exploitation: active (CISA KEV, added 2024-01-10)', 'Technical impact: total'];
    const back: CellEvent = {
      kind: 'reopened',
      scanId: 60,
      at: iso(T0 + 40 * DAY),
      from: 'false-positive',
      reasons,
    };
    const { cell: c, effects } = at(T0 + 40 * DAY, fresh, back);
    expect(c).toMatchObject({ state: 'awaiting-decision', seq: 3, lastObservedMs: T0 + 40 * DAY });
    expect(recordsOf(effects).map((r) => [r.seq, r.type, r.from, r.to, r.reason])).toEqual([
      [1, 'reopened', 'triaged', 'reopened', `scan 60 sees ${CVE} again after it was false-positive`],
      [
        2,
        'validated',
        'reopened',
        'validated',
        'observed by scan 60; Exploitation: active (CISA KEV, added 2024-01-10)',
      ],
      [
        3,
        'awaiting-decision',
        'validated',
        'awaiting-decision',
        'owner asked to decide (back after false-positive)',
      ],
    ]);
    expect(recordsOf(effects)[1]!.evidence).toEqual({ scanId: 60, at: iso(T0 + 40 * DAY), reasons });
    expect(requestsOf(effects)).toEqual([{ kind: 'askOwner', why: 'back after false-positive' }]);
  });
});

describe('snooze', () => {
  const UNTIL = T0 + 6 * DAY;
  const snoozed = at(T0 + 3 * DAY, cell(), decide({ kind: 'snooze', actor: olivia, until: iso(UNTIL) })).cell;

  it('sleeps until the snooze ends, with no SLA step meanwhile', () => {
    expect(nextWake(snoozed, rules)).toBe(UNTIL); // not the 50 % reminder at T0 + 4 days
    expect(at(T0 + 5 * DAY, snoozed, time).effects).toEqual([]);
  });

  it('ends back in awaiting-decision, the owner asked, the ladder shifted by the snooze', () => {
    const { cell: c, effects } = at(UNTIL, snoozed, time);
    expect(c.state).toBe('awaiting-decision');
    expect(effects).toEqual([
      {
        kind: 'record',
        seq: 5,
        type: 'awaiting-decision',
        reason: `owner asked to decide (the snooze until ${iso(UNTIL)} ended)`,
        from: 'snoozed',
        to: 'awaiting-decision',
      },
      { kind: 'askOwner', why: `the snooze until ${iso(UNTIL)} ended` },
    ]);
    expect(c.clock).toEqual({ startMs: T0, dueMs: T0 + 8 * DAY, pausedMs: 3 * DAY });
    expect(dueAt(c, UNTIL)).toBe('2026-03-13T09:00:00.000Z');
    expect(nextWake(c, rules)).toBe(T0 + 7 * DAY);
    const reminder = at(T0 + 7 * DAY, c, time).effects;
    expect(requestsOf(reminder)).toEqual([
      {
        kind: 'notify',
        notification: 'reminder',
        topic: 'sla:0:2026-03-13',
        audiences: ['owner'],
        level: 0,
        line: `Act ${CVE} on asset 7 is due 2026-03-13T09:00:00.000Z`,
      },
    ]);
  });

  it('a longer snooze keeps the clock paused since the first', () => {
    const longer = at(
      T0 + 4 * DAY,
      snoozed,
      decide({ kind: 'snooze', actor: olivia, until: iso(T0 + 9 * DAY) }),
    );
    expect(longer.cell.clock.pausedSinceMs).toBe(T0 + 3 * DAY);
    expect(nextWake(longer.cell, rules)).toBe(T0 + 9 * DAY);
    expect(transitions(longer.effects)).toEqual(['snoozed→snoozed']);
  });
});

describe('risk acceptance', () => {
  const UNTIL = T0 + 61 * DAY;
  const accept = (until: number): CellEvent =>
    decide({ kind: 'acceptRisk', actor: olivia, justification: 'legacy', expires: iso(until) });
  const accepted = at(T0 + DAY, cell(), accept(UNTIL)).cell;

  it('reminds the owner and the security lead once, 14 days before it ends', () => {
    const REMIND = UNTIL - 14 * DAY;
    expect(nextWake(accepted, rules)).toBe(REMIND);
    expect(at(REMIND - 1, accepted, time).effects).toEqual([]);
    const { cell: c, effects } = at(REMIND, accepted, time);
    expect(effects).toEqual([
      {
        kind: 'notify',
        notification: 'reminder',
        topic: 'acceptance-expiring:2026-05-02',
        audiences: ['owner', 'securityLead'],
        level: 0,
        line: `${CVE} on asset 7: the risk acceptance by olivia ends on 2026-05-02T09:00:00.000Z`,
      },
      {
        kind: 'record',
        seq: 5,
        type: 'acceptance-expiring',
        reason: 'risk acceptance by olivia ends on 2026-05-02T09:00:00.000Z',
      },
    ]);
    expect(c.state).toBe('risk-accepted');
    expect(c.riskAccepted?.reminded).toBe(true);
    expect(nextWake(c, rules)).toBe(UNTIL);
    expect(at(REMIND + DAY, c, time).effects).toEqual([]);
  });

  it('ends reopened, the owner asked again, the clock resumed with the acceptance in the owner’s favour', () => {
    const reminded = at(UNTIL - 14 * DAY, accepted, time).cell;
    const { cell: c, effects } = at(UNTIL, reminded, time);
    expect(c.state).toBe('awaiting-decision');
    expect(effects).toEqual([
      {
        kind: 'record',
        seq: 6,
        type: 'reopened',
        reason: 'the risk acceptance by olivia ended on 2026-05-02T09:00:00.000Z',
        from: 'risk-accepted',
        to: 'reopened',
      },
      {
        kind: 'record',
        seq: 7,
        type: 'awaiting-decision',
        reason: 'owner asked to decide (the risk acceptance by olivia ended)',
        from: 'reopened',
        to: 'awaiting-decision',
      },
      { kind: 'askOwner', why: 'the risk acceptance by olivia ended' },
    ]);
    expect(c.clock).toEqual({ startMs: T0, dueMs: T0 + 8 * DAY, pausedMs: 60 * DAY });
    expect(nextWake(c, rules)).toBe(T0 + 64 * DAY); // the 50 % reminder, 60 days later
  });

  it('a wake-up after the end reopens it without a late reminder', () => {
    const { effects } = at(UNTIL + HOUR, accepted, time);
    expect(effects.map((e) => e.kind)).toEqual(['record', 'record', 'askOwner']);
  });

  it('renewed after the reminder: a new end, a new reminder, the clock still paused since the first', () => {
    const reminded = at(UNTIL - 14 * DAY, accepted, time).cell;
    const LATER = T0 + 120 * DAY;
    const { cell: c, effects } = at(UNTIL - DAY, reminded, accept(LATER));
    expect(transitions(effects)).toEqual(['risk-accepted→risk-accepted']);
    expect(c.riskAccepted).toEqual({ by: 'olivia', until: iso(LATER), justification: 'legacy' });
    expect(c.clock.pausedSinceMs).toBe(T0 + DAY);
    expect(nextWake(c, rules)).toBe(LATER - 14 * DAY);
  });
});

describe('the SLA ladder', () => {
  it('fires each step once as time passes: reminder at 50 %, escalation at the deadline, CISO after grace', () => {
    const DUE = '2026-03-10T09:00:00.000Z';
    let c = cell();
    expect(at(T0 + 4 * DAY - 1, c, time).effects).toEqual([]);

    let r = at(T0 + 4 * DAY, c, time);
    expect(r.effects).toEqual([
      {
        kind: 'notify',
        notification: 'reminder',
        topic: 'sla:0:2026-03-10',
        audiences: ['owner'],
        level: 0,
        line: `Act ${CVE} on asset 7 is due ${DUE}`,
      },
      {
        kind: 'record',
        seq: 4,
        type: 'sla-reminder',
        reason: `SLA reminder: level 0 to owner (due ${DUE})`,
        evidence: { level: 0, audiences: ['owner'], dueAt: DUE },
      },
    ]);
    c = r.cell;
    expect(c.level).toBe(0);
    expect(c.slaBreachedAt).toBeUndefined();
    expect(at(T0 + 5 * DAY, c, time).effects).toEqual([]); // once
    expect(nextWake(c, rules)).toBe(T0 + 8 * DAY);

    r = at(T0 + 8 * DAY, c, time);
    expect(r.effects).toEqual([
      {
        kind: 'notify',
        notification: 'escalation',
        topic: 'sla:1:2026-03-10',
        audiences: ['owner', 'channel', 'manager'],
        level: 1,
        line: `Act ${CVE} on asset 7 was due ${DUE}`,
      },
      {
        kind: 'record',
        seq: 5,
        type: 'sla-escalated',
        reason: `SLA breached: level 1 to owner, channel, manager (due ${DUE})`,
        evidence: { level: 1, audiences: ['owner', 'channel', 'manager'], dueAt: DUE },
      },
      {
        kind: 'ticket',
        action: 'comment',
        text: `SLA breached (due ${DUE}) for ${CVE} on asset 7; escalated to owner, channel, manager.`,
      },
    ]);
    c = r.cell;
    expect(c).toMatchObject({ level: 1, slaBreachedAt: iso(T0 + 8 * DAY) });
    expect(nextWake(c, rules)).toBe(T0 + 11 * DAY);

    r = at(T0 + 11 * DAY + 5 * MIN, c, time);
    expect(requestsOf(r.effects)).toEqual([
      {
        kind: 'notify',
        notification: 'escalation',
        topic: 'sla:2:2026-03-10',
        audiences: ['ciso'],
        level: 2,
        line: `Act ${CVE} on asset 7 was due ${DUE} (past its grace period)`,
      },
      {
        kind: 'ticket',
        action: 'comment',
        text: `SLA breached (due ${DUE}) for ${CVE} on asset 7; escalated to ciso.`,
      },
    ]);
    expect(recordsOf(r.effects).map((x) => [x.seq, x.type])).toEqual([[6, 'sla-escalated']]);
    c = r.cell;
    expect(c).toMatchObject({ level: 2, slaBreachedAt: iso(T0 + 8 * DAY) }); // the first breach stays
    expect(nextWake(c, rules)).toBeUndefined();
    expect(at(T0 + 60 * DAY, c, time).effects).toEqual([]);
  });

  it('a late wake-up fires only the highest step due, once', () => {
    const r = at(T0 + 9 * DAY, cell(), time);
    expect(requestsOf(r.effects).filter((e) => e.kind === 'notify')).toHaveLength(1);
    expect(r.cell.level).toBe(1);
    expect(nextWake(r.cell, rules)).toBe(T0 + 11 * DAY);
  });

  it.each(['open', 'triaged', 'validated', 'reopened', 'remediating', 'verifying'] as const)(
    'runs while %s',
    (state) => {
      const c = cell({ state, ...(state === 'verifying' ? { fixedAt: iso(T0 + 3 * DAY) } : {}) });
      expect(nextWake(c, rules)).toBe(T0 + 4 * DAY);
      expect(recordsOf(at(T0 + 4 * DAY, c, time).effects).map((x) => x.type)).toEqual(['sla-reminder']);
    },
  );

  it.each([
    ['snoozed', decide({ kind: 'snooze', actor: olivia, until: iso(T0 + 20 * DAY) })],
    [
      'risk-accepted',
      decide({ kind: 'acceptRisk', actor: olivia, justification: 'x', expires: iso(T0 + 90 * DAY) }),
    ],
  ] as const)('is paused while %s: no step fires, however late', (_state, pause) => {
    const c = at(T0 + DAY, cell(), pause).cell;
    expect(nextWake(c, rules)).not.toBe(T0 + 4 * DAY);
    expect(at(T0 + 12 * DAY, c, time).effects).toEqual([]);
  });

  it('a step before the deadline is a reminder whoever it reaches; a breach is an escalation', () => {
    const ladder: LifecycleRules = {
      ...rules,
      ladder: [
        { fraction: 0.25, notify: ['owner'] },
        { fraction: 0.75, notify: ['owner', 'manager'] },
        { fraction: 1, notify: ['owner', 'channel', 'manager'] },
      ],
    };
    const { cell: c, effects } = play(
      cell(),
      [
        [T0 + 2 * DAY, time],
        [T0 + 6 * DAY, time],
        [T0 + 8 * DAY, time],
      ],
      ladder,
    );
    expect(c.level).toBe(2);
    expect(
      requestsOf(effects).map((e) => (e.kind === 'notify' ? [e.notification, e.level, e.audiences] : e.kind)),
    ).toEqual([
      ['reminder', 0, ['owner']],
      ['reminder', 1, ['owner', 'manager']],
      ['escalation', 2, ['owner', 'channel', 'manager']],
      'ticket',
    ]);
    expect(recordsOf(effects).map((r) => r.type)).toEqual(['sla-reminder', 'sla-reminder', 'sla-escalated']);

    // A ladder whose first step is the deadline escalates at once.
    const strict: LifecycleRules = { ...rules, ladder: [{ fraction: 1, notify: ['owner'] }] };
    const first = at(T0 + 8 * DAY, cell(), time, strict);
    expect(requestsOf(first.effects)[0]).toMatchObject({ notification: 'escalation', level: 0 });
    expect(first.cell.slaBreachedAt).toBe(iso(T0 + 8 * DAY));
  });
});

describe('re-scored', () => {
  const rescore = (priority: string, dueMs: number, policyVersion = 'v2', extra = {}): CellEvent => ({
    kind: 'rescored',
    priority,
    slaDue: iso(dueMs),
    policyVersion,
    ...extra,
  });

  it('a higher priority and an earlier deadline: recorded, the ticket refreshed, the breach fires next', () => {
    const attend = cell({ priority: 'Attend', clock: startClock(T0, T0 + 30 * DAY), level: 0 });
    const event = rescore('Act', T0 + 7 * DAY, 'v2', { kev: true, contextualCvss: 9.8 });
    const { cell: c, effects } = at(T0 + 8 * DAY, attend, event);
    expect(effects).toEqual([
      {
        kind: 'record',
        seq: 4,
        type: 'rescored',
        reason: 're-scored Attend → Act, deadline 2026-04-01T09:00:00.000Z → 2026-03-09T09:00:00.000Z',
        inputs: {
          before: { priority: 'Attend', slaDue: '2026-04-01T09:00:00.000Z', policyVersion: 'v1' },
          after: event,
        },
      },
      { kind: 'ticket', action: 'refresh', text: 're-scored Attend → Act, due 2026-03-09T09:00:00.000Z' },
    ]);
    expect(c).toMatchObject({
      priority: 'Act',
      policyVersion: 'v2',
      kev: true,
      contextualCvss: 9.8,
      level: 0,
    });
    expect(c.clock.dueMs).toBe(T0 + 7 * DAY);
    expect(nextWake(c, rules)).toBe(T0 + 7 * DAY); // overdue: the next wake-up breaches
    const breach = at(T0 + 8 * DAY, c, time);
    expect(breach.cell).toMatchObject({ level: 1, slaBreachedAt: iso(T0 + 8 * DAY) });
  });

  it('a later deadline arms again the steps it moved into the future', () => {
    const reminded = at(T0 + 4 * DAY, cell(), time).cell;
    const { cell: c, effects } = at(T0 + 5 * DAY, reminded, rescore('Attend', T0 + 30 * DAY));
    expect(recordsOf(effects)[0]!.reason).toBe(
      're-scored Act → Attend, deadline 2026-03-10T09:00:00.000Z → 2026-04-01T09:00:00.000Z',
    );
    expect(c.level).toBe(-1);
    expect(nextWake(c, rules)).toBe(T0 + 15 * DAY);
    expect(recordsOf(at(T0 + 15 * DAY, c, time).effects).map((r) => r.type)).toEqual(['sla-reminder']);
  });

  it("a deadline beyond the scope's stricter window is capped by it", () => {
    const capped: LifecycleRules = { ...rules, slaCapMs: { Act: 5 * DAY } };
    const { cell: c, effects } = at(
      T0 + DAY,
      cell({ priority: 'Attend' }),
      rescore('Act', T0 + 30 * DAY),
      capped,
    );
    expect(c.clock.dueMs).toBe(T0 + 5 * DAY);
    expect(requestsOf(effects)).toEqual([
      { kind: 'ticket', action: 'refresh', text: `re-scored Attend → Act, due ${iso(T0 + 5 * DAY)}` },
    ]);
  });

  it('nothing changed: nothing recorded; only the policy version: recorded, the ticket left alone', () => {
    const c = cell();
    expect(at(T0 + DAY, c, rescore('Act', T0 + 8 * DAY, 'v1')).effects).toEqual([]);
    const { cell: after, effects } = at(T0 + DAY, c, rescore('Act', T0 + 8 * DAY, 'v2'));
    expect(after.policyVersion).toBe('v2');
    expect(effects.map((e) => e.kind)).toEqual(['record']);
  });

  it('a new deadline alone refreshes the ticket too; while snoozed, the deadlines shown keep the pause', () => {
    const snoozed = at(
      T0 + DAY,
      cell(),
      decide({ kind: 'snooze', actor: olivia, until: iso(T0 + 9 * DAY) }),
    ).cell;
    const { cell: c, effects } = at(T0 + 3 * DAY, snoozed, rescore('Act', T0 + 6 * DAY));
    expect(recordsOf(effects)[0]!.reason).toBe(
      `re-scored Act → Act, deadline ${iso(T0 + 10 * DAY)} → ${iso(T0 + 8 * DAY)}`,
    );
    expect(requestsOf(effects)).toEqual([
      { kind: 'ticket', action: 'refresh', text: `re-scored Act → Act, due ${iso(T0 + 8 * DAY)}` },
    ]);
    expect(c.clock.pausedSinceMs).toBe(T0 + DAY);
  });
});

describe('moved in, notes', () => {
  it('joining a new owner’s campaign with a decision pending asks the new owner', () => {
    const { cell: c, effects } = at(T0 + DAY, cell(), { kind: 'movedIn', by: 'olivia', owner: 'erin' });
    expect(c.state).toBe('awaiting-decision');
    expect(effects).toEqual([
      {
        kind: 'record',
        seq: 4,
        type: 'moved',
        reason: "joined erin's campaign, reassigned by olivia",
        from: 'awaiting-decision',
        to: 'awaiting-decision',
      },
      { kind: 'askOwner', why: 'assigned to erin by olivia' },
    ]);
    const reopened = at(T0 + DAY, cell({ state: 'reopened' }), {
      kind: 'movedIn',
      by: 'olivia',
      owner: 'erin',
    });
    expect(transitions(reopened.effects)).toEqual(['reopened→reopened', 'reopened→awaiting-decision']);
    expect(requestsOf(reopened.effects)).toEqual([{ kind: 'askOwner', why: 'assigned to erin by olivia' }]);
  });

  it('joining with nothing to decide is only recorded', () => {
    for (const state of ['remediating', 'snoozed', 'verifying'] as const) {
      const { cell: c, effects } = at(T0, cell({ state }), { kind: 'movedIn', by: 'olivia', owner: 'erin' });
      expect(c.state).toBe(state);
      expect(effects.map((e) => (e.kind === 'record' ? e.type : e.kind))).toEqual(['moved']);
    }
  });

  it('a note is recorded as given, the state untouched', () => {
    const note: CellEvent = {
      kind: 'note',
      type: 'side-effect-failed',
      reason: 'ticket system down',
      evidence: { attempts: 5 },
    };
    const { cell: c, effects } = at(T0, cell({ state: 'remediating' }), note);
    expect(c.state).toBe('remediating');
    expect(effects).toEqual([
      {
        kind: 'record',
        seq: 4,
        type: 'side-effect-failed',
        reason: 'ticket system down',
        evidence: { attempts: 5 },
      },
    ]);
    expect(at(T0, cell(), { kind: 'note', type: 'asked', reason: 'x' }).effects).toEqual([
      { kind: 'record', seq: 4, type: 'asked', reason: 'x' },
    ]);
  });
});

describe('records over a whole lifecycle', () => {
  it('number every record once, so "<exposure>:<lifecycle>:<seq>" is a unique idempotency key', () => {
    const FIX = T0 + 2 * DAY;
    const approved = at(T0 + DAY, cell(), decide(approve)).cell;
    // The campaign starts the round: the cell then waits for its rollout.
    const waiting: Cell = { ...approved, toRemediate: undefined, rollout: ROLLOUT };
    const { cell: c, effects } = play(waiting, [
      [
        FIX,
        {
          kind: 'patchFinished',
          rolloutId: ROLLOUT,
          status: 'succeeded',
          summary: 'ok',
          finishedAt: iso(FIX),
        },
      ],
      [T0 + 4 * DAY, time], // SLA reminder
      [FIX + 3 * DAY, time], // fix not verified
      [FIX + 3 * DAY + HOUR, absent(53, FIX + 3 * DAY)], // resolved
      [FIX + 4 * DAY, observed(54, FIX + 4 * DAY)], // back: reopened, validated, awaiting-decision
      [FIX + 4 * DAY + HOUR, { kind: 'note', type: 'notified', reason: 'owner told' }],
    ]);
    const seqs = recordsOf(effects).map((r) => r.seq);
    expect(recordsOf(effects).map((r) => r.type)).toEqual([
      'verifying',
      'sla-reminder',
      'fix-not-verified',
      'resolved',
      'reopened',
      'validated',
      'awaiting-decision',
      'notified',
    ]);
    expect(seqs).toEqual([5, 6, 7, 8, 9, 10, 11, 12]); // 4 was the approval
    expect(c.seq).toBe(12);
    const keys = [4, ...seqs].map((seq) => `${c.id}:${c.lifecycle}:${seq}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys[0]).toBe('7:CVE-2026-0001:scan-41:4');
  });
});
