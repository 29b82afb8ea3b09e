// What campaigns add to the per-exposure lifecycle, on the real Temporal dev server and PostgreSQL:
// a decision for a whole campaign with an exception for one of its exposures; a campaign larger than
// one workflow holds, split over shards that a decision reaches all of; and a backlog import that
// files silently and sends each owner one summary.
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { dispatchChanges, type DispatchOptions } from '../../lifecycle/dispatch.ts';
import { applyDecision, decideCampaign, decideExposures } from '../../lifecycle/decide.ts';
import { campaignQuery, campaignWorkflowId } from '../../contracts/campaign.ts';
import { patchRolloutQuery, rejectPatchUpdate } from '../../contracts/patch.ts';
import {
  campaignOf,
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
  extra: `  - name: ops
    roles: { owner: [adam], approver: [lena], securityLead: [lena], ciso: [cyrus] }
    notifications: { urgent: { priority: [Act, Attend, Track*, Track] } }
  - name: fresh
    roles: { owner: [adam], approver: [lena], securityLead: [lena], ciso: [cyrus] }
    notifications: { urgent: { priority: [Act, Attend, Track*, Track] } }
    lifecycle: { onboardingBaseline: true }`,
});

let db: TestDatabase;
let temporal: TestTemporal;
beforeAll(async () => {
  db = await testDatabase();
  temporal = await testTemporal();
});

const by = (personId: string) => ({ personId, via: 'api' as const });
/** A package of this test run only: its campaign's workflow id is this test's own. */
const uniquePackage = (name: string) => ({
  name: `${name}-${randomBytes(4).toString('hex')}`,
  fixedVersion: '2.0',
});

async function withWorker<T>(fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = temporal.taskQueue('campaigns');
  const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
  return await worker.runUntil(fn(taskQueue));
}

/** One weakness fixed by the same package on `hosts` assets, found by one scan. */
async function onHosts(
  scope: string,
  hosts: number,
  pkg: { name: string; fixedVersion: string },
  weakness: string,
) {
  const scan = await newScan(db.pool, scope);
  const seeded = [];
  for (let i = 0; i < hosts; i++)
    seeded.push(
      await seedExposures(db.pool, {
        scope,
        weaknesses: [weakness],
        package: pkg,
        scanId: scan.scanId,
        firstSeen: new Date(scan.at),
      }),
    );
  return { ...scan, ids: seeded.map((s) => s.ids[0]!), assetIds: seeded.map((s) => s.assetId) };
}

async function dispatchNew(
  taskQueue: string,
  scans: { ids: string[]; scanId: number; at: string }[],
  opts: Partial<DispatchOptions> = {},
) {
  return await dispatchChanges(
    testDeps({ pool: db.pool, config, registry: ports }),
    temporal.client,
    scans.flatMap((s) =>
      s.ids.map((exposureId) => ({ exposureId, change: 'new' as const, scanId: s.scanId, at: s.at })),
    ),
    { taskQueue, ...opts },
  );
}

/** Reject a waiting rollout (nothing to patch after the test) and close every exposure of the campaign. */
async function endCampaign(campaignId: string, rollouts: string[] = []): Promise<void> {
  for (const id of rollouts) {
    const rollout = temporal.client.workflow.getHandle(id);
    await eventually(
      `rollout ${id} waiting`,
      () => rollout.query(patchRolloutQuery),
      (r) => r.status === 'awaiting-approval',
    );
    await rollout.executeUpdate(rejectPatchUpdate, { args: [{ actor: by('adam'), comment: 'test over' }] });
  }
  const shards = (
    await db.pool.query<{ shards: number }>('select shards from campaigns where id = $1', [campaignId])
  ).rows[0]!.shards;
  await decideCampaign(temporal.client, db.pool, campaignId, {
    kind: 'markFalsePositive',
    actor: by('lena'),
    reason: 'test over',
  });
  for (let shard = 1; shard <= shards; shard++)
    await temporal.client.workflow.getHandle(campaignWorkflowId(campaignId, shard)).result();
}

