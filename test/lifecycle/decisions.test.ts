// Decisions through the decision API on the real server: each is validated (well-formed, authorized
// for the scope and role, allowed now) by the workflow's update validator, refused with a sentence a
// person can act on, and recorded.
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { dispatchChanges } from '../../lifecycle/dispatch.ts';
import { applyDecision, recordRefusal } from '../../lifecycle/decide.ts';
import type { Decision } from '../../domain/exposure.ts';
import { exposureWorkflowId } from '../../domain/exposure.ts';
import {
  eventTypes,
  eventually,
  keepHistory,
  lifecycleConfig,
  newPortLog,
  recordingPorts,
  seedExposures,
  untilState,
  view,
} from './support.ts';
import { testDeps } from '../support/deps.ts';

const log = newPortLog();
const ports = recordingPorts(log);
const config = lifecycleConfig();

let db: TestDatabase;
let temporal: TestTemporal;
beforeAll(async () => {
  db = await testDatabase();
  temporal = await testTemporal();
});

const inMs = (ms: number) => new Date(Date.now() + ms).toISOString();
const DAY = 86_400_000;
const by = (personId: string) => ({ personId, via: 'slack' as const });

async function withWorker<T>(fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = temporal.taskQueue('decisions');
  const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
  return await worker.runUntil(fn(taskQueue));
}

async function oneExposure(
  taskQueue: string,
  weakness: string,
  scope = 'prod',
  exploited = false,
): Promise<string> {
  const s = await seedExposures(db.pool, { scope, weaknesses: [weakness], exploited });
  await dispatchChanges(
    testDeps({ pool: db.pool, config, registry: ports }),
    temporal.client,
    [{ exposureId: s.ids[0]!, change: 'new', scanId: s.scanId, at: s.at }],
    { taskQueue },
  );
  await untilState(temporal.client, s.ids[0]!, 'awaiting-decision');
  return s.ids[0]!;
}

