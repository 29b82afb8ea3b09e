// Verification by re-scan, and the paths that close or reopen an exposure inside its campaign: a
// ticket closed by a human starts verification (it never closes the exposure by itself); no evidence
// within the window is "fix not verified" and escalates; a scan still seeing it after the fix sends
// it back; a retired asset closes as retired; a weakness back after resolution starts a new,
// reopened lifecycle in its campaign.
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { dispatchChanges } from '../../lifecycle/dispatch.ts';
import { applyDecision } from '../../lifecycle/decide.ts';
import { campaignQuery, scanChangesSignal, ticketChangedSignal } from '../../contracts/campaign.ts';
import {
  campaignOf,
  eventTypes,
  eventually,
  keepHistory,
  lifecycleConfig,
  newPortLog,
  newScan,
  recordingPorts,
  seedExposures,
  untilState,
  view,
} from './support.ts';
import { testDeps } from '../support/deps.ts';

const log = newPortLog();
const ports = recordingPorts(log);
const config = lifecycleConfig({
  extra: `  - name: manual
    roles: { owner: [olivia], approver: [adam], securityLead: [lena], ciso: [cyrus] }
    tickets: { system: recording }
    scan: { connector: recording }
    lifecycle: { verifyWithin: 3s }`,
});

let db: TestDatabase;
let temporal: TestTemporal;
beforeAll(async () => {
  db = await testDatabase();
  temporal = await testTemporal();
});

const dispatchDeps = () => testDeps({ pool: db.pool, config, registry: ports });
const olivia = { personId: 'olivia', via: 'api' as const };

async function withWorker<T>(fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = temporal.taskQueue('verify');
  const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
  return await worker.runUntil(fn(taskQueue));
}

async function oneExposure(taskQueue: string, scope: string, weakness: string) {
  const s = await seedExposures(db.pool, { scope, weaknesses: [weakness] });
  await dispatchChanges(
    dispatchDeps(),
    temporal.client,
    [{ exposureId: s.ids[0]!, change: 'new', scanId: s.scanId, at: s.at }],
    { taskQueue },
  );
  await untilState(temporal.client, db.pool, s.ids[0]!, 'awaiting-decision');
  const place = await campaignOf(db.pool, s.ids[0]!);
  return { ...s, id: s.ids[0]!, ...place, handle: temporal.client.workflow.getHandle(place.workflowId) };
}

