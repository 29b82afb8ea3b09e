// `npm run bench:fanout [-- --exposures 10000 --per-asset 5 --concurrency 16 --ephemeral --memory --queued]`
//
// One scan brings N new exposures (default 10,000: 2,000 hosts × 5 CVEs, two CVEs per package so
// units group them). The lifecycle's dispatcher triages them set-based, starts one exposure
// workflow each, asks each remediation unit's owner once, and records triaged → validated →
// notified → awaiting-decision for every exposure in a few statements per batch of 1,000. An
// exposure is done when both are true: its records are committed, and its workflow has completed
// its first workflow task (it holds its SLA timer and answers decisions). Figures:
//   exposures_per_s      — N / (dispatch start → the last exposure done)               (target ≥ 200/s)
//   latency_p50/p99_ms   — dispatch start → that exposure done
//   dispatch_ms + phases — where the dispatcher spent its time (read, triage, temporal, notify, record)
// On the embedded stack as `ctem up` runs it: PostgreSQL (durable unless --ephemeral), the Temporal
// dev server with its SQLite file (in memory with --memory, for comparison), one worker process.
// One JSON line per figure on stdout.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { parseConfig } from '../domain/config.ts';
import { createPool } from '../runtime/pool.ts';
import { migrate } from '../runtime/migrate.ts';
import { startEmbeddedPostgres, ensureDatabase } from '../runtime/postgres.ts';
import { startTemporalDevServer } from '../runtime/temporal.ts';
import { freePort } from '../runtime/ports.ts';
import { createWorker, installWorkerRuntime } from '../worker/worker.ts';
import { dispatchScan } from '../lifecycle/dispatch.ts';
import { compose } from '../app/compose.ts';
import type { Notifier } from '../domain/ports.ts';
import { exposureWorkflowId } from '../domain/exposure.ts';

const { values } = parseArgs({
  options: {
    exposures: { type: 'string', default: '10000' },
    'per-asset': { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '16' },
    ephemeral: { type: 'boolean', default: false },
    memory: { type: 'boolean', default: false },
    queued: { type: 'boolean', default: false },
  },
});
const total = Number(values.exposures);
const perAsset = Number(values['per-asset']);
const concurrency = Number(values.concurrency);
if (!(total > 0) || !(perAsset > 0) || !(concurrency > 0))
  throw new Error('--exposures, --per-asset and --concurrency must be positive numbers');
const assets = Math.ceil(total / perAsset);

const say = (line: string) => process.stderr.write(`bench:fanout: ${line}\n`);
function figure(
  name: string,
  value: number,
  unit: string,
  target?: { min?: number; max?: number },
  extra: Record<string, unknown> = {},
): void {
  const rounded = Math.round(value * 100) / 100;
  const ok = target
    ? (target.min === undefined || rounded >= target.min) &&
      (target.max === undefined || rounded <= target.max)
    : undefined;
  process.stdout.write(
    `${JSON.stringify({ bench: 'fanout', figure: name, value: rounded, unit, ...(target ? { target: target.min ?? target.max, ok } : {}), ...extra })}\n`,
  );
}
function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN;
}

const workDir = mkdtempSync(path.join(os.tmpdir(), 'ctem-bench-fanout-'));
chmodSync(workDir, 0o755);
const log = pino({ level: process.env.CTEM_BENCH_LOG ?? 'error' });
const stops: (() => Promise<void>)[] = [];
// Interrupted: still stop the servers this started.
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    void (async () => {
      for (const stop of stops.reverse()) await stop().catch(() => undefined);
      rmSync(workDir, { recursive: true, force: true });
      process.exit(130);
    })();
  });
