// The exposure lifecycle end to end on the real Temporal dev server and PostgreSQL: every transition,
// its record in the audit log, and the side effects it asks the integrations for.
import { beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@temporalio/client';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { dispatchChanges } from '../../lifecycle/dispatch.ts';
import { applyDecision } from '../../lifecycle/decide.ts';
import { exposureWorkflowId } from '../../domain/exposure.ts';
import { absentSignal } from '../../contracts/exposure.ts';
import { approvePatchUpdate, patchRolloutQuery } from '../../contracts/patch.ts';
import {
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
  seeded: { ids: string[]; scanId: number; at: string },
) {
  return await dispatchChanges(
    testDeps({ pool: db.pool, config, registry: ports }),
    client,
    seeded.ids.map((id) => ({
      exposureId: id,
      change: 'new' as const,
      scanId: seeded.scanId,
      at: seeded.at,
    })),
    { taskQueue },
  );
}

async function start(
  taskQueue: string,
  scope: string,
  weaknesses: string[],
  pkg?: { name: string; fixedVersion?: string },
) {
  const seeded = await seedExposures(db.pool, { scope, weaknesses, ...(pkg ? { package: pkg } : {}) });
  const r = await dispatchNew(temporal.client, taskQueue, seeded);
  expect(r.started).toBe(weaknesses.length);
  for (const id of seeded.ids) await untilState(temporal.client, id, 'awaiting-decision');
  return seeded;
}

describe('the exposure lifecycle', () => {
  it('goes from discovery to a fix verified by a re-scan, recording every step once', async () => {
    await withWorker(async (taskQueue) => {
      const { ids, assetId } = await start(taskQueue, 'prod', ['CVE-2099-0001', 'CVE-2099-0002'], {
        name: 'openssl',
        fixedVersion: '3.0.9',
      });
      const [a, b] = ids as [string, string];

      // Triaged set-based, then validated and the owner asked once for the whole unit.
      const before = await view(temporal.client, a);
      expect(before.priority).toMatch(/^(Act|Attend|Track\*|Track)$/);
      expect(before.owner).toBe('olivia');
      expect(before.remediationUnitId).toMatch(new RegExp(`^ru:prod:olivia:${assetId}:`));
      expect((await view(temporal.client, b)).remediationUnitId).toBe(before.remediationUnitId);
      const requests = log.notifications.filter(
        (n) => n.unit.id === before.remediationUnitId && n.kind === 'decision-request',
      );
      expect(requests).toHaveLength(1);
      expect(requests[0]!.to).toEqual(['olivia']);
      expect(requests[0]!.unit.exposures.map((e) => e.id).sort()).toEqual([a, b].sort());
      expect(requests[0]!.unit.action).toBe(`Upgrade openssl to 3.0.9 or later on host-${process.pid}-1`);

      // The decision request describes the unit from its triaged rows, not as fresh "open" ones.
      const rowNow = (
        await db.pool.query<{ state: string; priority: string }>(
          'select state, priority from exposures where id = $1',
          [a],
        )
      ).rows[0]!;
      expect(rowNow.state).toBe('awaiting-decision');
      expect(requests[0]!.unit.exposures.map((e) => [e.state, e.priority])).toEqual([
        ['awaiting-decision', before.priority],
        ['awaiting-decision', before.priority],
      ]);
      expect(requests[0]!.unit.priority).toBe(before.priority);
      expect(requests[0]!.text.startsWith(`${before.priority}: `)).toBe(true);

      // The owner approves: a ticket for the unit, and the unit's patch rollout as a child workflow,
      // which shows its plan to the approvers and waits for one of them.
      const approved = await applyDecision(temporal.client, a, {
        kind: 'approve',
        actor: actor('olivia'),
        comment: 'go',
      });
      expect(approved).toEqual({ ok: true, state: 'remediating' });
      const remediating = await eventually(
        'the unit patch rollout',
        () => view(temporal.client, a),
        (v) => v.patchRolloutId !== undefined,
      );
      const rollout = temporal.client.workflow.getHandle(remediating.patchRolloutId!);
      const waiting = await eventually(
        'the rollout to ask for approval',
        () => rollout.query(patchRolloutQuery),
        (r) => r.status === 'awaiting-approval',
      );
      expect(waiting.approvers).toEqual(['adam', 'lena', 'cyrus']);
      expect(waiting.plan?.summary).toBe('recorded plan');
      const approval = await eventually(
        'the approval request',
        async () => log.notifications.find((n) => n.patchRolloutId === remediating.patchRolloutId),
        (n) => n !== undefined,
      );
      expect(approval?.kind).toBe('decision-request');
      expect(approval?.text).toContain('Approve this patch?');
      expect(approval?.text).toContain('recorded plan');
      expect(log.patches.filter((p) => p.unitId === before.remediationUnitId && p.op === 'apply')).toEqual(
        [],
      );
      // The owner may approve the exposure's remediation, not the change to the machine.
      await expect(
        rollout.executeUpdate(approvePatchUpdate, { args: [{ actor: actor('olivia') }] }),
      ).rejects.toThrow();
      await rollout.executeUpdate(approvePatchUpdate, { args: [{ actor: actor('adam'), comment: 'ok' }] });
      const verifying = await untilState(temporal.client, a, 'verifying');
      expect(verifying.fixedAt).toBeDefined();
      expect(verifying.patchRolloutId).toBeUndefined();
      expect(verifying.tickets).toEqual([{ system: 'recording', key: expect.stringMatching(/^REC-/) }]);
      await eventually(
        'a re-scan request',
        async () => log.rescans.filter((r) => r.assetIds[0] === assetId),
        (r) => r.length === 1,
      );

      // Approving the sibling reuses the unit's ticket and its finished rollout (one patch job).
      await applyDecision(temporal.client, b, { kind: 'approve', actor: actor('adam') });
      await untilState(temporal.client, b, 'verifying');
      const unitTickets = log.tickets.filter((t) => t.unitId === before.remediationUnitId);
      expect(unitTickets.filter((t) => t.op === 'create')).toHaveLength(1);
      expect(
        log.patches.filter((p) => p.unitId === before.remediationUnitId && p.op === 'apply'),
      ).toHaveLength(1);
      expect(log.rescans.filter((r) => r.assetIds[0] === assetId)).toHaveLength(1);

      // A scan older than the fix proves nothing; one after it resolves.
      const old = await newScan(db.pool, 'prod', new Date(Date.parse(verifying.fixedAt!) - 60_000));
      await temporal.client.workflow
        .getHandle(exposureWorkflowId(a))
        .signal(absentSignal, { scanId: old.scanId, at: old.at });
      await eventually(
        'the stale scan to be ignored',
        () => eventTypes(db.pool, a),
        (t) => t.includes('evidence-ignored'),
      );
      expect((await view(temporal.client, a)).state).toBe('verifying');
      const rescan = await newScan(db.pool, 'prod', new Date(Date.now() + 1_000));
      for (const id of [a, b])
        await temporal.client.workflow
          .getHandle(exposureWorkflowId(id))
          .signal(absentSignal, { scanId: rescan.scanId, at: rescan.at });
      const done = await temporal.client.workflow.getHandle(exposureWorkflowId(a)).result();
      expect(done.state).toBe('resolved');
      expect(done.verifiedBy).toEqual({ scanId: rescan.scanId, at: rescan.at });
      await temporal.client.workflow.getHandle(exposureWorkflowId(b)).result();

      // The unit's ticket closes once, when its last exposure is verified.
      await eventually(
        'the ticket closed',
        async () => log.tickets.filter((t) => t.op === 'close' && t.ref?.key === verifying.tickets[0]!.key),
        (c) => c.length >= 1,
      );

      // The read model and the audit trail.
      const { rows } = await db.pool.query(
        'select state, priority, verified_scan_id, exposure_seconds, resolved_at, remediation_unit_id from exposures where id = $1',
        [a],
      );
      expect(rows[0]).toMatchObject({
        state: 'resolved',
        verified_scan_id: rescan.scanId,
        remediation_unit_id: before.remediationUnitId,
      });
      expect(rows[0].exposure_seconds).toBeGreaterThanOrEqual(0);
      const types = await eventTypes(db.pool, a);
      expect(types.slice(0, 17)).toEqual([
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
        expect.stringMatching(/^patch-host-succeeded:host-/),
        'patch-succeeded',
        'verifying',
        'rescan-requested',
        'evidence-ignored',
        'resolved',
        expect.stringMatching(/^ticket-(closed|skipped)$/),
      ]);
      expect(types).toHaveLength(17);
      // The fix's evidence: the patch job's output, per host.
      const { rows: jobs } = await db.pool.query<{ status: string; output: string }>(
        'select j.status, j.output from patch_jobs j where j.unit_id = $1',
        [before.remediationUnitId],
      );
      expect(jobs).toEqual([{ status: 'succeeded', output: 'upgraded' }]);
      // 'approved-patched-verified.json' was recorded when the workflow patched with an activity.
      await keepHistory(temporal.client, a, 'approved-routed-rollout-verified');
    });
  });

  it('starts the workflows eagerly from a client on the worker connection, asking each unit once', async () => {
    await withWorker(async (taskQueue) => {
      const seeded = await seedExposures(db.pool, {
        scope: 'prod',
        weaknesses: ['CVE-2099-0101', 'CVE-2099-0102', 'CVE-2099-0103'],
        package: { name: 'zlib', fixedVersion: '1.3.1' },
      });
      // As in the dispatch activity of a scan cycle: the client shares the worker's connection.
      const client = new Client({ connection: temporal.nativeConnection, namespace: 'default' });
      const r = await dispatchNew(client, taskQueue, seeded);
      expect(r.started).toBe(3);
      expect(r.eagerlyStarted).toBeGreaterThan(0);
      for (const id of seeded.ids) await untilState(temporal.client, id, 'awaiting-decision');
      const unitId = (await view(temporal.client, seeded.ids[0]!)).remediationUnitId;
      const requests = log.notifications.filter((n) => n.unit.id === unitId && n.kind === 'decision-request');
      expect(requests).toHaveLength(1);
      expect(requests[0]!.unit.exposures.map((e) => e.id).sort()).toEqual([...seeded.ids].sort());
      // Through the usual client, nothing is eager.
      const again = await seedExposures(db.pool, { scope: 'prod', weaknesses: ['CVE-2099-0104'] });
      const plain = await dispatchNew(temporal.client, taskQueue, again);
      expect(plain).toMatchObject({ started: 1, eagerlyStarted: 0 });
    });
  });
});
