// Decisions through the decision API on the real server, per exposure inside its campaign: each is
// validated (well-formed, authorized for the scope and role, allowed in the exposure's state now) by
// the campaign workflow's update validator, refused with a sentence a person can act on, and
// recorded. Reassigning moves the exposure to its new owner's campaign, exactly once.
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { dispatchChanges } from '../../lifecycle/dispatch.ts';
import { applyDecision, decideCampaign, decideExposures, recordRefusal } from '../../lifecycle/decide.ts';
import { moveExposures } from '../../lifecycle/remediate.ts';
import type { Decision } from '../../domain/exposure.ts';
import { campaignQuery, exposuresQuery } from '../../contracts/campaign.ts';
import type { MoveRequest } from '../../contracts/lifecycle.ts';
import { patchRolloutQuery, rejectPatchUpdate } from '../../contracts/patch.ts';
import {
  campaignOf,
  decisionsOf,
  eventTypes,
  eventually,
  keepHistory,
  keepWorkflowHistory,
  lifecycleConfig,
  newPortLog,
  recordingPorts,
  scheduledActivityInputs,
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

/** One new exposure (its weakness is its campaign's fix), dispatched and waiting for a decision. */
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
  await untilState(temporal.client, db.pool, s.ids[0]!, 'awaiting-decision');
  return s.ids[0]!;
}

/** Close an exposure so its campaign ends (nothing left running after the test). */
async function closeAndEnd(id: string): Promise<void> {
  const { workflowId } = await campaignOf(db.pool, id);
  await applyDecision(temporal.client, db.pool, id, {
    kind: 'markFalsePositive',
    actor: by('lena'),
    reason: 'test done',
  });
  await temporal.client.workflow.getHandle(workflowId).result();
}