describe('decisions', () => {
  it('refuses what is malformed, unauthorized or not allowed now, with a reason, and records the refusal', async () => {
    await withWorker(async (taskQueue) => {
      const id = await oneExposure(taskQueue, 'CVE-2099-1001', 'prod', true);
      expect((await view(temporal.client, id)).priority).toBe('Act'); // exploited, internet-facing, critical, CVSS 9.8
      const refused = async (d: Decision) => {
        const r = await applyDecision(temporal.client, id, d);
        expect(r.ok).toBe(false);
        if (!r.ok) await recordRefusal(db.pool, { exposureId: id, decision: d, reason: r.reason });
        return r.ok ? '' : r.reason;
      };
      expect(await refused({ kind: 'approve', actor: by('mallory') })).toMatch(/unknown person "mallory"/);
      expect(await refused({ kind: 'approve', actor: by('pat') })).toMatch(
        /pat holds no role in scope prod; approving a fix needs an owner/,
      );
      expect(
        await refused({
          kind: 'acceptRisk',
          actor: by('olivia'),
          justification: 'legacy',
          expires: inMs(DAY),
        }),
      ).toMatch(/accepting the risk of an Act exposure needs a security lead or the CISO/);
      expect(
        await refused({ kind: 'acceptRisk', actor: by('adam'), justification: 'legacy', expires: inMs(DAY) }),
      ).toMatch(/Act exposure/);
      expect(
        await refused({ kind: 'acceptRisk', actor: by('lena'), justification: '  ', expires: inMs(DAY) }),
      ).toMatch(/needs a justification/);
      expect(
        await refused({ kind: 'acceptRisk', actor: by('lena'), justification: 'x', expires: inMs(91 * DAY) }),
      ).toMatch(/beyond the scope's maximum risk acceptance of 90 days/);
      expect(await refused({ kind: 'snooze', actor: by('olivia'), until: inMs(-1000) })).toMatch(
        /is in the past/,
      );
      expect(await refused({ kind: 'snooze', actor: by('olivia'), until: 'next week' })).toMatch(
        /is not a date/,
      );
      expect(await refused({ kind: 'snooze', actor: by('olivia'), until: inMs(31 * DAY) })).toMatch(
        /maximum snooze of 30 days/,
      );
      expect(await refused({ kind: 'markFalsePositive', actor: by('olivia'), reason: '' })).toMatch(
        /needs a reason/,
      );
      expect(await refused({ kind: 'reassign', actor: by('olivia'), to: 'nobody' })).toMatch(
        /not a person in ctem.yaml/,
      );

      // Allowed in the current state only: once approved, it cannot be approved again.
      expect(await applyDecision(temporal.client, id, { kind: 'approve', actor: by('olivia') })).toEqual({
        ok: true,
        state: 'remediating',
      });
      expect(await refused({ kind: 'approve', actor: by('adam') })).toMatch(
        /the exposure is (remediating|verifying); approve is allowed only when/,
      );

      const { rows } = await db.pool.query<{ actor: string; reason: string }>(
        `select actor, reason from events where exposure_id = $1 and type = 'decision-refused' order by id`,
        [id],
      );
      expect(rows.map((r) => r.actor)).toEqual([
        'mallory',
        'pat',
        'olivia',
        'adam',
        'lena',
        'lena',
        'olivia',
        'olivia',
        'olivia',
        'olivia',
        'olivia',
        'adam',
      ]);
      // Nothing refused changed anything: one accepted decision in the history.
      expect((await view(temporal.client, id)).history.map((h) => h.decision.kind)).toEqual(['approve']);
    });
  });

  it('snoozes, pausing the SLA clock, and asks again when the snooze ends', async () => {
    await withWorker(async (taskQueue) => {
      const id = await oneExposure(taskQueue, 'CVE-2099-1002');
      const dueBefore = Date.parse((await view(temporal.client, id)).slaDue!);
      const until = inMs(2_500);
      expect(
        await applyDecision(temporal.client, id, {
          kind: 'snooze',
          actor: by('olivia'),
          until,
          reason: 'change freeze',
        }),
      ).toEqual({
        ok: true,
        state: 'snoozed',
      });
      const snoozed = await view(temporal.client, id);
      expect(snoozed.slaPaused).toBe(true);
      expect(snoozed.snoozedUntil).toBe(until);
      const back = await untilState(temporal.client, id, 'awaiting-decision', 15_000);
      expect(back.slaPaused).toBe(false);
      // The deadline moved by the time spent snoozed.
      expect(Date.parse(back.slaDue!) - dueBefore).toBeGreaterThanOrEqual(2_000);
      expect(await eventTypes(db.pool, id)).toEqual([
        'triaged',
        'validated',
        'notified',
        'awaiting-decision',
        'snooze',
        'notified',
        'awaiting-decision',
      ]);
      const row = (
        await db.pool.query('select state, sla_paused, snoozed_until from exposures where id = $1', [id])
      ).rows[0];
      expect(row).toMatchObject({ state: 'awaiting-decision', sla_paused: false, snoozed_until: null });
      await keepHistory(temporal.client, id, 'snoozed-and-back');
    });
  });

  it('accepts a risk until its expiry, reminds before it ends, then reopens and asks again', async () => {
    await withWorker(async (taskQueue) => {
      // In scope "bare" (no policy override) the exposure is not Act, so an approver may accept.
      const id = await oneExposure(taskQueue, 'CVE-2099-1003', 'bare');
      const priority = (await view(temporal.client, id)).priority;
      const who = priority === 'Act' ? 'lena' : 'adam';
      const expires = inMs(4_000);
      const r = await applyDecision(temporal.client, id, {
        kind: 'acceptRisk',
        actor: by(who),
        justification: 'compensating WAF rule',
        expires,
      });
      expect(r).toEqual({ ok: true, state: 'risk-accepted' });
      const accepted = await view(temporal.client, id);
      expect(accepted.riskAccepted).toEqual({
        by: who,
        until: expires,
        justification: 'compensating WAF rule',
      });
      expect(accepted.slaPaused).toBe(true);
      const row = (
        await db.pool.query('select risk_accepted_by, risk_accepted_until from exposures where id = $1', [id])
      ).rows[0];
      expect(row.risk_accepted_by).toBe(who);
      expect(row.risk_accepted_until.toISOString()).toBe(expires);
      // Default reminder is 14 days before the end (bare scope), so it is due at once.
      await eventually(
        'the expiry reminder',
        () => eventTypes(db.pool, id),
        (t) => t.includes('acceptance-expiring'),
      );
      await untilState(temporal.client, id, 'awaiting-decision', 15_000);
      const types = await eventTypes(db.pool, id);
      expect(types.slice(4)).toEqual([
        'acceptRisk',
        'notified',
        'acceptance-expiring',
        'reopened',
        'notified',
        'awaiting-decision',
      ]);
      await keepHistory(temporal.client, id, 'risk-accepted-expired');
    });
  });

  it('marks a false positive, which closes the lifecycle', async () => {
    await withWorker(async (taskQueue) => {
      const id = await oneExposure(taskQueue, 'CVE-2099-1004');
      expect(
        await applyDecision(temporal.client, id, {
          kind: 'markFalsePositive',
          actor: by('olivia'),
          reason: 'package not installed, only its docs',
        }),
      ).toEqual({
        ok: true,
        state: 'false-positive',
      });
      const final = await temporal.client.workflow.getHandle(exposureWorkflowId(id)).result();
      expect(final.state).toBe('false-positive');
      const after = await applyDecision(temporal.client, id, { kind: 'approve', actor: by('olivia') });
      expect(after.ok).toBe(false);
      if (!after.ok) expect(after.reason).toMatch(/has no open lifecycle/);
      const row = (await db.pool.query('select state, resolved_at from exposures where id = $1', [id]))
        .rows[0];
      expect(row.state).toBe('false-positive');
      expect(row.resolved_at).not.toBeNull();
    });
  });

  it('reassigns to another person: a new owner, a new remediation unit, and the new owner is asked', async () => {
    await withWorker(async (taskQueue) => {
      const id = await oneExposure(taskQueue, 'CVE-2099-1005');
      const before = await view(temporal.client, id);
      expect(
        await applyDecision(temporal.client, id, {
          kind: 'reassign',
          actor: by('olivia'),
          to: 'adam',
          reason: 'his service',
        }),
      ).toEqual({
        ok: true,
        state: 'awaiting-decision',
      });
      const after = await view(temporal.client, id);
      expect(after.owner).toBe('adam');
      expect(after.remediationUnitId).not.toBe(before.remediationUnitId);
      expect(after.remediationUnitId).toMatch(/^ru:prod:adam:/);
      await eventually(
        'the new owner asked',
        async () => log.notifications.filter((n) => n.campaign.id === after.remediationUnitId),
        (n) => n.length === 1,
      );
      expect(log.notifications.find((n) => n.campaign.id === after.remediationUnitId)!.to).toEqual(['adam']);
      // The new owner may now decide as an owner; the old one is still the scope's owner.
      expect(
        (await applyDecision(temporal.client, id, { kind: 'snooze', actor: by('adam'), until: inMs(DAY) }))
          .ok,
      ).toBe(true);
      const row = (
        await db.pool.query('select owner, remediation_unit_id from exposures where id = $1', [id])
      ).rows[0];
      expect(row).toEqual({ owner: 'adam', remediation_unit_id: after.remediationUnitId });
      await keepHistory(temporal.client, id, 'reassigned');
    });
  });
});
