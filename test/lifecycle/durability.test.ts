// Durability: the worker is killed with SIGKILL twice in the middle of one campaign — after the
// remote ticket was created and before the activity answered, then while the Satellite patch job
// runs — another worker process starts each time, and the exposure's lifecycle finishes with nothing
// lost (the approval, the state) and no side effect repeated (one ticket, one Satellite job, one
// message per key, one event per step). A campaign's long history continues as new carrying its
// exposures, also while a patch rollout is pending.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, Next } from '@temporalio/worker';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { dispatchChanges } from '../../lifecycle/dispatch.ts';
import { applyDecision, decideCampaign } from '../../lifecycle/decide.ts';
import { campaignQuery, rescoredSignal, scanChangesSignal } from '../../contracts/campaign.ts';
import { crashConfig, crashPorts } from './crashConfig.ts';
import { startFakeSatellite, type FakeSatellite, type FakeSatelliteOptions } from '../fakes/satellite.ts';
import { approvePatchUpdate, patchRolloutQuery } from '../../contracts/patch.ts';
import {
  campaignOf,
  decisionsOf,
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

let db: TestDatabase;
let temporal: TestTemporal;
let satellite: FakeSatellite;
let crashRegistry: ReturnType<typeof crashPorts>;
// The job stays running until the test says so (after the second kill).
const satelliteOptions: FakeSatelliteOptions = {
  username: 'ctem',
  password: 'crash-satellite-token',
  hosts: [{ id: 31, name: 'rhel9-crash-01.example.com' }],
  errata: [
    {
      id: 6101,
      errata_id: 'RHSA-2024:0310',
      title: 'Moderate: openssl security update',
      type: 'security',
      severity: 'Moderate',
      issued: '2024-01-22',
      reboot_suggested: false,
      cves: ['CVE-2023-5678'],
      packages: ['openssl-1:3.0.7-25.el9_3.x86_64'],
      applicableTo: [31],
      installableOn: [31],
    },
  ],
  pollsUntilDone: Number.MAX_SAFE_INTEGER,
};
beforeAll(async () => {
  db = await testDatabase();
  temporal = await testTemporal();
  satellite = await startFakeSatellite(satelliteOptions);
  // Inherited by the worker processes (crashConfig reads them there too).
  process.env.CRASH_SATELLITE_URL = satellite.url;
  process.env.CTEM_CRASH_SATELLITE_TOKEN = 'crash-satellite-token';
  await db.pool.query(
    `create table crash_calls (id bigserial primary key, kind text not null, key text not null, pid integer not null)`,
  );
  await db.pool.query(`create table crash_tickets (campaign_id text primary key, key text not null)`);
  // The dispatcher runs in this process (as it would in `ctem ingest`): the same integrations here.
  crashRegistry = crashPorts(db.pool);
});

afterAll(async () => {
  await satellite?.close();
});

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.length = 0;
});

async function startWorkerProcess(
  taskQueue: string,
  extraEnv: Record<string, string> = {},
): Promise<ChildProcess> {
  const root = path.resolve(import.meta.dirname, '../..');
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(import.meta.dirname, 'crashWorker.ts')],
    {
      cwd: root,
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        TEMPORAL_ADDRESS: temporal.address,
        TASK_QUEUE: taskQueue,
        WORKFLOW_BUNDLE: inject('workflowBundlePath'),
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
    child.once('exit', (code) =>
      reject(new Error(`worker process exited (${code}) before it was ready: ${stderr}`)),
    );
  });
  return child;
}

async function calls(kind: string): Promise<{ key: string; pid: number }[]> {
  return (
    await db.pool.query<{ key: string; pid: number }>(
      'select key, pid from crash_calls where kind = $1 order by id',
      [kind],
    )
  ).rows;
}

