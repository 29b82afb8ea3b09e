// The campaign lifecycle end to end on the real Temporal dev server and PostgreSQL: every transition
// of every exposure, its record in the audit log, and the side effects the campaign asks the
// integrations for — once per campaign, not once per exposure.
import { beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@temporalio/client';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { dispatchChanges } from '../../lifecycle/dispatch.ts';
import { decideCampaign } from '../../lifecycle/decide.ts';
import { campaignQuery, scanChangesSignal } from '../../contracts/campaign.ts';
import { approvePatchUpdate, patchRolloutQuery } from '../../contracts/patch.ts';
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
const config = lifecycleConfig();

let db: TestDatabase;
let temporal: TestTemporal;
beforeAll(async () => {
  db = await testDatabase();
  temporal = await testTemporal();
});

const actor = (personId: string) => ({ personId, via: 'api' as const });

async function withWorker<T>(fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = temporal.taskQueue('lifecycle');
  const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
  return await worker.runUntil(fn(taskQueue));
}

/** Hand the seeded exposures to the dispatcher as new, through the given client. */
async function dispatchNew(
  client: Client,
  taskQueue: string,
  seeded: { ids: string[]; scanId: number; at: string }[],
) {
  return await dispatchChanges(
    testDeps({ pool: db.pool, config, registry: ports }),
    client,
    seeded.flatMap((s) =>
      s.ids.map((id) => ({ exposureId: id, change: 'new' as const, scanId: s.scanId, at: s.at })),
    ),
    { taskQueue },
  );
}

describe('the campaign lifecycle', () => {
  it('takes one fix on many assets from discovery to a re-scan proving it, asking and ticketing once', async () => {
    await withWorker(async (taskQueue) => {
      const scan = await newScan(db.pool, 'prod');
      const pkg = { name: 'openssl', fixedVersion: '3.0.9' };
      const web = await seedExposures(db.pool, {
        scope: 'prod',
        weaknesses: ['CVE-2099-0001', 'CVE-2099-0002'],
        package: pkg,
        scanId: scan.scanId,
        firstSeen: new Date(scan.at),
      });
      const db2 = await seedExposures(db.pool, {
        scope: 'prod',
        weaknesses: ['CVE-2099-0001'],
        package: { ...pkg, fixedVersion: '3.0.11' },
        scanId: scan.scanId,
        firstSeen: new Date(scan.at),
      });
      const ids = [...web.ids, ...db2.ids];
      const r = await dispatchNew(temporal.client, taskQueue, [web, db2]);
      // One campaign workflow for the three exposures on two hosts.
      expect(r).toMatchObject({ started: 1, admitted: 3, asked: 1 });
      for (const id of ids) await untilState(temporal.client, db.pool, id, 'awaiting-decision');
      const { campaignId, workflowId } = await campaignOf(db.pool, ids[0]!);
      expect(campaignId).toMatch(/^cmp:prod:olivia:[0-9a-f]{12}$/);
      for (const id of ids) expect((await campaignOf(db.pool, id)).campaignId).toBe(campaignId);

      // The owner is asked once, for the whole campaign: the fix, its reach, its deadline.
      const requests = log.notifications.filter(
        (n) => n.campaign.id === campaignId && n.kind === 'decision-request',
      );
      expect(requests).toHaveLength(1);
      expect(requests[0]!.to).toEqual(['olivia']);
      expect(requests[0]!.key).toBe(`campaign:${campaignId}`);
      expect(requests[0]!.campaign.action).toBe('Upgrade openssl to 3.0.11 or later on 2 assets');
      expect(requests[0]!.campaign.totals).toMatchObject({ exposures: 3, open: 3, assets: 2 });
      expect(requests[0]!.campaign.exposures.map((e) => e.id).sort()).toEqual([...ids].sort());
      const before = await view(temporal.client, db.pool, ids[0]!);
      expect(requests[0]!.campaign.priority).toBe(before.priority);
      expect(requests[0]!.text.startsWith(`${before.priority}: `)).toBe(true);
      // The SLA clock starts when ctem learned of the exposure, not at the scanner's first sighting.
      const { rows: learned } = await db.pool.query<{ learned_at: Date; sla_start: Date }>(
        'select learned_at, sla_start from exposures where id = $1',
        [ids[0]],
      );
      expect(before.slaStart).toBe(learned[0]!.sla_start.toISOString());
      expect(learned[0]!.sla_start.getTime()).toBe(learned[0]!.learned_at.getTime());

      // One decision for the campaign: every exposure is approved, one ticket, one rollout of both hosts.
      const refused = await decideCampaign(temporal.client, db.pool, campaignId, {
        kind: 'approve',
        actor: actor('pat'),
      });
      expect(refused.applied).toEqual([]);
      expect(refused.reason).toMatch(/pat/);
      const approved = await decideCampaign(temporal.client, db.pool, campaignId, {
        kind: 'approve',
        actor: actor('olivia'),
        comment: 'go',
      });
      expect(approved.applied.map((a) => [a.exposureId, a.state]).sort()).toEqual(
        [...ids].sort().map((id) => [id, 'remediating']),
      );
      const remediating = await eventually(
        'the campaign patch rollout',
        () => view(temporal.client, db.pool, ids[0]!),
        (v) => v.patchRolloutId !== undefined,
      );
      expect(remediating.patchRolloutId).toBe(`patch-${campaignId}-r1`);
      const rollout = temporal.client.workflow.getHandle(remediating.patchRolloutId!);
      const waiting = await eventually(
        'the rollout to ask for approval',
        () => rollout.query(patchRolloutQuery),
        (p) => p.status === 'awaiting-approval',
      );
      expect(waiting.approvers).toEqual(['adam', 'lena', 'cyrus']);
      expect(waiting.hosts.map((h) => h.host).sort()).toEqual(
        [`host-${process.pid}-1`, `host-${process.pid}-2`].sort(),
      );
      expect(waiting.hosts.filter((h) => h.canary)).toHaveLength(1);
      const tickets = log.tickets.filter((t) => t.campaignId === campaignId);
      expect(tickets.filter((t) => t.op === 'create')).toHaveLength(1);
      // The owner may approve the exposures' remediation, not the change to the machines.
      await expect(
        rollout.executeUpdate(approvePatchUpdate, { args: [{ actor: actor('olivia') }] }),
      ).rejects.toThrow();
      await rollout.executeUpdate(approvePatchUpdate, { args: [{ actor: actor('adam'), comment: 'ok' }] });
      for (const id of ids) await untilState(temporal.client, db.pool, id, 'verifying');
      const verifying = await view(temporal.client, db.pool, ids[0]!);
      expect(verifying.fixedAt).toBeDefined();
      expect(verifying.patchRolloutId).toBeUndefined();
      // One patch job per host, one re-scan for both.
      expect(
        log.patches.filter((p) => p.rolloutId === remediating.patchRolloutId && p.op === 'apply'),
      ).toHaveLength(2);
      const rescans = await eventually(
        'a re-scan request',
        async () => log.rescans.filter((q) => q.requestId.startsWith(workflowId)),
        (q) => q.length === 1,
      );
      expect(rescans[0]!.assetIds.sort()).toEqual([web.assetId, db2.assetId].sort());

      // A scan older than the fix proves nothing; one after it resolves, and the campaign ends.
      const handle = temporal.client.workflow.getHandle(workflowId);
      const old = await newScan(db.pool, 'prod', new Date(Date.parse(verifying.fixedAt!) - 60_000));
      await handle.signal(scanChangesSignal, [{ exposureId: ids[0]!, kind: 'absent', ...old }]);
      await eventually(
        'the stale scan to be ignored',
        () => eventTypes(db.pool, ids[0]!),
        (t) => t.includes('evidence-ignored'),
      );
      expect((await view(temporal.client, db.pool, ids[0]!)).state).toBe('verifying');
      const rescan = await newScan(db.pool, 'prod', new Date(Date.now() + 1_000));
      await handle.signal(
        scanChangesSignal,
        ids.map((id) => ({ exposureId: id, kind: 'absent' as const, ...rescan })),
      );
      await handle.result();
      for (const id of ids) {
        const done = await view(temporal.client, db.pool, id);
        expect(done.state).toBe('resolved');
        expect(done.verifiedBy).toEqual({ scanId: rescan.scanId, at: rescan.at });
      }

      // The campaign's ticket closes once, when its last exposure is verified.
      const ticketKey = tickets[0]!.ref!.key;
      await eventually(
        'the ticket closed',
        async () => log.tickets.filter((t) => t.op === 'close' && t.ref?.key === ticketKey),
        (c) => c.length === 1,
      );

      // The read model and the audit trail.
      const { rows } = await db.pool.query(
        'select state, verified_scan_id, exposure_seconds, campaign_id from exposures where id = $1',
        [ids[0]],
      );
      expect(rows[0]).toMatchObject({
        state: 'resolved',
        verified_scan_id: rescan.scanId,
        campaign_id: campaignId,
      });
      expect(rows[0].exposure_seconds).toBeGreaterThanOrEqual(0);
      const types = await eventTypes(db.pool, ids[0]!);
      expect(types).toEqual([
        'triaged',
        'validated',
        'notified',
        'awaiting-decision',
        'approve',
        'ticket-opened',
        'patch-requested',
        'patch-planned',
        'notified',
        'patch-approved',
        `patch-host-succeeded:host-${process.pid}-1`,
        'patch-succeeded',
        'verifying',
        'rescan-requested',
        'evidence-ignored',
        'resolved',
        'ticket-closed',
      ]);
      // The fix's evidence: the patch job's output, per host.
      const { rows: jobs } = await db.pool.query<{ host: string; status: string; output: string }>(
        'select host, status, output from patch_jobs where campaign_id = $1 order by host',
        [campaignId],
      );
      expect(jobs.map((j) => [j.status, j.output])).toEqual([
        ['succeeded', 'upgraded'],
        ['succeeded', 'upgraded'],
      ]);
      await keepHistory(temporal.client, db.pool, ids[0]!, 'campaign-approved-rollout-verified');
    });
  });

  it('starts one campaign eagerly from a client on the worker connection, and tells a running one', async () => {
    await withWorker(async (taskQueue) => {
      const seeded = await seedExposures(db.pool, {
        scope: 'prod',
        weaknesses: ['CVE-2099-0101', 'CVE-2099-0102', 'CVE-2099-0103'],
        package: { name: 'zlib', fixedVersion: '1.3.1' },
      });
      // As in the dispatch activity of a scan cycle: the client shares the worker's connection.
      const client = new Client({ connection: temporal.nativeConnection, namespace: 'default' });
      const r = await dispatchNew(client, taskQueue, [seeded]);
      expect(r).toMatchObject({ started: 1, eagerlyStarted: 1, admitted: 3, signalled: 0 });
      for (const id of seeded.ids) await untilState(temporal.client, db.pool, id, 'awaiting-decision');
      const { campaignId, workflowId } = await campaignOf(db.pool, seeded.ids[0]!);
      // A later scan finds the same fix missing on another host: it joins the running campaign, and
      // the owner hears it in the campaign's thread.
      const later = await seedExposures(db.pool, {
        scope: 'prod',
        weaknesses: ['CVE-2099-0101'],
        package: { name: 'zlib', fixedVersion: '1.3.1' },
      });
      const plain = await dispatchNew(temporal.client, taskQueue, [later]);
      expect(plain).toMatchObject({ started: 0, eagerlyStarted: 0, signalled: 1, admitted: 1 });
      await untilState(temporal.client, db.pool, later.ids[0]!, 'awaiting-decision');
      expect((await campaignOf(db.pool, later.ids[0]!)).campaignId).toBe(campaignId);
      const view1 = await temporal.client.workflow.getHandle(workflowId).query(campaignQuery);
      expect(view1).toMatchObject({ exposures: 4, assets: 2, states: { 'awaiting-decision': 4 } });
      const messages = log.notifications.filter((n) => n.campaign.id === campaignId);
      expect(messages.map((n) => [n.kind, n.thread ?? null])).toEqual([
        ['decision-request', null],
        ['reminder', `campaign:${campaignId}`],
        // the original, updated in place with what the campaign holds now
        ['decision-request', null],
      ]);
      expect(messages[2]!.campaign.totals.exposures).toBe(4);
    });
  });
});
