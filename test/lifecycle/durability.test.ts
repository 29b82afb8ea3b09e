// Durability: the worker is killed with SIGKILL in the middle of a lifecycle (after the remote ticket
// was created, before the activity answered), another worker process starts, and the lifecycle
// finishes with nothing lost (the approval, the state) and no side effect repeated (one ticket, one
// patch job, one message per key, one event per step). Long histories continue as new.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { dispatchChanges } from '../../activities/lifecycle/dispatch.ts';
import { applyDecision } from '../../activities/lifecycle/decide.ts';
import { exposureWorkflowId } from '../../domain/exposure.ts';
import { absentSignal, rescoredSignal } from '../../workflows/exposure/messages.ts';
import { crashConfig, registerCrashPorts } from './crashConfig.ts';
import {
  eventTypes,
  eventually,
  keepHistory,
  lifecycleConfig,
  newPortLog,
  newScan,
  registerRecordingPorts,
  seedExposures,
  untilState,
  view,
} from './support.ts';

let db: TestDatabase;
let temporal: TestTemporal;
beforeAll(async () => {
  db = await testDatabase();
  temporal = await testTemporal();
  await db.pool.query(
    `create table crash_calls (id bigserial primary key, kind text not null, key text not null, pid integer not null)`,
  );
  await db.pool.query(`create table crash_tickets (unit_id text primary key, key text not null)`);
  // The dispatcher runs in this process (as it would in `ctem ingest`): the same integrations here.
  registerCrashPorts(db.pool);
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
  it('loses nothing and repeats no side effect when the worker is killed mid-lifecycle', async () => {
    const config = crashConfig();
    const taskQueue = temporal.taskQueue('crash');
    const first = await startWorkerProcess(taskQueue, { SLOW_TICKET: '1' });

    const s = await seedExposures(db.pool, {
      scope: 'crash',
      weaknesses: ['CVE-2099-4001'],
      package: { name: 'zlib', fixedVersion: '1.3.1' },
    });
    const id = s.ids[0]!;
    await dispatchChanges(
      { pool: db.pool, config, baseDir: process.cwd() },
      temporal.client,
      [{ exposureId: id, change: 'new', scanId: s.scanId, at: s.at }],
      {
        taskQueue,
        heartbeatTimeoutMs: 2_000,
      },
    );
    await untilState(temporal.client, id, 'awaiting-decision');
    expect(
      await applyDecision(temporal.client, id, {
        kind: 'approve',
        actor: { personId: 'olivia', via: 'api' },
      }),
    ).toEqual({ ok: true, state: 'remediating' });

    // The remote ticket exists; the activity has not answered. Kill the worker now.
    await eventually(
      'the remote ticket created',
      () => calls('ticket-create'),
      (c) => c.length === 1,
    );
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    expect(first.signalCode).toBe('SIGKILL');

    const second = await startWorkerProcess(taskQueue);
    const verifying = await untilState(temporal.client, id, 'verifying', 45_000);
    expect(verifying.history.map((h) => [h.decision.kind, h.decision.actor.personId])).toEqual([
      ['approve', 'olivia'],
    ]);
    const scan = await newScan(db.pool, 'crash', new Date(Date.now() + 1_000));
    await temporal.client.workflow
      .getHandle(exposureWorkflowId(id))
      .signal(absentSignal, { scanId: scan.scanId, at: scan.at });
    const final = await temporal.client.workflow.getHandle(exposureWorkflowId(id)).result();
    expect(final.state).toBe('resolved');

    // Side effects: one ticket (the retry found it), one patch job, one decision request, one close.
    expect(await calls('ticket-create')).toHaveLength(1);
    expect((await calls('ticket-found')).map((c) => c.pid)).toEqual([second.pid]);
    expect(await calls('patch-apply')).toHaveLength(1);
    // The owner was asked once, by the dispatcher (this process), before the crash; not again after.
    const notifies = await calls('notify');
    expect(notifies).toEqual([{ key: expect.stringMatching(/:decision-request:scan:/), pid: process.pid }]);
    await eventually(
      'the ticket closed',
      () => calls('ticket-close'),
      (c) => c.length === 1,
    );

    // One event per step, exactly as an uninterrupted run records them.
    expect(await eventTypes(db.pool, id)).toEqual([
      'triaged',
      'validated',
      'notified',
      'awaiting-decision',
      'approve',
      'ticket-opened',
      'patch-applied',
      'verifying',
      'rescan-unavailable',
      'resolved',
      'ticket-closed',
    ]);
    const row = (await db.pool.query('select state, verified_scan_id from exposures where id = $1', [id]))
      .rows[0];
    expect(row).toEqual({ state: 'resolved', verified_scan_id: scan.scanId });
  });

  it('continues as new before the history grows large, carrying its state, and keeps working', async () => {
    const log = newPortLog();
    registerRecordingPorts(log);
    const config = lifecycleConfig();
    const taskQueue = temporal.taskQueue('can');
    const worker = await temporal.worker({ taskQueue, pool: db.pool, config });
    await worker.runUntil(async () => {
      const s = await seedExposures(db.pool, { scope: 'prod', weaknesses: ['CVE-2099-4002'] });
      const id = s.ids[0]!;
      await dispatchChanges(
        { pool: db.pool, config, baseDir: process.cwd() },
        temporal.client,
        [{ exposureId: id, change: 'new', scanId: s.scanId, at: s.at }],
        {
          taskQueue,
          historyLimit: 40,
        },
      );
      await untilState(temporal.client, id, 'awaiting-decision');
      const handle = temporal.client.workflow.getHandle(exposureWorkflowId(id));
      const firstRun = (await handle.describe()).runId;
      await applyDecision(temporal.client, id, {
        kind: 'snooze',
        actor: { personId: 'olivia', via: 'api' },
        until: new Date(Date.now() + 86_400_000).toISOString(),
      });
      let after = await view(temporal.client, id);
      for (let i = 1; i <= 25; i++) {
        await handle.signal(rescoredSignal, {
          priority: 'Attend',
          slaDue: new Date(Date.parse(s.at) + i * 60_000).toISOString(),
          reasons: [`re-score ${i}`],
          policyVersion: `v${i}`,
        });
        after = await eventually(
          `re-score ${i}`,
          () => view(temporal.client, id),
          (v) => v.policyVersion === `v${i}`,
        );
      }
      const desc = await handle.describe();
      expect(desc.runId).not.toBe(firstRun);
      expect(desc.historyLength).toBeLessThan(120);
      // State carried over: the decision history, the pause, the re-scores.
      expect(after.state).toBe('snoozed');
      expect(after.slaPaused).toBe(true);
      expect(after.history.map((h) => h.decision.kind)).toEqual(['snooze']);
      expect(after.reasons).toEqual(['re-score 25']);
      // And the new run still takes decisions, recorded with fresh (never reused) keys.
      expect(
        await applyDecision(temporal.client, id, {
          kind: 'approve',
          actor: { personId: 'olivia', via: 'api' },
        }),
      ).toEqual({ ok: true, state: 'remediating' });
      const { rows } = await db.pool.query<{ n: number; keys: number }>(
        `select count(*)::int as n, count(distinct idempotency_key)::int as keys from events where exposure_id = $1`,
        [id],
      );
      expect(rows[0]!.n).toBe(rows[0]!.keys);
      expect((await eventTypes(db.pool, id)).filter((t) => t === 'rescored')).toHaveLength(25);
      await applyDecision(temporal.client, id, {
        kind: 'markFalsePositive',
        actor: { personId: 'olivia', via: 'api' },
        reason: 'done',
      });
      await handle.result();
      await keepHistory(temporal.client, id, 'continued-as-new');
    });
  });
});
