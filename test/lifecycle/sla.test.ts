// SLA timers and the escalation ladder on the real Temporal dev server. The scope's SLA windows are
// configured in seconds (lifecycle.sla caps the policy's days), so a ladder that spans days in
// production runs here in about ten seconds of real workflow time, through the same timers.
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { dispatchChanges } from '../../lifecycle/dispatch.ts';
import { applyDecision } from '../../lifecycle/decide.ts';
import { exposureWorkflowId } from '../../domain/exposure.ts';
import { rescoredSignal } from '../../contracts/exposure.ts';
import {
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
const config = lifecycleConfig({
  actWindow: '8s',
  ladder: `      ladder:
        - { at: 50%, notify: [owner] }
        - { at: 100%, notify: [owner, channel, manager] }
        - { after: 3s, notify: [ciso] }`,
});

let db: TestDatabase;
let temporal: TestTemporal;
beforeAll(async () => {
  db = await testDatabase();
  temporal = await testTemporal();
});

async function withWorker<T>(fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = temporal.taskQueue('sla');
  const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
  return await worker.runUntil(fn(taskQueue));
}

async function oneExposure(taskQueue: string, weakness: string) {
  const s = await seedExposures(db.pool, { scope: 'prod', weaknesses: [weakness] });
  await dispatchChanges(
    testDeps({ pool: db.pool, config, registry: ports }),
    temporal.client,
    [{ exposureId: s.ids[0]!, change: 'new', scanId: s.scanId, at: s.at }],
    { taskQueue },
  );
  await untilState(temporal.client, s.ids[0]!, 'awaiting-decision');
  return { id: s.ids[0]!, firstSeen: Date.parse(s.at) };
}

interface SlaEvent {
  type: string;
  at: Date;
  data: { evidence: { level: number; audiences: string[] } };
}

async function slaEvents(id: string): Promise<SlaEvent[]> {
  const { rows } = await db.pool.query<SlaEvent>(
    `select type, at, data from events where exposure_id = $1 and type in ('sla-reminder', 'sla-escalated') order by id`,
    [id],
  );
  return rows;
}

describe('the SLA escalation ladder', () => {
  it('reminds the owner at 50 %, escalates to team channel and manager at 100 %, to the CISO after the grace period', async () => {
    await withWorker(async (taskQueue) => {
      const { id, firstSeen } = await oneExposure(taskQueue, 'CVE-2099-2001');
      const v0 = await view(temporal.client, id);
      expect(Date.parse(v0.slaDue!) - firstSeen).toBe(8_000);

      const events = await eventually(
        'three ladder steps',
        () => slaEvents(id),
        (e) => e.length === 3,
        30_000,
      );
      expect(events.map((e) => [e.type, e.data.evidence.level, e.data.evidence.audiences])).toEqual([
        ['sla-reminder', 0, ['owner']],
        ['sla-escalated', 1, ['owner', 'channel', 'manager']],
        ['sla-escalated', 2, ['ciso']],
      ]);
      // Each step fired at its time on the workflow clock, not before.
      const offsets = events.map((e) => e.at.getTime() - firstSeen);
      expect(offsets[0]).toBeGreaterThanOrEqual(4_000);
      expect(offsets[1]).toBeGreaterThanOrEqual(8_000);
      expect(offsets[2]).toBeGreaterThanOrEqual(11_000);

      // Who was reached at each level.
      const sent = log.notifications.filter(
        (n) => n.campaign.exposures.some((e) => e.id === id) && n.kind !== 'decision-request',
      );
      expect(sent.map((n) => [n.kind, n.level, n.to, n.channels?.slack])).toEqual([
        ['reminder', 0, ['olivia'], undefined],
        ['escalation', 1, ['olivia', 'mona'], 'C0PROD'],
        ['escalation', 2, ['cyrus'], undefined],
      ]);

      // The breach is recorded once, on the workflow and on the row.
      const v = await view(temporal.client, id);
      expect(v.escalationLevel).toBe(2);
      expect(v.breaches).toEqual([{ at: expect.any(String), kind: 'sla', level: 1 }]);
      const row = (
        await db.pool.query('select escalation_level, sla_breached_at from exposures where id = $1', [id])
      ).rows[0];
      expect(row.escalation_level).toBe(2);
      expect(row.sla_breached_at.toISOString()).toBe(v.breaches[0]!.at);
      await applyDecision(temporal.client, id, {
        kind: 'markFalsePositive',
        actor: { personId: 'lena', via: 'api' },
        reason: 'test done',
      });
      await temporal.client.workflow.getHandle(exposureWorkflowId(id)).result();
      await keepHistory(temporal.client, id, 'sla-ladder');
    });
  });

  it('pauses the clock while snoozed: no reminder during the snooze, the ladder shifted by its length', async () => {
    await withWorker(async (taskQueue) => {
      const { id, firstSeen } = await oneExposure(taskQueue, 'CVE-2099-2002');
      const until = new Date(firstSeen + 6_000).toISOString();
      expect(
        (
          await applyDecision(temporal.client, id, {
            kind: 'snooze',
            actor: { personId: 'olivia', via: 'api' },
            until,
          })
        ).ok,
      ).toBe(true);
      const snoozedAt = Date.parse((await view(temporal.client, id)).history[0]!.at);
      const events = await eventually(
        'the reminder after the snooze',
        () => slaEvents(id),
        (e) => e.length >= 1,
        30_000,
      );
      // Paused from snoozedAt to until: the 50 % point (firstSeen + 4 s) moves by that much.
      const expected = firstSeen + 4_000 + (Date.parse(until) - snoozedAt);
      expect(events[0]!.type).toBe('sla-reminder');
      expect(events[0]!.at.getTime()).toBeGreaterThanOrEqual(expected - 50);
      expect(events[0]!.at.getTime()).toBeGreaterThanOrEqual(Date.parse(until));
      const v = await view(temporal.client, id);
      // Paused until the snooze actually ended (its timer fires at `until` or a little after).
      const shift = Date.parse(v.slaDue!) - (firstSeen + 8_000);
      expect(shift).toBeGreaterThanOrEqual(Date.parse(until) - snoozedAt);
      expect(shift).toBeLessThan(Date.parse(until) - snoozedAt + 2_000);
      await applyDecision(temporal.client, id, {
        kind: 'markFalsePositive',
        actor: { personId: 'lena', via: 'api' },
        reason: 'test done',
      });
      await temporal.client.workflow.getHandle(exposureWorkflowId(id)).result();
      await keepHistory(temporal.client, id, 'sla-snoozed');
    });
  });

  it('recomputes the ladder on a re-score: a deadline pulled into the past escalates at once at the right level only', async () => {
    await withWorker(async (taskQueue) => {
      const { id, firstSeen } = await oneExposure(taskQueue, 'CVE-2099-2003');
      const handle = temporal.client.workflow.getHandle(exposureWorkflowId(id));
      await handle.signal(rescoredSignal, {
        priority: 'Act',
        slaDue: new Date(firstSeen + 500).toISOString(),
        reasons: ['newly in CISA KEV'],
        policyVersion: 'test-2',
      });
      const first = await eventually(
        'the escalation',
        () => slaEvents(id),
        (e) => e.length >= 1,
      );
      expect(first[0]!.type).toBe('sla-escalated');
      expect(first[0]!.data.evidence.level).toBe(1); // not the 50 % reminder as well
      const v = await view(temporal.client, id);
      expect(v.policyVersion).toBe('test-2');
      expect(v.reasons).toEqual(['newly in CISA KEV']);

      // Pushed back out (a KEV entry withdrawn): steps whose new time is ahead are armed again.
      await handle.signal(rescoredSignal, {
        priority: 'Attend',
        slaDue: new Date(firstSeen + 3_600_000).toISOString(),
        reasons: ['withdrawn from KEV'],
        policyVersion: 'test-3',
      });
      const later = await eventually(
        'the re-score',
        () => view(temporal.client, id),
        (x) => x.policyVersion === 'test-3',
      );
      // The scope caps Attend at 8 s too, so the deadline stays firstSeen + 8 s.
      expect(Date.parse(later.slaDue!)).toBe(firstSeen + 8_000);
      // The workflow holds the re-score before its record activity has written the row: wait for it.
      const row = await eventually(
        'the re-scored row',
        async () =>
          (await db.pool.query('select priority, policy_version from exposures where id = $1', [id])).rows[0],
        (r) => r?.policy_version === 'test-3',
      );
      expect(row).toEqual({ priority: 'attend', policy_version: 'test-3' });
      const types = (
        await db.pool.query<{ type: string }>(
          `select type from events where exposure_id = $1 and type = 'rescored'`,
          [id],
        )
      ).rows;
      expect(types).toHaveLength(2);
      await applyDecision(temporal.client, id, {
        kind: 'markFalsePositive',
        actor: { personId: 'lena', via: 'api' },
        reason: 'test done',
      });
      await handle.result();
      await keepHistory(temporal.client, id, 'sla-rescored');
    });
  });

  it("renders the unit's ticket again when a re-score moves its priority, and not for a new policy version alone", async () => {
    await withWorker(async (taskQueue) => {
      const { id } = await oneExposure(taskQueue, 'CVE-2099-2004');
      await applyDecision(temporal.client, id, { kind: 'approve', actor: { personId: 'adam', via: 'api' } });
      const approved = await eventually(
        'the unit ticket',
        () => view(temporal.client, id),
        (x) => x.tickets.length === 1,
      );
      const campaignId = approved.remediationUnitId!;
      const ofUnit = () => log.tickets.filter((t) => t.campaignId === campaignId);
      expect(ofUnit().map((t) => [t.op, t.priority])).toEqual([['create', approved.priority]]);
      const next = approved.priority === 'Act' ? 'Attend' : 'Act';

      const handle = temporal.client.workflow.getHandle(exposureWorkflowId(id));
      await handle.signal(rescoredSignal, {
        priority: next,
        slaDue: new Date(Date.now() + 3_600_000).toISOString(),
        reasons: ['re-scored by the test'],
        policyVersion: 'test-4',
      });
      await eventually(
        'the re-rendered ticket',
        async () => ofUnit(),
        (t) => t.length === 2,
      );
      expect(ofUnit()[1]).toMatchObject({ op: 'update', priority: next, ref: approved.tickets[0] });

      // A new policy version that moves neither priority nor deadline leaves the ticket as it is.
      await handle.signal(rescoredSignal, {
        priority: next,
        slaDue: new Date(Date.now() + 3_600_000).toISOString(),
        reasons: ['re-stamped by the test'],
        policyVersion: 'test-5',
      });
      await eventually(
        'the re-stamp',
        () => view(temporal.client, id),
        (x) => x.policyVersion === 'test-5',
      );
      await applyDecision(temporal.client, id, {
        kind: 'markFalsePositive',
        actor: { personId: 'lena', via: 'api' },
        reason: 'test done',
      });
      await handle.result(); // every activity of the lifecycle has run
      const updated = (
        await db.pool.query<{ reason: string }>(
          `select reason from events where exposure_id = $1 and type = 'ticket-updated' order by id`,
          [id],
        )
      ).rows;
      expect(updated).toHaveLength(1);
      expect(updated[0]!.reason).toContain(`re-scored ${approved.priority} → ${next}`);
      expect(ofUnit().filter((t) => t.op === 'update')).toHaveLength(1);
      await keepHistory(temporal.client, id, 'rescored-ticket-refreshed');
    });
  });
});