describe('durability', () => {
  it('loses nothing and repeats no side effect when the worker is killed mid-campaign', async () => {
    const config = crashConfig();
    const taskQueue = temporal.taskQueue('crash');
    const first = await startWorkerProcess(taskQueue, { SLOW_TICKET: '1' });
    const kill = async (child: ChildProcess) => {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      expect(child.signalCode).toBe('SIGKILL');
    };

    const s = await seedExposures(db.pool, {
      scope: 'crash',
      weaknesses: ['CVE-2023-5678'],
      host: 'rhel9-crash-01.example.com',
      package: { name: 'openssl', fixedVersion: '3.0.7-25.el9_3' },
    });
    const id = s.ids[0]!;
    await dispatchChanges(
      testDeps({ pool: db.pool, config, registry: crashRegistry }),
      temporal.client,
      [{ exposureId: id, change: 'new', scanId: s.scanId, at: s.at }],
      {
        taskQueue,
        heartbeatTimeoutMs: 2_000,
      },
    );
    await untilState(temporal.client, db.pool, id, 'awaiting-decision');
    const { campaignId, workflowId } = await campaignOf(db.pool, id);
    expect(
      await applyDecision(temporal.client, db.pool, id, {
        kind: 'approve',
        actor: { personId: 'olivia', via: 'api' },
      }),
    ).toEqual({ ok: true, state: 'remediating' });

    // 1. The remote ticket exists; the activity has not answered. Kill the worker now.
    await eventually(
      'the remote ticket created',
      () => calls('ticket-create'),
      (c) => c.length === 1,
    );
    await kill(first);

    // 2. Another worker finds the ticket, and the campaign's rollout (auto-approved by the scope)
    // starts the Satellite job. Kill that worker while the job runs.
    const second = await startWorkerProcess(taskQueue);
    await eventually(
      'the Satellite job running',
      async () => satellite.jobs.map((j) => ({ polls: j.polls, status: j.status })),
      (jobs) => jobs.length === 1 && jobs[0]!.polls >= 1,
      90_000,
    );
    await kill(second);

    // 3. A third worker takes the apply over: it finds the running job by its tag and waits for it.
    const third = await startWorkerProcess(taskQueue);
    const rolloutId = (await view(temporal.client, db.pool, id)).patchRolloutId!;
    expect(rolloutId).toBe(`patch-${campaignId}-r1`);
    satelliteOptions.pollsUntilDone = 0; // the job finishes at its next poll
    await untilState(temporal.client, db.pool, id, 'verifying', 120_000);
    expect(await decisionsOf(db.pool, id)).toEqual([{ kind: 'approve', by: 'olivia' }]);
    const rollout = await temporal.client.workflow.getHandle(rolloutId).query(patchRolloutQuery);
    expect(rollout.status).toBe('succeeded');
    expect(rollout.decision).toMatchObject({ by: 'policy', approved: true });
    const scan = await newScan(db.pool, 'crash', new Date(Date.now() + 1_000));
    const campaign = temporal.client.workflow.getHandle(workflowId);
    await campaign.signal(scanChangesSignal, [{ exposureId: id, kind: 'absent', ...scan }]);
    await campaign.result();
    expect((await view(temporal.client, db.pool, id)).state).toBe('resolved');

    // Side effects: one ticket (the retry found it), one Satellite job (the retried apply found it
    // running), one patch job row with its evidence, one decision request, one close.
    expect(await calls('ticket-create')).toHaveLength(1);
    expect((await calls('ticket-found')).map((c) => c.pid)).toEqual([second.pid]);
    expect(satellite.jobs).toHaveLength(1);
    expect(satellite.jobs[0]!.status).toBe('succeeded');
    expect(
      satellite.requests.filter((r) => r.method === 'POST' && r.path === '/api/v2/job_invocations'),
    ).toHaveLength(1);
    const { rows: jobs } = await db.pool.query<{
      status: string;
      attempts: number;
      remote_job_id: string;
      output: string;
    }>('select status, attempts, remote_job_id, output from patch_jobs where rollout_id = $1', [rolloutId]);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ status: 'succeeded', remote_job_id: String(satellite.jobs[0]!.id) });
    expect(jobs[0]!.attempts).toBeGreaterThanOrEqual(2); // the killed attempt and the one that finished
    expect(jobs[0]!.output).toContain('succeeded');
    // The owner was asked once, by the dispatcher (this process), before the crash; not again after.
    expect(await calls('notify')).toEqual([{ key: `campaign:${campaignId}`, pid: process.pid }]);
    await eventually(
      'the ticket closed',
      () => calls('ticket-close'),
      (c) => c.length === 1,
    );
    expect((await calls('ticket-close'))[0]!.pid).toBe(third.pid);

    // One event per step, exactly as an uninterrupted run records them.
    expect(await eventTypes(db.pool, id)).toEqual([
      'triaged',
      'validated',
      'notified',
      'awaiting-decision',
      'approve',
      'ticket-opened',
      'patch-requested',
      'patch-planned',
      'patch-approved',
      'patch-host-succeeded:rhel9-crash-01.example.com',
      'patch-succeeded',
      'verifying',
      'rescan-unavailable',
      'resolved',
      'ticket-closed',
    ]);
    const row = (await db.pool.query('select state, verified_scan_id from exposures where id = $1', [id]))
      .rows[0];
    expect(row).toEqual({ state: 'resolved', verified_scan_id: scan.scanId });
  }, 300_000);

  it('continues a campaign as new before its history grows large, carrying its exposures, and keeps working', async () => {
    const log = newPortLog();
    const ports = recordingPorts(log);
    const config = lifecycleConfig();
    const taskQueue = temporal.taskQueue('can');
    const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
    await worker.runUntil(async () => {
      // Two weaknesses fixed by one upgrade on one host: one campaign holding two exposures.
      const s = await seedExposures(db.pool, {
        scope: 'prod',
        weaknesses: ['CVE-2099-4002', 'CVE-2099-4003'],
        package: { name: `durable-${process.pid}`, fixedVersion: '2.0' },
      });
      const [snoozed, waiting] = s.ids as [string, string];
      await dispatchChanges(
        testDeps({ pool: db.pool, config, registry: ports }),
        temporal.client,
        s.ids.map((id) => ({ exposureId: id, change: 'new' as const, scanId: s.scanId, at: s.at })),
        { taskQueue, historyLimit: 40 },
      );
      for (const id of s.ids) await untilState(temporal.client, db.pool, id, 'awaiting-decision');
      const { campaignId, workflowId } = await campaignOf(db.pool, snoozed);
      expect((await campaignOf(db.pool, waiting)).workflowId).toBe(workflowId);
      const handle = temporal.client.workflow.getHandle(workflowId);
      const firstRun = (await handle.describe()).runId;
      await applyDecision(temporal.client, db.pool, snoozed, {
        kind: 'snooze',
        actor: { personId: 'olivia', via: 'api' },
        until: new Date(Date.now() + 86_400_000).toISOString(),
      });
      const rescoreAndSee = async (i: number) => {
        await handle.signal(rescoredSignal, [
          {
            exposureId: snoozed,
            priority: 'Attend',
            slaDue: new Date(Date.parse(s.at) + i * 60_000).toISOString(),
            policyVersion: `v${i}`,
          },
        ]);
        return await eventually(
          `re-score ${i}`,
          () => view(temporal.client, db.pool, snoozed),
          (v) => v.policyVersion === `v${i}`,
        );
      };
      let after = await view(temporal.client, db.pool, snoozed);
      for (let i = 1; i <= 25; i++) after = await rescoreAndSee(i);
      const desc = await handle.describe();
      expect(desc.runId).not.toBe(firstRun);
      expect(desc.historyLength).toBeLessThan(120);
      // Both exposures carried over: the snooze and its pause, the re-scores, the other one waiting.
      expect(after).toMatchObject({ state: 'snoozed', slaPaused: true, priority: 'Attend' });
      expect(await view(temporal.client, db.pool, waiting)).toMatchObject({ state: 'awaiting-decision' });
      expect(await handle.query(campaignQuery)).toMatchObject({
        exposures: 2,
        states: { snoozed: 1, 'awaiting-decision': 1 },
      });
      expect(await decisionsOf(db.pool, snoozed)).toEqual([{ kind: 'snooze', by: 'olivia' }]);
      // And the new run still takes decisions, recorded with fresh (never reused) keys: approving
      // the campaign approves both (a snoozed exposure may be approved).
      const approved = await decideCampaign(temporal.client, db.pool, campaignId, {
        kind: 'approve',
        actor: { personId: 'olivia', via: 'api' },
      });
      expect(approved.applied.map((a) => a.state)).toEqual(['remediating', 'remediating']);
      // The campaign's patch rollout waits for an approver; the campaign continues as new meanwhile…
      const remediating = await eventually(
        'the patch rollout',
        () => view(temporal.client, db.pool, snoozed),
        (v) => v.patchRolloutId !== undefined,
      );
      const rollout = temporal.client.workflow.getHandle(remediating.patchRolloutId!);
      await eventually(
        'the rollout to ask for approval',
        () => rollout.query(patchRolloutQuery),
        (r) => r.status === 'awaiting-approval',
      );
      const runWhileWaiting = (await handle.describe()).runId;
      for (let i = 26; i <= 40; i++) await rescoreAndSee(i);
      expect((await handle.describe()).runId).not.toBe(runWhileWaiting);
      expect((await view(temporal.client, db.pool, waiting)).patchRolloutId).toBe(remediating.patchRolloutId);
      // …and the rollout's end still reaches it (the run that started the rollout is gone).
      await rollout.executeUpdate(approvePatchUpdate, {
        args: [{ actor: { personId: 'adam', via: 'api' } }],
      });
      for (const id of s.ids)
        expect((await untilState(temporal.client, db.pool, id, 'verifying')).fixedAt).toBeDefined();
      expect(
        log.patches.filter((p) => p.op === 'apply' && p.rolloutId === remediating.patchRolloutId),
      ).toHaveLength(1);
      expect((await handle.query(campaignQuery)).round).toBe(1);
      for (const id of s.ids) {
        const { rows } = await db.pool.query<{ n: number; keys: number }>(
          `select count(*)::int as n, count(distinct idempotency_key)::int as keys from events where exposure_id = $1`,
          [id],
        );
        expect(rows[0]!.n).toBe(rows[0]!.keys);
      }
      expect((await eventTypes(db.pool, snoozed)).filter((t) => t === 'rescored')).toHaveLength(40);
      await decideCampaign(temporal.client, db.pool, campaignId, {
        kind: 'markFalsePositive',
        actor: { personId: 'olivia', via: 'api' },
        reason: 'done',
      });
      await handle.result();
      await keepHistory(temporal.client, db.pool, snoozed, 'campaign-continued-as-new');
    });
  }, 300_000);

  it('continues as new when full even if a message arrives during every round of records (never idle)', async () => {
    const config = lifecycleConfig();
    const taskQueue = temporal.taskQueue('busy');
    // Each round's records are in PostgreSQL before the worker hears back from writing them: the
    // next re-score (sent as soon as the record shows) always lands while the campaign is busy.
    const slowRecords = (ctx: Context) => ({
      inbound: {
        execute: async (
          input: ActivityExecuteInput,
          next: Next<ActivityInboundCallsInterceptor, 'execute'>,
        ) => {
          const result: unknown = await next(input);
          if (ctx.info.activityType === 'recordLifecycle') await new Promise((r) => setTimeout(r, 300));
          return result;
        },
      },
    });
    const ports = recordingPorts(newPortLog());
    const worker = await temporal.worker({
      taskQueue,
      pool: db.pool,
      config,
      registry: ports,
      extra: { interceptors: { activity: [slowRecords] } },
    });
    await worker.runUntil(async () => {
      const s = await seedExposures(db.pool, {
        scope: 'prod',
        weaknesses: ['CVE-2099-4012'],
        package: { name: `busy-${process.pid}`, fixedVersion: '2.0' },
      });
      const [id] = s.ids as [string];
      await dispatchChanges(
        testDeps({ pool: db.pool, config, registry: ports }),
        temporal.client,
        [{ exposureId: id, change: 'new' as const, scanId: s.scanId, at: s.at }],
        { taskQueue, historyLimit: 40 },
      );
      await untilState(temporal.client, db.pool, id, 'awaiting-decision');
      const handle = temporal.client.workflow.getHandle((await campaignOf(db.pool, id)).workflowId);
      const runs = new Set<string>([(await handle.describe()).runId]);
      for (let i = 1; i <= 30; i++) {
        await handle.signal(rescoredSignal, [
          {
            exposureId: id,
            priority: 'Attend',
            slaDue: new Date(Date.parse(s.at) + i * 60_000).toISOString(),
            policyVersion: `busy-${i}`,
          },
        ]);
        await eventually(
          `re-score ${i}`,
          () => view(temporal.client, db.pool, id),
          (v) => v.policyVersion === `busy-${i}`,
        );
        runs.add((await handle.describe()).runId);
      }
      // Without continuing as new while busy, one run would hold every round (about 150 events).
      expect(runs.size).toBeGreaterThan(1);
      expect((await handle.describe()).historyLength).toBeLessThan(100);
      expect(await view(temporal.client, db.pool, id)).toMatchObject({
        policyVersion: 'busy-30',
        priority: 'Attend',
      });
    });
  }, 300_000);
});