describe('campaigns', () => {
  it('takes a decision for the whole campaign with an exception: the risk of one exposure accepted, the rest approved', async () => {
    await withWorker(async (taskQueue) => {
      const seeded = await onHosts('prod', 3, uniquePackage('libexcept'), 'CVE-2099-8001');
      await dispatchNew(taskQueue, [seeded]);
      for (const id of seeded.ids) await untilState(temporal.client, db.pool, id, 'awaiting-decision');
      const [kept, ...fixed] = seeded.ids as [string, string, string];
      const { campaignId, workflowId } = await campaignOf(db.pool, kept);

      // The exception first: the risk on one host is accepted by the security lead, until next month.
      const expires = new Date(Date.now() + 30 * 86_400_000).toISOString();
      expect(
        await applyDecision(temporal.client, db.pool, kept, {
          kind: 'acceptRisk',
          actor: by('lena'),
          justification: 'isolated lab host, replaced in March',
          expires,
        }),
      ).toEqual({ ok: true, state: 'risk-accepted' });
      // Then the campaign is approved: it applies to the exposures waiting for a decision only.
      const approved = await decideCampaign(temporal.client, db.pool, campaignId, {
        kind: 'approve',
        actor: by('olivia'),
      });
      expect(approved.applied.map((a) => [a.exposureId, a.state]).sort()).toEqual(
        fixed.sort().map((id) => [id, 'remediating']),
      );
      expect(approved.refused).toEqual([]);
      expect(await temporal.client.workflow.getHandle(workflowId).query(campaignQuery)).toMatchObject({
        exposures: 3,
        states: { 'risk-accepted': 1, remediating: 2 },
      });
      const accepted = await view(temporal.client, db.pool, kept);
      expect(accepted).toMatchObject({ state: 'risk-accepted', slaPaused: true });
      expect(accepted.riskAccepted).toMatchObject({ by: 'lena', until: expires });
      // Asked for the one exposure by name, the approval is refused with the reason.
      const refused = await applyDecision(temporal.client, db.pool, kept, {
        kind: 'approve',
        actor: by('olivia'),
      });
      expect(refused).toEqual({
        ok: false,
        reason: expect.stringMatching(/^the exposure is risk-accepted; approve is allowed only when/),
      });

      // The round's ticket and rollout cover the approved exposures' hosts, not the accepted one's.
      const { patchRolloutId } = await eventually(
        'the rollout',
        () => view(temporal.client, db.pool, fixed[0]!),
        (v) => v.patchRolloutId !== undefined,
      );
      const waiting = await eventually(
        'the rollout asking for approval',
        () => temporal.client.workflow.getHandle(patchRolloutId!).query(patchRolloutQuery),
        (r) => r.status === 'awaiting-approval',
      );
      expect(waiting.hosts).toHaveLength(2);
      const { rows } = await db.pool.query<{ exposure_ids: string[] }>(
        'select exposure_ids from patch_rollouts where id = $1',
        [patchRolloutId],
      );
      expect(rows[0]!.exposure_ids.sort()).toEqual(fixed.sort());
      expect(log.tickets.filter((t) => t.campaignId === campaignId && t.op === 'create')).toHaveLength(1);
      expect((await view(temporal.client, db.pool, kept)).patchRolloutId).toBeUndefined();

      // A decision naming exposures of two campaigns goes to each campaign once, and an exposure a
      // campaign does not hold is refused by name.
      const other = await onHosts('prod', 1, uniquePackage('libother'), 'CVE-2099-8002');
      await dispatchNew(taskQueue, [other]);
      await untilState(temporal.client, db.pool, other.ids[0]!, 'awaiting-decision');
      const snoozed = await decideExposures(
        temporal.client,
        db.pool,
        [kept, other.ids[0]!, '1:CVE-0000-0000'],
        {
          kind: 'snooze',
          actor: by('olivia'),
          until: new Date(Date.now() + 86_400_000).toISOString(),
        },
      );
      expect(snoozed.get(other.ids[0]!)).toEqual({ ok: true, state: 'snoozed' });
      expect(snoozed.get(kept)).toEqual({
        ok: false,
        reason: expect.stringMatching(/the exposure is risk-accepted/),
      });
      expect(snoozed.get('1:CVE-0000-0000')).toEqual({
        ok: false,
        reason: expect.stringMatching(/has no open lifecycle/),
      });

      await endCampaign(campaignId, [patchRolloutId!]);
      await endCampaign((await campaignOf(db.pool, other.ids[0]!)).campaignId);
    });
  });

  it('splits a campaign larger than a workflow holds over shards, and a campaign decision reaches every shard', async () => {
    await withWorker(async (taskQueue) => {
      const pkg = uniquePackage('libshard');
      const seeded = await onHosts('prod', 3, pkg, 'CVE-2099-8003');
      const r = await dispatchNew(taskQueue, [seeded], { shardCap: 2 });
      expect(r).toMatchObject({ started: 2, admitted: 3, asked: 1 });
      for (const id of seeded.ids) await untilState(temporal.client, db.pool, id, 'awaiting-decision');
      const { campaignId } = await campaignOf(db.pool, seeded.ids[0]!);
      const workflows = await Promise.all(
        seeded.ids.map(async (id) => (await campaignOf(db.pool, id)).workflowId),
      );
      expect(workflows.sort()).toEqual([
        campaignWorkflowId(campaignId),
        campaignWorkflowId(campaignId),
        `campaign-${campaignId}~2`,
      ]);
      const shard = (n: number) => temporal.client.workflow.getHandle(campaignWorkflowId(campaignId, n));
      expect(await shard(1).query(campaignQuery)).toMatchObject({ shard: 1, exposures: 2 });
      expect(await shard(2).query(campaignQuery)).toMatchObject({ shard: 2, exposures: 1 });
      expect(
        (await db.pool.query('select shards from campaigns where id = $1', [campaignId])).rows[0],
      ).toEqual({
        shards: 2,
      });
      // The owner is asked once for the whole campaign, all three exposures listed.
      const requests = log.notifications.filter(
        (n) => n.campaign.id === campaignId && n.kind === 'decision-request',
      );
      expect(requests).toHaveLength(1);
      expect(requests[0]!.campaign.totals).toMatchObject({ exposures: 3, assets: 3 });

      // A later scan finds one more host: it joins the shard with room, which is running (told).
      const later = await onHosts('prod', 1, pkg, 'CVE-2099-8003');
      const joined = await dispatchNew(taskQueue, [later], { shardCap: 2 });
      expect(joined).toMatchObject({ started: 0, signalled: 1, admitted: 1 });
      await untilState(temporal.client, db.pool, later.ids[0]!, 'awaiting-decision');
      expect((await campaignOf(db.pool, later.ids[0]!)).workflowId).toBe(`campaign-${campaignId}~2`);

      // One decision for the campaign: every exposure of both shards approved; one ticket for the
      // campaign, one rollout per shard.
      const approved = await decideCampaign(temporal.client, db.pool, campaignId, {
        kind: 'approve',
        actor: by('olivia'),
      });
      expect(approved.applied.map((a) => a.exposureId).sort()).toEqual([...seeded.ids, ...later.ids].sort());
      const rollouts = new Set<string>();
      for (const id of [...seeded.ids, ...later.ids])
        rollouts.add(
          (
            await eventually(
              'the rollout',
              () => view(temporal.client, db.pool, id),
              (v) => v.patchRolloutId !== undefined,
            )
          ).patchRolloutId!,
        );
      expect([...rollouts].sort()).toEqual([`patch-${campaignId}-r1`, `patch-${campaignId}~2-r1`]);
      await eventually(
        'the ticket of the campaign',
        async () => log.tickets.filter((t) => t.campaignId === campaignId),
        (t) => t.length === 2,
      );
      expect(log.tickets.filter((t) => t.campaignId === campaignId).map((t) => t.op)).toEqual([
        'create',
        'update',
      ]);
      await endCampaign(campaignId, [...rollouts]);
    });
  });

  it('starts a campaign again after its workflow ended: the new generation rolls out under new ids', async () => {
    await withWorker(async (taskQueue) => {
      const pkg = uniquePackage('libagain');
      const first = await onHosts('prod', 1, pkg, 'CVE-2099-8009');
      await dispatchNew(taskQueue, [first]);
      await untilState(temporal.client, db.pool, first.ids[0]!, 'awaiting-decision');
      const { campaignId } = await campaignOf(db.pool, first.ids[0]!);
      await decideCampaign(temporal.client, db.pool, campaignId, { kind: 'approve', actor: by('olivia') });
      const before = await eventually(
        'the first rollout',
        () => view(temporal.client, db.pool, first.ids[0]!),
        (v) => v.patchRolloutId !== undefined,
      );
      expect(before.patchRolloutId).toBe(`patch-${campaignId}-r1`);
      // Its rollout is turned down and the exposure closed: the campaign's workflow ends.
      await endCampaign(campaignId, [before.patchRolloutId!]);

      // The same fix on another host, later: the campaign's workflow runs again, from round 1.
      const later = await onHosts('prod', 1, pkg, 'CVE-2099-8010');
      await dispatchNew(taskQueue, [later]);
      await untilState(temporal.client, db.pool, later.ids[0]!, 'awaiting-decision');
      expect((await campaignOf(db.pool, later.ids[0]!)).campaignId).toBe(campaignId);
      await decideCampaign(temporal.client, db.pool, campaignId, { kind: 'approve', actor: by('olivia') });
      const after = await eventually(
        "the second generation's rollout",
        () => view(temporal.client, db.pool, later.ids[0]!),
        (v) => v.patchRolloutId !== undefined,
      );
      expect(after.patchRolloutId).toMatch(new RegExp(`^patch-${campaignId}\\.[0-9a-f]{12}-r1$`));
      const rollout = await eventually(
        'the second rollout waiting for its approval',
        () => temporal.client.workflow.getHandle(after.patchRolloutId!).query(patchRolloutQuery),
        (r) => r.status === 'awaiting-approval',
      );
      expect(rollout.hosts.map((h) => h.host)).toEqual([expect.any(String)]);
      await keepHistory(temporal.client, db.pool, later.ids[0]!, 'campaign-later-generation');
      await endCampaign(campaignId, [after.patchRolloutId!]);
    });
  });

  it('files a backlog import silently: nobody is asked, each owner gets one onboarding summary', async () => {
    await withWorker(async (taskQueue) => {
      const a = await onHosts('prod', 2, uniquePackage('libold'), 'CVE-2099-8004');
      const b = await onHosts('prod', 1, uniquePackage('libolder'), 'CVE-2099-8005');
      const c = await onHosts('ops', 1, uniquePackage('libops'), 'CVE-2099-8006');
      const ids = [...a.ids, ...b.ids, ...c.ids];
      const r = await dispatchNew(taskQueue, [a, b, c], { baseline: true });
      expect(r).toMatchObject({ admitted: 4, asked: 0 });
      for (const id of ids) await untilState(temporal.client, db.pool, id, 'awaiting-decision');
      const campaigns = [
        ...new Set(await Promise.all(ids.map(async (id) => (await campaignOf(db.pool, id)).campaignId))),
      ];
      expect(campaigns).toHaveLength(3);
      // No message per campaign (both scopes would send every decision request at once)…
      expect(log.notifications.filter((n) => campaigns.includes(n.campaign.id))).toEqual([]);
      // …one summary per owner, listing their campaigns.
      const onboarding = log.digests.filter((d) => d.kind === 'onboarding');
      expect(onboarding.map((d) => d.to).sort()).toEqual([['adam'], ['olivia']]);
      const olivia = onboarding.find((d) => d.to[0] === 'olivia')!;
      expect(olivia.title).toBe('Backlog imported: 2 campaigns, 3 exposures for you');
      expect(olivia.campaigns.map((x) => x.campaign.id).sort()).toEqual(
        campaigns.filter((id) => id.startsWith('cmp:prod:')).sort(),
      );
      expect(onboarding.find((d) => d.to[0] === 'adam')!.campaigns.map((x) => x.campaign.id)).toEqual(
        campaigns.filter((id) => id.startsWith('cmp:ops:adam:')),
      );
      const { rows } = await db.pool.query<{ type: string; reason: string }>(
        `select type, reason from events where exposure_id = $1 and type in ('queued', 'notified')`,
        [ids[0]],
      );
      expect(rows).toEqual([
        { type: 'queued', reason: expect.stringContaining('backlog import (baseline)') },
      ]);
      expect(
        (
          await db.pool.query(
            `select person, campaigns, exposures from owner_digests where kind = 'onboarding' order by person`,
          )
        ).rows,
      ).toEqual([
        { person: 'adam', campaigns: 1, exposures: 1 },
        { person: 'olivia', campaigns: 2, exposures: 3 },
      ]);
      // The same import dispatched again (a retried activity) sends nothing more.
      await dispatchNew(taskQueue, [a, b, c], { baseline: true });
      expect(log.digests.filter((d) => d.kind === 'onboarding')).toHaveLength(2);
      for (const id of campaigns) await endCampaign(id);
    });
  });

  it("treats a scope's first import as a backlog import when the scope says so, and asks as usual after it", async () => {
    await withWorker(async (taskQueue) => {
      const first = await onHosts('fresh', 2, uniquePackage('libfirst'), 'CVE-2099-8007');
      const r = await dispatchNew(taskQueue, [first]);
      expect(r).toMatchObject({ admitted: 2, asked: 0 });
      for (const id of first.ids) await untilState(temporal.client, db.pool, id, 'awaiting-decision');
      const { campaignId } = await campaignOf(db.pool, first.ids[0]!);
      expect(log.notifications.filter((n) => n.campaign.id === campaignId)).toEqual([]);
      expect(
        log.digests.filter(
          (d) => d.kind === 'onboarding' && d.campaigns.some((c) => c.campaign.id === campaignId),
        ),
      ).toHaveLength(1);
      // The scope has campaigns now: the next scan's urgent findings are sent at once.
      const next = await onHosts('fresh', 1, uniquePackage('libnext'), 'CVE-2099-8008');
      expect(await dispatchNew(taskQueue, [next])).toMatchObject({ admitted: 1, asked: 1 });
      const later = (await campaignOf(db.pool, next.ids[0]!)).campaignId;
      await eventually(
        'the decision request of the second import',
        async () => log.notifications.filter((n) => n.campaign.id === later),
        (sent) => sent.length === 1,
      );
      await endCampaign(campaignId);
      await endCampaign(later);
    });
  });
});