try {
  say(
    `starting PostgreSQL${values.ephemeral ? ' (ephemeral)' : ''} and Temporal (${total} exposures on ${assets} hosts)`,
  );
  const [pg, temporal] = await Promise.all([
    startEmbeddedPostgres({
      dataDir: path.join(workDir, 'pg'),
      port: await freePort(),
      ephemeral: values.ephemeral,
    }),
    startTemporalDevServer({
      port: await freePort(),
      headless: true,
      logLevel: 'error',
      dbFile: path.join(workDir, 'temporal.db'),
    }),
  ]);
  stops.push(
    () => pg.stop(),
    () => temporal.stop(),
  );
  const url = await ensureDatabase(pg.url, 'bench_fanout');
  const pool = createPool(url, 40);
  stops.push(() => pool.end());
  await migrate(pool);

  const config = parseConfig(`
version: 1
people:
  - { id: olivia, name: Olivia Owner }
integrations:
  benchcount: {}
scopes:
  - name: bench
    internetFacing: true
    criticality: high
    roles: { owner: [olivia] }
`);
  // A notifier that counts what it is asked to send (one per remediation unit is the goal).
  let notified = 0;
  const benchcount: Notifier = {
    name: 'benchcount',
    async notify(n) {
      notified++;
      return { delivered: [{ via: 'benchcount', ref: n.key }] };
    },
  };

  say('seeding one scan with its new exposures');
  const seedStart = performance.now();
  await pool.query(`insert into scopes (name) values ('bench')`);
  const scan = await pool.query<{ id: number }>(
    `insert into scans (scanner, format, source, scope, started_at, finished_at) values ('bench', 'bench', 'synthetic', 'bench', now(), now()) returning id`,
  );
  const scanId = scan.rows[0]!.id;
  await pool.query(
    `insert into assets (identity_key, kind, hostname, scope, criticality)
     select 'host:bench-' || i, 'host', 'bench-' || i, 'bench', 'high' from generate_series(1, $1) as i`,
    [assets],
  );
  await pool.query(
    `insert into vulnerabilities (key, title, reported_cvss)
     select 'CVE-2099-' || lpad(j::text, 5, '0'), 'synthetic ' || j,
            '[{"version":"3.1","vector":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]'::jsonb
       from generate_series(1, $1) as j`,
    [perAsset],
  );
  await pool.query(
    `with x as (
       select a.id as asset_id, j, a.id || ':CVE-2099-' || lpad(j::text, 5, '0') as id, 'CVE-2099-' || lpad(j::text, 5, '0') as k
         from assets a, generate_series(1, $2) as j where a.scope = 'bench' and (a.id - 1) * $2 + j <= $1)
     , e as (
       insert into exposures (id, asset_id, vuln_key, scope, state, first_seen, last_seen, first_scan_id, last_scan_id)
       select id, asset_id, k, 'bench', 'open', now(), now(), $3, $3 from x returning id)
     insert into observations (exposure_id, scanner, asset_id, vuln_key, first_seen, last_seen, first_scan_id, last_scan_id,
                               kind, title, severity, package_name, package_version, fixed_version, package_type)
     select x.id, 'bench', x.asset_id, x.k, now(), now(), $3, $3, 'vulnerability', 'synthetic', 'critical',
            'pkg' || ((x.j + 1) / 2), '1.0', '1.' || x.j, 'deb'
       from x`,
    [total, perAsset, scanId],
  );
  say(`seeded in ${Math.round(performance.now() - seedStart)} ms`);

  installWorkerRuntime(log, 'ERROR');
  const nativeConnection = await NativeConnection.connect({ address: temporal.address });
  stops.push(() => nativeConnection.close());
  // By default the dispatcher's client shares the worker's connection, as in the scan cycle's
  // dispatch activity, so starts are eager; --queued starts them through a client of its own, as
  // `ctem ingest` does from a shell (the first task goes through the task queue).
  const connection = values.queued ? await Connection.connect({ address: temporal.address }) : undefined;
  if (connection) stops.push(() => connection.close());
  const client = new Client({ connection: connection ?? nativeConnection, namespace: 'default' });
  const taskQueue = 'bench-fanout';
  const { deps } = compose({
    pool,
    config,
    baseDir: process.cwd(),
    log,
    registry: (builtIn) => ({
      ...builtIn,
      notifiers: { ...builtIn.notifiers, benchcount: () => benchcount },
    }),
  });
  const worker = await createWorker({
    connection: nativeConnection,
    namespace: 'default',
    taskQueue,
    deps,
    extra: { maxCachedWorkflows: Math.max(1000, Math.min(total, 20_000)) },
  });
  const running = worker.run();
  stops.push(async () => {
    worker.shutdown();
    await running;
  });

  say('dispatching');
  const t0 = Date.now();
  const dispatched = await dispatchScan(deps, client, scanId, {
    taskQueue,
    concurrency,
  });
  const dispatchMs = Date.now() - t0;
  say(`dispatch: ${dispatched.started} started in ${dispatchMs} ms (${JSON.stringify(dispatched.phasesMs)})`);

  // When each exposure was done: its batch's records committed (lifecycle_dispatches is written
  // after them) and its workflow's first task completed (from its history).
  const { rows } = await pool.query<{ exposure_id: string; recorded_ms: number }>(
    `select exposure_id, extract(epoch from at) * 1000 as recorded_ms from lifecycle_dispatches where scan_id = $1`,
    [scanId],
  );
  say(`reading ${rows.length} workflow histories for their first completed task`);
  const done: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < rows.length) {
        const r = rows[next++]!;
        let first: number | undefined;
        for (let attempt = 0; first === undefined; attempt++) {
          const history = await client.workflow.getHandle(exposureWorkflowId(r.exposure_id)).fetchHistory();
          const completed = history.events?.find((e) => e.workflowTaskCompletedEventAttributes);
          if (completed?.eventTime)
            first =
              Number(completed.eventTime.seconds) * 1000 + Math.floor((completed.eventTime.nanos ?? 0) / 1e6);
          else if (attempt > 600)
            throw new Error(`${r.exposure_id}: no workflow task completed after 10 minutes`);
          else await new Promise((res) => setTimeout(res, 1000));
        }
        done.push(Math.max(Number(r.recorded_ms), first) - t0);
      }
    }),
  );
  const endToEnd = done.sort((a, b) => a - b);
  const wallMs = endToEnd.at(-1)!;
  const counts = await pool.query<{ events: number; units: number; notifications: number }>(
    `select (select count(*)::int from events) as events, (select count(*)::int from remediation_units) as units,
            (select count(*)::int from notifications) as notifications`,
  );
  const c = counts.rows[0]!;

  figure(
    'exposures_per_s',
    (total / wallMs) * 1000,
    'exposures/s',
    { min: 200 },
    { exposures: total, wall_ms: Math.round(wallMs) },
  );
  figure('latency_p50_ms', percentile(endToEnd, 50), 'ms');
  figure('latency_p99_ms', percentile(endToEnd, 99), 'ms');
  figure('dispatch_ms', dispatchMs, 'ms', undefined, {
    started: dispatched.started,
    eagerly_started: dispatched.eagerlyStarted,
    phases_ms: Object.fromEntries(Object.entries(dispatched.phasesMs).map(([k, v]) => [k, Math.round(v)])),
  });
  figure('events_written', c.events, 'rows', undefined, {
    per_exposure: Math.round((c.events / total) * 100) / 100,
  });
  figure('notifications_sent', notified, 'messages', undefined, {
    units: c.units,
    notification_rows: c.notifications,
  });
} finally {
  for (const stop of stops.reverse())
    await stop().catch((err: unknown) => say(`stop failed: ${(err as Error).message}`));
  rmSync(workDir, { recursive: true, force: true });
}
