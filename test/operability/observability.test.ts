// What an operator sees: /metrics scraped over HTTP (workflows by type and status from Temporal,
// exposures by state, SLA breaches and overdue exposures, activity failures, ingest rate, refused
// requests), and the structured log of a worker, whose activity lines carry the workflow id, run id,
// activity type and exposure id. Everything runs for real: the test Temporal server, PostgreSQL, a
// worker with the project's workflows and activities.
import path from 'node:path';
import { Writable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Worker } from '@temporalio/worker';
import { createLogger } from '../../runtime/log.ts';
import { withLogFields } from '../../runtime/logContext.ts';
import { CtemMetrics } from '../../app/metrics.ts';
import { HttpServer } from '../../bots/http.ts';
import { RefusalAudit } from '../../bots/audit.ts';
import { createWorker } from '../../worker/worker.ts';
import { createPool } from '../../runtime/pool.ts';
import { ingestFile } from '../../ingest/file.ts';
import { dispatchChanges } from '../../lifecycle/dispatch.ts';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import {
  campaignOf,
  eventually,
  lifecycleConfig,
  newPortLog,
  recordingPorts,
  seedExposures,
  untilState,
} from '../lifecycle/support.ts';
import { testDeps } from '../support/deps.ts';

let db: TestDatabase;
let temporal: TestTemporal;
let metrics: CtemMetrics;
let http: HttpServer;
let base: string;
const lines: Record<string, unknown>[] = [];
const workers: { worker: Worker; running: Promise<void> }[] = [];

const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const l of chunk.toString('utf8').split('\n').filter(Boolean))
      lines.push(JSON.parse(l) as Record<string, unknown>);
    done();
  },
});
const log = createLogger('ctem-test', 'debug', sink);
const config = lifecycleConfig();
const ports = recordingPorts(newPortLog());

async function startWorker(taskQueue: string, pool = db.pool) {
  const worker = await createWorker({
    connection: temporal.nativeConnection,
    namespace: 'default',
    taskQueue,
    deps: testDeps({ pool, config, log, workerName: 'observability-test', registry: ports }),
    workflowBundle: { codePath: inject('workflowBundlePath') },
    extra: { interceptors: { activity: [metrics.activityInterceptor()] } },
  });
  const running = worker.run();
  workers.push({ worker, running });
  return worker;
}

async function scrape(): Promise<string> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return await res.text();
}

function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.indexOf('}'));
    const got = Object.fromEntries([...body.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v))
      return Number(line.slice(line.indexOf('}') + 1));
  }
  return undefined;
}

beforeAll(async () => {
  db = await testDatabase();
  temporal = await testTemporal();
  metrics = new CtemMetrics(db.pool).useTemporal(temporal.client);
  http = new HttpServer(log);
  // The route as runtime/stack.ts mounts it.
  http.route('GET', '/metrics', async (_req, res) => {
    const body = await metrics.registry.metrics();
    res.writeHead(200, { 'content-type': metrics.registry.contentType });
    res.end(body);
  });
  base = `http://127.0.0.1:${await http.listen(0, '127.0.0.1')}`;
});

afterAll(async () => {
  for (const w of workers) {
    if (w.worker.getState() === 'RUNNING') w.worker.shutdown();
    await w.running.catch(() => undefined);
  }
  await http.close();
});