describe('verification of an exposure in its campaign', () => {
  it('verifies a human-closed ticket by re-scan, escalates when no evidence comes, and reopens the ticket when the fix failed', async () => {
    await withWorker(async (taskQueue) => {
      const { id, campaignId, handle } = await oneExposure(taskQueue, 'manual', 'CVE-2099-3001');
      await applyDecision(temporal.client, db.pool, id, { kind: 'approve', actor: olivia });
      const { ticket } = await eventually(
        'the campaign ticket',
        () => handle.query(campaignQuery),
        (c) => c.ticket !== undefined,
      );
      // No patch executor in this scope: the exposure waits for people.
      expect((await view(temporal.client, db.pool, id)).state).toBe('remediating');
      await eventually(
        'the skipped patch on record',
        () => eventTypes(db.pool, id),
        (t) => t.includes('patch-skipped'),
      );

      // A human closes the ticket: verification starts; the exposure is not resolved on their word.
      const closedAt = new Date().toISOString();
      await handle.signal(ticketChangedSignal, {
        ticket: ticket!,
        status: 'done',
        at: closedAt,
        by: 'olivia@jira',
        exposureIds: [id],
      });
      const verifying = await untilState(temporal.client, db.pool, id, 'verifying');
      expect(verifying.fixedAt).toBe(closedAt);
      const firstRescan = await eventually(
        'a targeted re-scan',
        async () => log.rescans.filter((r) => r.weaknessKeys[0] === 'CVE-2099-3001'),
        (r) => r.length === 1,
      );
      expect(firstRescan[0]!.notBefore).toBe(closedAt);

      // No scan within 3 s: "fix not verified", escalated, and the re-scan asked for again.
      await eventually(
        'fix not verified',
        () => eventTypes(db.pool, id),
        (t) => t.includes('fix-not-verified'),
        15_000,
      );
      const v = await view(temporal.client, db.pool, id);
      expect(v.state).toBe('verifying');
      expect(v.unverifiedWindows).toBeGreaterThanOrEqual(1);
      // The owner hears it in the campaign's thread at once; the manager in the next escalation
      // message (the scope gathers escalations for an hour).
      const toOwner = await eventually(
        'the escalation to the owner',
        async () =>
          log.notifications.filter(
            (n) => n.campaign.id === campaignId && n.kind === 'escalation' && n.to.includes('olivia'),
          ),
        (n) => n.length >= 1,
      );
      expect(toOwner[0]!.thread).toBe(`campaign:${campaignId}`);
      expect(toOwner[0]!.lines![0]).toMatch(/CVE-2099-3001 on asset \d+: no scan after the fix of/);
      const gathered = await eventually(
        'the escalation gathered for the manager',
        async () =>
          (
            await db.pool.query<{ line: string; exposure_ids: string[] }>(
              `select line, exposure_ids from escalation_items where audience = 'person:mona' and campaign_id = $1`,
              [campaignId],
            )
          ).rows,
        (r) => r.length >= 1,
      );
      expect(gathered[0]).toMatchObject({
        exposure_ids: [id],
        line: expect.stringContaining('no scan after the fix'),
      });
      await eventually(
        'a second re-scan',
        async () => log.rescans.filter((r) => r.weaknessKeys[0] === 'CVE-2099-3001'),
        (r) => r.length >= 2,
      );
      await eventually(
        'the escalation written on the ticket',
        async () =>
          log.tickets.filter(
            (t) => t.op === 'comment' && t.ref?.key === ticket!.key && t.text?.startsWith('Fix not verified'),
          ),
        (c) => c.length >= 1,
      );

      // The re-scan still sees it: back to remediating, and the ticket is reopened.
      const scan = await newScan(db.pool, 'manual', new Date(Date.parse(closedAt) + 1_000));
      await handle.signal(scanChangesSignal, [{ exposureId: id, kind: 'observed', ...scan }]);
      const back = await untilState(temporal.client, db.pool, id, 'remediating');
      expect(back.fixedAt).toBeUndefined();
      await eventually(
        'the ticket reopened',
        async () => log.tickets.filter((t) => t.op === 'reopen' && t.ref?.key === ticket!.key),
        (r) => r.length === 1,
      );
      expect(await eventTypes(db.pool, id)).toContain('fix-failed');

      // Fixed for real this time: closed, then a later scan proves it gone.
      const closedAgain = new Date(Date.now() + 2_000).toISOString();
      await handle.signal(ticketChangedSignal, {
        ticket: ticket!,
        status: 'done',
        at: closedAgain,
        exposureIds: [id],
      });
      await untilState(temporal.client, db.pool, id, 'verifying');
      const proof = await newScan(db.pool, 'manual', new Date(Date.parse(closedAgain) + 1_000));
      await handle.signal(scanChangesSignal, [{ exposureId: id, kind: 'absent', ...proof }]);
      await handle.result();
      const final = await view(temporal.client, db.pool, id);
      expect(final.state).toBe('resolved');
      expect(final.verifiedBy).toEqual({ scanId: proof.scanId, at: proof.at });
      await eventually(
        'the ticket closed',
        async () => log.tickets.filter((t) => t.op === 'close' && t.ref?.key === ticket!.key),
        (r) => r.length === 1,
      );
      const row = (
        await db.pool.query(
          'select state, fixed_at, verified_at, exposure_seconds from exposures where id = $1',
          [id],
        )
      ).rows[0];
      expect(row.state).toBe('resolved');
      expect(row.fixed_at.toISOString()).toBe(closedAgain);
      expect(row.verified_at.toISOString()).toBe(proof.at);
      expect(Number(row.exposure_seconds)).toBeGreaterThan(0);
      await keepHistory(temporal.client, db.pool, id, 'campaign-human-close-verified');
    });
  });

  it('says plainly what it cannot do in a scope with nothing configured, and still resolves on scan evidence', async () => {
    await withWorker(async (taskQueue) => {
      const { id, handle } = await oneExposure(taskQueue, 'bare', 'CVE-2099-3002');
      await applyDecision(temporal.client, db.pool, id, { kind: 'approve', actor: olivia });
      await eventually(
        'the no-op records',
        () => eventTypes(db.pool, id),
        (t) => t.includes('patch-skipped'),
      );
      const { rows } = await db.pool.query<{ type: string; reason: string }>(
        `select type, reason from events where exposure_id = $1 and type in ('ticket-skipped', 'patch-skipped') order by id`,
        [id],
      );
      expect(rows).toEqual([
        {
          type: 'ticket-skipped',
          reason: 'no ticket system configured for scope bare (scopes[].tickets.system)',
        },
        {
          type: 'patch-skipped',
          reason:
            "no patch executor configured for scope bare (scopes[].patch.executor): waiting for the owner's fix (ticket) or a scan showing it gone",
        },
      ]);
      expect((await view(temporal.client, db.pool, id)).state).toBe('remediating');
      const scan = await newScan(db.pool, 'bare', new Date(Date.now() + 1_000));
      await handle.signal(scanChangesSignal, [{ exposureId: id, kind: 'absent', ...scan }]);
      await handle.result();
      expect((await view(temporal.client, db.pool, id)).state).toBe('resolved');
      expect((await eventTypes(db.pool, id)).slice(-3)).toEqual(['verifying', 'resolved', 'ticket-skipped']);
      // One remediation round and one close-out, nothing else scheduled; and the SLA wake-up timer
      // started at admission was kept through the decision and the scan (cancelled once, at the end).
      const history = await handle.fetchHistory();
      const scheduled = (history.events ?? []).flatMap((e) =>
        e.activityTaskScheduledEventAttributes?.activityType?.name
          ? [e.activityTaskScheduledEventAttributes.activityType.name]
          : [],
      );
      expect(scheduled).toEqual(['remediateCampaign', 'updateCampaignTicket']);
      const timers = (history.events ?? []).filter((e) => e.timerStartedEventAttributes).length;
      const cancelled = (history.events ?? []).filter((e) => e.timerCanceledEventAttributes).length;
      expect({ timers, cancelled }).toEqual({ timers: 1, cancelled: 1 });
      await keepHistory(temporal.client, db.pool, id, 'campaign-bare-scope');
    });
  });

  it('closes as retired when the asset leaves the inventory, not as fixed', async () => {
    await withWorker(async (taskQueue) => {
      const { id, scanId, at, handle } = await oneExposure(taskQueue, 'prod', 'CVE-2099-3003');
      // Ingest closes the row as retired itself; the dispatcher still tells the running campaign.
      await db.pool.query(`update exposures set state = 'retired' where id = $1`, [id]);
      const r = await dispatchChanges(
        dispatchDeps(),
        temporal.client,
        [{ exposureId: id, change: 'retired', scanId: scanId + 1000, at }],
        { taskQueue },
      );
      expect(r.signalled).toBe(1);
      await handle.result();
      const final = await view(temporal.client, db.pool, id);
      expect(final.state).toBe('retired');
      expect(final.verifiedBy).toBeUndefined();
      const row = (await db.pool.query('select state, exposure_seconds from exposures where id = $1', [id]))
        .rows[0];
      expect(row).toEqual({ state: 'retired', exposure_seconds: null });
      expect((await eventTypes(db.pool, id)).slice(4)).toEqual(['retired', 'ticket-skipped']);
    });
  });

  it('reopens an exposure whose weakness comes back after it was resolved, in a new lifecycle in its campaign', async () => {
    await withWorker(async (taskQueue) => {
      const { id, campaignId, handle } = await oneExposure(taskQueue, 'prod', 'CVE-2099-3004');
      const gone = await newScan(db.pool, 'prod', new Date(Date.now() + 1_000));
      let r = await dispatchChanges(
        dispatchDeps(),
        temporal.client,
        [{ exposureId: id, change: 'gone', scanId: gone.scanId, at: gone.at }],
        { taskQueue },
      );
      expect(r.signalled).toBe(1);
      await handle.result();
      const first = await view(temporal.client, db.pool, id);
      expect(first.state).toBe('resolved');
      expect(first.verifiedBy).toEqual({ scanId: gone.scanId, at: gone.at });

      // The same scan's changes dispatched again (a retried activity) start nothing.
      r = await dispatchChanges(
        dispatchDeps(),
        temporal.client,
        [{ exposureId: id, change: 'gone', scanId: gone.scanId, at: gone.at }],
        { taskQueue },
      );
      expect(r).toMatchObject({ started: 0, signalled: 0, skipped: 1 });

      const back = await newScan(db.pool, 'prod', new Date(Date.now() + 2_000));
      r = await dispatchChanges(
        dispatchDeps(),
        temporal.client,
        [{ exposureId: id, change: 'reappeared', scanId: back.scanId, at: back.at }],
        { taskQueue },
      );
      expect(r).toMatchObject({ started: 1, admitted: 1 });
      const again = await untilState(temporal.client, db.pool, id, 'awaiting-decision');
      expect(again.campaignId).toBe(campaignId);
      expect(again.verifiedBy).toBeUndefined();
      expect(again.escalationLevel).toBe(-1);
      const types = await eventually(
        'the owner asked again',
        () => eventTypes(db.pool, id),
        (t) => t.at(-1) === 'notified',
      );
      expect(types.slice(types.lastIndexOf('triaged'))).toEqual([
        'triaged',
        'reopened',
        'validated',
        'awaiting-decision',
        'notified',
      ]);
      const row = (
        await db.pool.query('select state, resolved_at, verified_at from exposures where id = $1', [id])
      ).rows[0];
      expect(row).toEqual({ state: 'awaiting-decision', resolved_at: null, verified_at: null });
      await applyDecision(temporal.client, db.pool, id, {
        kind: 'markFalsePositive',
        actor: olivia,
        reason: 'test done',
      });
      await handle.result();
      await keepHistory(temporal.client, db.pool, id, 'campaign-reopened');
    });
  });
});