describe('decisions on an exposure inside its campaign', () => {
  it('refuses what is malformed, unauthorized or not allowed now, with a reason, and records the refusal', async () => {
    await withWorker(async (taskQueue) => {
      const id = await oneExposure(taskQueue, 'CVE-2099-1001', 'prod', true);
      // Exploited, internet-facing, critical, CVSS 9.8.
      expect((await view(temporal.client, db.pool, id)).priority).toBe('Act');
      const refused = async (d: Decision) => {
        const r = await applyDecision(temporal.client, db.pool, id, d);
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
      expect(await refused({ kind: 'reassign', actor: by('adam'), to: 'olivia' })).toMatch(
        /olivia already owns this exposure/,
      );

      // Allowed in the current state only: once approved, it cannot be approved again.
      expect(
        await applyDecision(temporal.client, db.pool, id, { kind: 'approve', actor: by('olivia') }),
      ).toEqual({ ok: true, state: 'remediating' });
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
        'adam',
      ]);
      // Nothing refused changed anything: one accepted decision on the record.
      expect(await decisionsOf(db.pool, id)).toEqual([{ kind: 'approve', by: 'olivia' }]);
      await closeAndEnd(id);
    });
  });

  it('snoozes, pausing the SLA clock, and asks again when the snooze ends', async () => {
    await withWorker(async (taskQueue) => {
      const id = await oneExposure(taskQueue, 'CVE-2099-1002');
      const dueBefore = Date.parse((await view(temporal.client, db.pool, id)).slaDue!);
      const until = inMs(2_500);
      expect(
        await applyDecision(temporal.client, db.pool, id, {
          kind: 'snooze',
          actor: by('olivia'),
          until,
          reason: 'change freeze',
        }),
      ).toEqual({ ok: true, state: 'snoozed' });
      const snoozed = await view(temporal.client, db.pool, id);
      expect(snoozed.slaPaused).toBe(true);
      expect(snoozed.snoozedUntil).toBe(until);
      // The answer came after the record was written: the row already says snoozed.
      expect(
        (await db.pool.query('select state, sla_paused from exposures where id = $1', [id])).rows[0],
      ).toEqual({ state: 'snoozed', sla_paused: true });
      const back = await untilState(temporal.client, db.pool, id, 'awaiting-decision', 15_000);
      expect(back.slaPaused).toBe(false);
      // The deadline moved by the time spent snoozed.
      expect(Date.parse(back.slaDue!) - dueBefore).toBeGreaterThanOrEqual(2_000);
      const types = await eventually(
        'the owner asked again',
        () => eventTypes(db.pool, id),
        (t) => t.length === 7,
      );
      expect(types).toEqual([
        'triaged',
        'validated',
        'notified',
        'awaiting-decision',
        'snooze',
        'awaiting-decision',
        'notified',
      ]);
      // Asked again in the campaign's thread, not in a new message.
      const { campaignId } = await campaignOf(db.pool, id);
      expect(
        log.notifications.filter((n) => n.campaign.id === campaignId).map((n) => [n.kind, n.thread ?? null]),
      ).toEqual([
        ['decision-request', null],
        ['reminder', `campaign:${campaignId}`],
        ['decision-request', null], // the original, updated in place
      ]);
      const row = (
        await db.pool.query('select state, sla_paused, snoozed_until from exposures where id = $1', [id])
      ).rows[0];
      expect(row).toMatchObject({ state: 'awaiting-decision', sla_paused: false, snoozed_until: null });
      await closeAndEnd(id);
      await keepHistory(temporal.client, db.pool, id, 'campaign-snoozed-and-back');
    });
  });

  it('accepts a risk until its expiry, reminds before it ends, then reopens and asks again', async () => {
    await withWorker(async (taskQueue) => {
      // In scope "bare" (no policy override) the exposure is not Act, so an approver may accept.
      const id = await oneExposure(taskQueue, 'CVE-2099-1003', 'bare');
      const priority = (await view(temporal.client, db.pool, id)).priority;
      expect(priority).not.toBe('Act');
      const expires = inMs(4_000);
      const r = await applyDecision(temporal.client, db.pool, id, {
        kind: 'acceptRisk',
        actor: by('adam'),
        justification: 'compensating WAF rule',
        expires,
      });
      expect(r).toEqual({ ok: true, state: 'risk-accepted' });
      const accepted = await view(temporal.client, db.pool, id);
      expect(accepted.riskAccepted).toEqual({
        by: 'adam',
        until: expires,
        justification: 'compensating WAF rule',
      });
      expect(accepted.slaPaused).toBe(true);
      const row = (
        await db.pool.query('select risk_accepted_by, risk_accepted_until from exposures where id = $1', [id])
      ).rows[0];
      expect(row.risk_accepted_by).toBe('adam');
      expect(row.risk_accepted_until.toISOString()).toBe(expires);
      // The default reminder is 14 days before the end (bare scope), so it is due at once.
      await eventually(
        'the expiry reminder',
        () => eventTypes(db.pool, id),
        (t) => t.includes('acceptance-expiring'),
      );
      const reopened = await untilState(temporal.client, db.pool, id, 'awaiting-decision', 15_000);
      expect(reopened.slaPaused).toBe(false);
      expect(reopened.riskAccepted).toBeUndefined();
      const types = await eventually(
        'the owner asked again',
        () => eventTypes(db.pool, id),
        (t) => t.length === 10,
      );
      // Not urgent in the bare scope: the owner's daily queue lists it ("queued").
      expect(types.slice(4)).toEqual([
        'acceptRisk',
        'acceptance-expiring',
        'queued',
        'reopened',
        'awaiting-decision',
        'queued',
      ]);
      await closeAndEnd(id);
      await keepHistory(temporal.client, db.pool, id, 'campaign-risk-accepted-expired');
    });
  });

  it('marks a false positive, which closes the lifecycle and, with nothing else open, ends the campaign', async () => {
    await withWorker(async (taskQueue) => {
      const id = await oneExposure(taskQueue, 'CVE-2099-1004');
      const { workflowId } = await campaignOf(db.pool, id);
      expect(
        await applyDecision(temporal.client, db.pool, id, {
          kind: 'markFalsePositive',
          actor: by('olivia'),
          reason: 'package not installed, only its docs',
        }),
      ).toEqual({ ok: true, state: 'false-positive' });
      await temporal.client.workflow.getHandle(workflowId).result();
      const after = await applyDecision(temporal.client, db.pool, id, {
        kind: 'approve',
        actor: by('olivia'),
      });
      expect(after.ok).toBe(false);
      if (!after.ok) expect(after.reason).toMatch(/the lifecycle of these exposures is closed/);
      const row = (await db.pool.query('select state, resolved_at from exposures where id = $1', [id]))
        .rows[0];
      expect(row.state).toBe('false-positive');
      expect(row.resolved_at).not.toBeNull();
    });
  });

  it('tells the person when the campaign cannot answer (its worker is down), and the decision is taken once a worker is back', async () => {
    const taskQueue = temporal.taskQueue('decisions-down');
    const worker = () => temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
    const id = await (await worker()).runUntil(oneExposure(taskQueue, 'CVE-2099-1008'));
    // No worker polls the campaign's queue now.
    const answer = (
      await decideExposures(
        temporal.client,
        db.pool,
        [id],
        { kind: 'approve', actor: by('olivia') },
        { deadlineMs: 1_500 },
      )
    ).get(id)!;
    expect(answer).toMatchObject({ ok: false, unconfirmed: true });
    if (!answer.ok)
      expect(answer.reason).toMatch(
        /^not confirmed: the campaign \(campaign-cmp:.*\) did not answer within 1\.5 s/,
      );
    // Temporal held the update it admitted: a worker back takes it, once.
    await (
      await worker()
    ).runUntil(async () => {
      await untilState(temporal.client, db.pool, id, 'remediating');
      // Recorded once (the state shows in the campaign at once; its record follows in the same task).
      await eventually(
        'the approval recorded',
        async () => (await decisionsOf(db.pool, id)).filter((d) => d.kind === 'approve'),
        (approvals) => approvals.length >= 1,
      );
      await closeAndEnd(id);
      expect((await decisionsOf(db.pool, id)).filter((d) => d.kind === 'approve')).toHaveLength(1);
    });
  });

  it('answers a decision at once while its campaign waits for a slow ticket system', async () => {
    let entered = false;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = recordingPorts(log, {
      ticketGate: () => {
        entered = true;
        return gate;
      },
    });
    const taskQueue = temporal.taskQueue('slow-ticket');
    const worker = await temporal.worker({ registry: slow, taskQueue, pool: db.pool, config });
    await worker.runUntil(async () => {
      // Two weaknesses fixed by one upgrade: one campaign.
      const s = await seedExposures(db.pool, {
        scope: 'prod',
        weaknesses: ['CVE-2099-1006', 'CVE-2099-1007'],
        package: { name: `slowticket-${process.pid}-${Date.now()}`, fixedVersion: '2.0' },
      });
      await dispatchChanges(
        testDeps({ pool: db.pool, config, registry: ports }),
        temporal.client,
        s.ids.map((id) => ({ exposureId: id, change: 'new' as const, scanId: s.scanId, at: s.at })),
        { taskQueue },
      );
      for (const id of s.ids) await untilState(temporal.client, db.pool, id, 'awaiting-decision');
      const [approved, snoozed] = s.ids as [string, string];
      const { campaignId, workflowId } = await campaignOf(db.pool, approved);
      expect(
        await applyDecision(temporal.client, db.pool, approved, { kind: 'approve', actor: by('olivia') }),
      ).toEqual({ ok: true, state: 'remediating' });
      await eventually(
        'the ticket system called',
        async () => entered,
        (e) => e,
      );
      // The campaign is waiting for the ticket; a decision on its other exposure is answered anyway,
      // once its record is written.
      const answer = await Promise.race([
        applyDecision(temporal.client, db.pool, snoozed, {
          kind: 'snooze',
          actor: by('olivia'),
          until: inMs(DAY),
        }),
        new Promise((r) => setTimeout(() => r('no answer within 10 s'), 10_000)),
      ]);
      expect(answer).toEqual({ ok: true, state: 'snoozed' });
      expect((await db.pool.query('select state from exposures where id = $1', [snoozed])).rows[0]).toEqual({
        state: 'snoozed',
      });
      expect(log.tickets.filter((t) => t.campaignId === campaignId)).toEqual([]);
      release();
      await eventually(
        'the ticket opened',
        () => eventTypes(db.pool, approved),
        (t) => t.includes('ticket-opened'),
      );
      const rollout = await eventually(
        'the rollout',
        () => view(temporal.client, db.pool, approved),
        (v) => v.patchRolloutId !== undefined,
      );
      await eventually(
        'the rollout waiting',
        () => temporal.client.workflow.getHandle(rollout.patchRolloutId!).query(patchRolloutQuery),
        (r) => r.status === 'awaiting-approval',
      );
      await temporal.client.workflow
        .getHandle(rollout.patchRolloutId!)
        .executeUpdate(rejectPatchUpdate, { args: [{ actor: by('adam') }] });
      await decideCampaign(temporal.client, db.pool, campaignId, {
        kind: 'markFalsePositive',
        actor: by('lena'),
        reason: 'test done',
      });
      await temporal.client.workflow.getHandle(workflowId).result();
    });
  });

  it("reassigns to another person: the exposure moves to the new owner's campaign exactly once, and the new owner is asked", async () => {
    await withWorker(async (taskQueue) => {
      const id = await oneExposure(taskQueue, 'CVE-2099-1005');
      const from = await campaignOf(db.pool, id);
      expect(from.campaignId).toMatch(/^cmp:prod:olivia:/);
      expect(
        await applyDecision(temporal.client, db.pool, id, {
          kind: 'reassign',
          actor: by('olivia'),
          to: 'adam',
          reason: 'his service',
        }),
      ).toEqual({ ok: true, state: 'awaiting-decision' });
      const to = await eventually(
        "the new owner's campaign",
        () => campaignOf(db.pool, id),
        (c) => c.campaignId !== from.campaignId,
      );
      expect(to.campaignId).toMatch(/^cmp:prod:adam:/);
      const moved = await eventually(
        'the exposure held by the new campaign',
        () => view(temporal.client, db.pool, id),
        (v) => v.campaignId === to.campaignId,
      );
      expect(moved).toMatchObject({ owner: 'adam', state: 'awaiting-decision' });
      // The old campaign let go of it (and, holding nothing else, ended).
      await temporal.client.workflow.getHandle(from.workflowId).result();
      const asked = await eventually(
        'the new owner asked',
        async () => log.notifications.filter((n) => n.campaign.id === to.campaignId),
        (n) => n.length === 1,
      );
      expect(asked[0]).toMatchObject({ kind: 'decision-request', to: ['adam'] });

      // The hand-over delivered again (a retried activity): the new campaign keeps the one it has.
      const [handOver] = await scheduledActivityInputs<MoveRequest>(
        temporal.client,
        from.workflowId,
        'moveExposures',
      );
      expect(handOver!.to).toBe('adam');
      await moveExposures(testDeps({ pool: db.pool, config, registry: ports }), temporal.client, handOver!, {
        taskQueue,
      });
      // The new owner now decides as its owner. The answer comes once its turn is recorded, so
      // anything the retried hand-over would have done (record the move, ask again) is done by then.
      expect(
        (
          await applyDecision(temporal.client, db.pool, id, {
            kind: 'snooze',
            actor: by('adam'),
            until: inMs(DAY),
          })
        ).ok,
      ).toBe(true);
      const target = temporal.client.workflow.getHandle(to.workflowId);
      expect(await target.query(campaignQuery)).toMatchObject({ exposures: 1, states: { snoozed: 1 } });
      expect((await target.query(exposuresQuery)).map((e) => e.exposureId)).toEqual([id]);
      expect((await eventTypes(db.pool, id)).filter((t) => t === 'moved')).toHaveLength(1);
      expect(log.notifications.filter((n) => n.campaign.id === to.campaignId)).toHaveLength(1);
      expect(await decisionsOf(db.pool, id)).toEqual([
        { kind: 'reassign', by: 'olivia' },
        { kind: 'snooze', by: 'adam' },
      ]);
      const row = (await db.pool.query('select owner, campaign_id from exposures where id = $1', [id]))
        .rows[0];
      expect(row).toEqual({ owner: 'adam', campaign_id: to.campaignId });
      await keepWorkflowHistory(temporal.client, from.workflowId, 'campaign-reassigned');
      await closeAndEnd(id);
    });
  });
});