describe('/metrics', () => {
  it('exposes workflows by type and status, exposures by state, SLA breaches and overdue exposures', async () => {
    const taskQueue = temporal.taskQueue('metrics');
    await startWorker(taskQueue);
    const s = await seedExposures(db.pool, { scope: 'prod', weaknesses: ['CVE-2099-7001', 'CVE-2099-7002'] });
    await dispatchChanges(
      testDeps({ pool: db.pool, config, registry: ports }),
      temporal.client,
      s.ids.map((id) => ({ exposureId: id, change: 'new' as const, scanId: s.scanId, at: s.at })),
      { taskQueue },
    );
    for (const id of s.ids) await untilState(temporal.client, db.pool, id, 'awaiting-decision');
    // One of them breached its SLA earlier and is still open; the other is past due now.
    await db.pool.query(
      `update exposures set sla_breached_at = now() - interval '1 hour', sla_due = now() - interval '2 hours' where id = $1`,
      [s.ids[0]],
    );
    await db.pool.query(`update exposures set sla_due = now() - interval '1 minute' where id = $1`, [
      s.ids[1],
    ]);

    // Their lifecycles run in campaign workflows (one per fix, scope and owner); other files' tests share
    // the Temporal namespace, hence at least.
    const campaigns = new Set(
      await Promise.all(s.ids.map(async (id) => (await campaignOf(db.pool, id)).workflowId)),
    );
    const text = await eventually(
      'campaign workflows counted by Temporal visibility',
      () => scrape(),
      (t) =>
        (sample(t, 'ctem_workflows', { type: 'campaignWorkflow', status: 'Running' }) ?? 0) >= campaigns.size,
    );
    expect(text).toMatch(/^# TYPE ctem_workflows gauge$/m);
    const { rows } = await db.pool.query<{ state: string; priority: string | null; n: number }>(
      `select state, priority, count(*)::int as n from exposures where scope = 'prod' group by 1, 2`,
    );
    for (const r of rows)
      expect(
        sample(text, 'ctem_exposures', { state: r.state, priority: r.priority ?? 'none', scope: 'prod' }),
      ).toBe(r.n);
    expect(sample(text, 'ctem_sla_breaches', { scope: 'prod', open: 'true' })).toBe(1);
    const overdue = (
      await db.pool.query<{ priority: string }>(`select priority from exposures where id = $1`, [s.ids[1]])
    ).rows[0]!;
    expect(
      sample(text, 'ctem_sla_overdue', { scope: 'prod', priority: overdue.priority }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('exposes the ingest rate, refused requests and activity failures', async () => {
    const file = path.resolve('test/fixtures/scans/nessus-fields.nessus');
    const summary = await ingestFile(db.pool, file, { scopes: [] });
    const { rows } = await db.pool.query<{ n: number }>(
      `select finding_count as n from scans where id = $1`,
      [summary.scanId],
    );
    expect(rows[0]!.n).toBeGreaterThan(0);

    await new RefusalAudit(db.pool, log).record({
      channel: 'jira',
      route: '/webhooks/jira',
      status: 401,
      reason: 'test',
    });

    // A worker whose database is gone: the heartbeat activity fails on every attempt.
    const broken = createPool('postgres://nobody:nothing@127.0.0.1:1/nowhere', 1);
    const taskQueue = temporal.taskQueue('broken');
    await startWorker(taskQueue, broken);
    await expect(
      temporal.client.workflow.execute('healthProbe', {
        taskQueue,
        workflowId: `exposure-obs-${randomUUID()}`,
        args: ['probe'],
        workflowExecutionTimeout: '60s',
      }),
    ).rejects.toThrow();
    await broken.end();

    const text = await scrape();
    expect(sample(text, 'ctem_ingest_findings_per_second', { scanner: 'nessus' })).toBeCloseTo(
      rows[0]!.n / 300,
      5,
    );
    expect(sample(text, 'ctem_ingested_findings', { scanner: 'nessus' })).toBeGreaterThanOrEqual(rows[0]!.n);
    expect(sample(text, 'ctem_requests_refused_total', { channel: 'jira' })).toBeGreaterThanOrEqual(1);
    expect(
      sample(text, 'ctem_activity_failures_total', { activity: 'recordHeartbeat', retryable: 'true' }),
    ).toBe(3);
  });
});

describe('structured logs', () => {
  it('activity lines carry the workflow id, run id, activity type and campaign id', async () => {
    const taskQueue = temporal.taskQueue('logs');
    await startWorker(taskQueue);
    const campaignId = `cmp:prod:olivia:${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const workflowId = `campaign-${campaignId}~2`;
    const handle = await temporal.client.workflow.start('healthProbe', {
      taskQueue,
      workflowId,
      args: ['probe-logs'],
    });
    await handle.result();
    const done = lines.find((l) => l.msg === 'activity completed' && l.workflowId === workflowId);
    expect(done).toMatchObject({
      workflowId,
      runId: handle.firstExecutionRunId,
      workflowType: 'healthProbe',
      activityType: 'recordHeartbeat',
      campaignId,
      attempt: 1,
    });
    // The failed attempts of the broken worker, each with its attempt number and the error.
    const failed = lines.filter(
      (l) => l.msg === 'activity attempt failed' && String(l.workflowId).startsWith('exposure-obs-'),
    );
    expect(failed.map((l) => l.attempt)).toEqual([1, 2, 3]);
    for (const l of failed)
      expect(l).toMatchObject({ activityType: 'recordHeartbeat', level: 40, err: expect.anything() });
    // The connection string of the broken pool (with its password) never reached the log.
    expect(JSON.stringify(lines)).not.toMatch(/nothing@/);
  });

  it('any line written inside an activity scope gets its fields from the context (pino mixin)', () => {
    withLogFields(
      { workflowId: 'exposure-1:CVE-X', exposureId: '1:CVE-X', activityType: 'notifyOwner' },
      () => log.child({ part: 'chat' }).info({ channel: 'D0X' }, 'sent'),
    );
    log.info('outside');
    expect(lines.find((l) => l.msg === 'sent')).toMatchObject({
      workflowId: 'exposure-1:CVE-X',
      exposureId: '1:CVE-X',
      activityType: 'notifyOwner',
      part: 'chat',
      channel: 'D0X',
    });
    expect(lines.find((l) => l.msg === 'outside')).not.toHaveProperty('exposureId');
  });
});
