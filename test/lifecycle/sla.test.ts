// SLA timers and the escalation ladder of each exposure inside its campaign, on the real Temporal dev
// server. The scope's SLA windows are configured in seconds (lifecycle.sla caps the policy's days),
// so a ladder that spans days in production runs here in about ten seconds of real workflow time,
// through the same timer. The clock starts when ctem learned of the exposure (or when the scope's
// onboarding grace ends), never at the scanner's first sighting.
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { dispatchChanges } from '../../lifecycle/dispatch.ts';
import { applyDecision } from '../../lifecycle/decide.ts';
import { campaignQuery, rescoredSignal, type Rescore } from '../../contracts/campaign.ts';
import {
  campaignOf,
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
const roles = '{ owner: [olivia], approver: [adam], securityLead: [lena], ciso: [cyrus] }';
const hour = '{ act: 1h, attend: 1h, track*: 1h, track: 1h }';
const config = lifecycleConfig({
  actWindow: '8s',
  ladder: `      ladder:
        - { at: 50%, notify: [owner] }
        - { at: 100%, notify: [owner, channel, manager] }
        - { after: 3s, notify: [ciso] }`,
  extra: `  - name: backlog
    roles: ${roles}
    lifecycle: { sla: ${hour} }
  - name: onboarding
    roles: ${roles}
    lifecycle: { sla: ${hour}, onboardingGrace: 30d }
  - name: onboarded
    roles: ${roles}
    lifecycle: { sla: ${hour}, onboardingGrace: 30d }`,
});

let db: TestDatabase;
let temporal: TestTemporal;
beforeAll(async () => {
  db = await testDatabase();
  temporal = await testTemporal();
});

const lena = { personId: 'lena', via: 'api' as const };
const DAY = 86_400_000;

async function withWorker<T>(fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = temporal.taskQueue('sla');
  const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
  return await worker.runUntil(fn(taskQueue));
}

/** A new exposure dispatched into its campaign; `slaStart` is when its clock started. */
async function oneExposure(taskQueue: string, weakness: string, scope = 'prod', firstSeen?: Date) {
  const s = await seedExposures(db.pool, {
    scope,
    weaknesses: [weakness],
    ...(firstSeen ? { firstSeen } : {}),
  });
  const id = s.ids[0]!;
  await dispatchChanges(
    testDeps({ pool: db.pool, config, registry: ports }),
    temporal.client,
    [{ exposureId: id, change: 'new', scanId: s.scanId, at: s.at }],
    { taskQueue },
  );
  const v = await untilState(temporal.client, db.pool, id, 'awaiting-decision');
  return { id, slaStart: Date.parse(v.slaStart), ...(await campaignOf(db.pool, id)) };
}

async function rescore(workflowId: string, r: Rescore): Promise<void> {
  await temporal.client.workflow.getHandle(workflowId).signal(rescoredSignal, [r]);
}

/** Close the exposure, so its campaign ends. */
async function closeAndEnd(id: string, workflowId: string): Promise<void> {
  await applyDecision(temporal.client, db.pool, id, {
    kind: 'markFalsePositive',
    actor: lena,
    reason: 'test done',
  });
  await temporal.client.workflow.getHandle(workflowId).result();
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

describe('the SLA escalation ladder of an exposure in its campaign', () => {
  it('reminds the owner at 50 %, escalates to team channel and manager at 100 %, to the CISO after the grace period', async () => {
    await withWorker(async (taskQueue) => {
      const { id, slaStart, campaignId, workflowId } = await oneExposure(taskQueue, 'CVE-2099-2001');
      const v0 = await view(temporal.client, db.pool, id);
      expect(Date.parse(v0.slaDue!) - slaStart).toBe(8_000);

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
      const offsets = events.map((e) => e.at.getTime() - slaStart);
      expect(offsets[0]).toBeGreaterThanOrEqual(4_000);
      expect(offsets[1]).toBeGreaterThanOrEqual(8_000);
      expect(offsets[2]).toBeGreaterThanOrEqual(11_000);

      // Who was reached at each level: the owner in the campaign's thread, the others at once (the
      // scope's escalation window is 0).
      const sent = await eventually(
        'the messages',
        async () =>
          log.notifications.filter((n) => n.campaign.id === campaignId && n.kind !== 'decision-request'),
        (n) => n.length === 4,
      );
      expect(sent.map((n) => [n.kind, n.level, n.to, n.channels?.slack, n.thread ?? null])).toEqual([
        ['reminder', 0, ['olivia'], undefined, `campaign:${campaignId}`],
        ['escalation', 1, ['olivia'], undefined, `campaign:${campaignId}`],
        ['escalation', 1, ['mona'], 'C0PROD', null],
        ['escalation', 2, ['cyrus'], undefined, null],
      ]);
      expect(sent[2]!.lines).toEqual([expect.stringContaining(`CVE-2099-2001 on asset`)]);

      // The breach is recorded once, in the workflow and on the row.
      const v = await view(temporal.client, db.pool, id);
      expect(v.escalationLevel).toBe(2);
      expect(v.slaBreachedAt).toBeDefined();
      const row = (
        await db.pool.query('select escalation_level, sla_breached_at from exposures where id = $1', [id])
      ).rows[0];
      expect(row.escalation_level).toBe(2);
      expect(row.sla_breached_at.toISOString()).toBe(v.slaBreachedAt);
      // The ladder is spent: nothing more to wake up for. One timer per step, no busy waiting.
      const handle = temporal.client.workflow.getHandle(workflowId);
      expect((await handle.query(campaignQuery)).wakeAt).toBeUndefined();
      const history = await handle.fetchHistory();
      expect((history.events ?? []).filter((e) => e.timerStartedEventAttributes)).toHaveLength(3);
      await closeAndEnd(id, workflowId);
      await keepHistory(temporal.client, db.pool, id, 'campaign-sla-ladder');
    });
  });

  it('pauses the clock while snoozed: no reminder during the snooze, the ladder shifted by its length', async () => {
    await withWorker(async (taskQueue) => {
      const { id, slaStart, workflowId } = await oneExposure(taskQueue, 'CVE-2099-2002');
      const until = new Date(slaStart + 6_000).toISOString();
      expect(
        (await applyDecision(temporal.client, db.pool, id, { kind: 'snooze', actor: lena, until })).ok,
      ).toBe(true);
      const snoozedAt = (
        await db.pool.query<{ at: Date }>(
          `select at from events where exposure_id = $1 and type = 'snooze'`,
          [id],
        )
      ).rows[0]!.at.getTime();
      const events = await eventually(
        'the reminder after the snooze',
        () => slaEvents(id),
        (e) => e.length >= 1,
        30_000,
      );
      // Paused from snoozedAt to until: the 50 % point (start + 4 s) moves by that much.
      const expected = slaStart + 4_000 + (Date.parse(until) - snoozedAt);
      expect(events[0]!.type).toBe('sla-reminder');
      expect(events[0]!.at.getTime()).toBeGreaterThanOrEqual(expected - 50);
      expect(events[0]!.at.getTime()).toBeGreaterThanOrEqual(Date.parse(until));
      const v = await view(temporal.client, db.pool, id);
      // Paused until the snooze actually ended (its timer fires at `until` or a little after).
      const shift = Date.parse(v.slaDue!) - (slaStart + 8_000);
      expect(shift).toBeGreaterThanOrEqual(Date.parse(until) - snoozedAt);
      expect(shift).toBeLessThan(Date.parse(until) - snoozedAt + 2_000);
      await closeAndEnd(id, workflowId);
    });
  });

  it('recomputes the ladder on a re-score: a deadline pulled into the past escalates at once at the right level only', async () => {
    await withWorker(async (taskQueue) => {
      const { id, slaStart, workflowId } = await oneExposure(taskQueue, 'CVE-2099-2003');
      await rescore(workflowId, {
        exposureId: id,
        priority: 'Act',
        slaDue: new Date(slaStart + 500).toISOString(),
        policyVersion: 'test-2',
      });
      const first = await eventually(
        'the escalation',
        () => slaEvents(id),
        (e) => e.length >= 1,
      );
      expect(first[0]!.type).toBe('sla-escalated');
      expect(first[0]!.data.evidence.level).toBe(1); // not the 50 % reminder as well
      const v = await view(temporal.client, db.pool, id);
      expect(v.policyVersion).toBe('test-2');
      expect(v.priority).toBe('Act');

      // Pushed back out (a KEV entry withdrawn): steps whose new time is ahead are armed again.
      await rescore(workflowId, {
        exposureId: id,
        priority: 'Attend',
        slaDue: new Date(slaStart + 3_600_000).toISOString(),
        policyVersion: 'test-3',
      });
      const later = await eventually(
        'the re-score',
        () => view(temporal.client, db.pool, id),
        (x) => x.policyVersion === 'test-3',
      );
      // The scope caps Attend at 8 s too, so the deadline stays start + 8 s.
      expect(Date.parse(later.slaDue!)).toBe(slaStart + 8_000);
      // The workflow holds the re-score before its record is written: wait for the row.
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
      await closeAndEnd(id, workflowId);
    });
  });

  it("renders the campaign's ticket again when a re-score moves its priority, and not for a new policy version alone", async () => {
    await withWorker(async (taskQueue) => {
      const { id, campaignId, workflowId } = await oneExposure(taskQueue, 'CVE-2099-2004');
      await applyDecision(temporal.client, db.pool, id, {
        kind: 'approve',
        actor: { personId: 'adam', via: 'api' },
      });
      const ofCampaign = () => log.tickets.filter((t) => t.campaignId === campaignId);
      const opened = await eventually(
        'the campaign ticket',
        async () => ofCampaign(),
        (t) => t.length === 1,
      );
      const approved = await view(temporal.client, db.pool, id);
      expect(opened.map((t) => [t.op, t.priority])).toEqual([['create', approved.priority]]);
      const next = approved.priority === 'Act' ? 'Attend' : 'Act';

      await rescore(workflowId, {
        exposureId: id,
        priority: next,
        slaDue: new Date(Date.now() + 3_600_000).toISOString(),
        policyVersion: 'test-4',
      });
      await eventually(
        'the re-rendered ticket',
        async () => ofCampaign(),
        (t) => t.length === 2,
      );
      expect(ofCampaign()[1]).toMatchObject({ op: 'update', priority: next, ref: opened[0]!.ref });

      // A new policy version that moves neither priority nor deadline leaves the ticket as it is.
      await rescore(workflowId, {
        exposureId: id,
        priority: next,
        slaDue: new Date(Date.now() + 3_600_000).toISOString(),
        policyVersion: 'test-5',
      });
      await eventually(
        'the re-stamp',
        () => view(temporal.client, db.pool, id),
        (x) => x.policyVersion === 'test-5',
      );
      await closeAndEnd(id, workflowId); // every activity of the campaign has run
      const updated = (
        await db.pool.query<{ reason: string }>(
          `select reason from events where exposure_id = $1 and type = 'ticket-updated' order by id`,
          [id],
        )
      ).rows;
      expect(updated).toHaveLength(1);
      expect(updated[0]!.reason).toContain(`re-scored ${approved.priority} → ${next}`);
      expect(ofCampaign().filter((t) => t.op === 'update')).toHaveLength(1);
      await keepHistory(temporal.client, db.pool, id, 'campaign-rescored-ticket-refreshed');
    });
  });
});

describe('when the SLA clock starts', () => {
  it('at learned_at: an exposure a scanner first saw in 2021 is not overdue on arrival, and nothing escalates', async () => {
    await withWorker(async (taskQueue) => {
      const before = Date.now();
      const { id, slaStart, workflowId } = await oneExposure(
        taskQueue,
        'CVE-2099-2005',
        'backlog',
        new Date('2021-03-01T00:00:00Z'),
      );
      const { rows } = await db.pool.query<{
        learned_at: Date;
        sla_start: Date;
        sla_due: Date;
        first_seen: Date;
      }>('select learned_at, sla_start, sla_due, first_seen from exposures where id = $1', [id]);
      const row = rows[0]!;
      expect(row.first_seen.toISOString()).toBe('2021-03-01T00:00:00.000Z');
      expect(row.learned_at.getTime()).toBeGreaterThanOrEqual(before - 1_000);
      expect(slaStart).toBe(row.learned_at.getTime());
      expect(row.sla_start.getTime()).toBe(slaStart);
      // Due an hour (the scope's window) after ctem learned of it, not in 2021.
      const v = await view(temporal.client, db.pool, id);
      expect(v.firstSeen).toBe('2021-03-01T00:00:00.000Z');
      expect(Date.parse(v.slaDue!)).toBe(slaStart + 3_600_000);
      expect(row.sla_due.getTime()).toBe(slaStart + 3_600_000);
      // The campaign sleeps until the 50 % reminder, half an hour away; nothing has fired.
      const campaign = await temporal.client.workflow.getHandle(workflowId).query(campaignQuery);
      expect(Date.parse(campaign.wakeAt!)).toBe(slaStart + 1_800_000);
      await new Promise((r) => setTimeout(r, 1_000));
      expect(await slaEvents(id)).toEqual([]);
      expect((await view(temporal.client, db.pool, id)).escalationLevel).toBe(-1);
      await closeAndEnd(id, workflowId);
    });
  });

  it("at the end of the scope's onboarding grace for what ctem learns while the scope is onboarding", async () => {
    await withWorker(async (taskQueue) => {
      const first = await oneExposure(taskQueue, 'CVE-2099-2006', 'onboarding');
      const learned = async (id: string) =>
        (
          await db.pool.query<{ l: Date }>('select learned_at as l from exposures where id = $1', [id])
        ).rows[0]!.l.getTime();
      const onboardingStarted = await learned(first.id);
      expect(first.slaStart).toBe(onboardingStarted + 30 * DAY);
      expect(Date.parse((await view(temporal.client, db.pool, first.id)).slaDue!)).toBe(
        first.slaStart + 3_600_000,
      );
      // Learned later during the same onboarding: the same start, the end of the grace.
      const second = await oneExposure(taskQueue, 'CVE-2099-2007', 'onboarding');
      expect(await learned(second.id)).toBeGreaterThan(onboardingStarted);
      expect(second.slaStart).toBe(onboardingStarted + 30 * DAY);
      const reasons = (
        await db.pool.query<{ reasons: string[] }>('select reasons from exposures where id = $1', [second.id])
      ).rows[0]!.reasons;
      expect(reasons.join(' ')).toContain("scope onboarding's onboarding grace");

      // A scope whose onboarding began 31 days ago: a new exposure's clock starts when it is learned.
      const old = await seedExposures(db.pool, { scope: 'onboarded', weaknesses: ['CVE-2099-2008'] });
      await db.pool.query(`update exposures set learned_at = now() - interval '31 days' where id = $1`, [
        old.ids[0],
      ]);
      const fresh = await oneExposure(taskQueue, 'CVE-2099-2009', 'onboarded');
      expect(fresh.slaStart).toBe(await learned(fresh.id));
      for (const e of [first, second, fresh]) await closeAndEnd(e.id, e.workflowId);
    });
  });
});
