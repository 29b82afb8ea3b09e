// `npm run bench:decide [-- --exposures 1000 --decisions 40]`
//
// One decision on a large campaign: a campaign of N exposures (one fix on N hosts), decided again and
// again (a risk acceptance renewed with a new expiry each time: each decision applies to every
// exposure, and writes its N records), as the campaign workflow's `decide` update — what
// lifecycle/decide.ts sends for the bots, sent here directly with an update id so that each one is
// found in the history. Figures:
//   decision_held_p50/p99_ms — sending the update → Temporal's history holding it (the update's
//                              Accepted event): the decision is durable and validated;
//   decision_done_p50/p99_ms — sending → the answer back, every exposure's record written;
// each next to the same figure for an update that does nothing on a bare workflow, measured in the
// same run on the same server (the engine's own floor). Embedded stack as `ctem up` runs it.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { parseConfig } from '../domain/config.ts';
import { createPool } from '../runtime/pool.ts';
import { migrate } from '../runtime/migrate.ts';
import { startEmbeddedPostgres, ensureDatabase } from '../runtime/postgres.ts';
import { startTemporalDevServer } from '../runtime/temporal.ts';
import { freePort } from '../runtime/ports.ts';
import { projectRoot } from '../runtime/paths.ts';
import { createWorker, installWorkerRuntime } from '../worker/worker.ts';
import { dispatchScan } from '../lifecycle/dispatch.ts';
import { compose } from '../app/compose.ts';
import { campaignQuery, campaignWorkflowId, decideUpdate } from '../contracts/campaign.ts';

const { values } = parseArgs({
  options: {
    exposures: { type: 'string', default: '1000' },
    decisions: { type: 'string', default: '40' },
  },
});
const total = Number(values.exposures);
const rounds = Number(values.decisions);
if (!(total > 0) || !(rounds > 0)) throw new Error('--exposures and --decisions must be positive numbers');

const say = (line: string) => process.stderr.write(`bench:decide: ${line}\n`);
function figure(
  name: string,
  value: number,
  unit: string,
  target?: { max: number },
  extra: Record<string, unknown> = {},
) {
  const rounded = Math.round(value * 100) / 100;
  process.stdout.write(
    `${JSON.stringify({ bench: 'decide', figure: name, value: rounded, unit, ...(target ? { target: target.max, ok: rounded <= target.max } : {}), ...extra })}\n`,
  );
}
const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : NaN;
};
const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
  t ? Number(String(t.seconds ?? 0)) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : NaN;

/** Server time at which each update id was accepted into the history. */
type History = Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>;

function acceptedAt(history: History): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of history.events ?? []) {
    const a = e.workflowExecutionUpdateAcceptedEventAttributes;
    const id = a?.acceptedRequest?.meta?.updateId;
    if (id) out.set(id, ms(e.eventTime));
  }
  return out;
}

const workDir = mkdtempSync(path.join(os.tmpdir(), 'ctem-bench-decide-'));
chmodSync(workDir, 0o755);
const log = pino({ level: process.env.CTEM_BENCH_LOG ?? 'error' });
const stops: (() => Promise<void>)[] = [];
try {
  const [pg, temporal] = await Promise.all([
    startEmbeddedPostgres({ dataDir: path.join(workDir, 'pg'), port: await freePort() }),
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
  const pool = createPool(await ensureDatabase(pg.url, 'bench_decide'), 20);
  stops.push(() => pool.end());
  await migrate(pool);
  const config = parseConfig(`
version: 1
people:
  - { id: olivia, name: Olivia Owner }
  - { id: lena, name: Lena Lead }
scopes:
  - name: bench
    criticality: high
    roles: { owner: [olivia], securityLead: [lena] }
    lifecycle: { maxRiskAcceptance: 365d }
`);
  say(`seeding one fix on ${total} hosts`);
  await pool.query(`insert into scopes (name) values ('bench')`);
  const scanId = (
    await pool.query<{ id: number }>(
      `insert into scans (scanner, format, source, scope, started_at, finished_at) values ('bench', 'bench', 'synthetic', 'bench', now(), now()) returning id`,
    )
  ).rows[0]!.id;
  await pool.query(
    `insert into assets (identity_key, kind, hostname, scope, criticality)
     select 'host:decide-' || i, 'host', 'decide-' || i, 'bench', 'high' from generate_series(1, $1) as i`,
    [total],
  );
  await pool.query(
    `insert into vulnerabilities (key, title, reported_cvss) values
       ('CVE-2099-0001', 'synthetic', '[{"version":"3.1","vector":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]')`,
  );
  await pool.query(
    `with e as (
       insert into exposures (id, asset_id, vuln_key, scope, state, first_seen, last_seen, first_scan_id, last_scan_id)
       select a.id || ':CVE-2099-0001', a.id, 'CVE-2099-0001', 'bench', 'open', now(), now(), $1, $1
         from assets a where a.scope = 'bench' returning id, asset_id)
     insert into observations (exposure_id, scanner, asset_id, vuln_key, first_seen, last_seen, first_scan_id, last_scan_id,
                               kind, title, severity, package_name, package_version, fixed_version, package_type)
     select e.id, 'bench', e.asset_id, 'CVE-2099-0001', now(), now(), $1, $1, 'vulnerability', 'synthetic', 'critical',
            'openssl', '3.0.1', '3.0.14', 'deb' from e`,
    [scanId],
  );

  installWorkerRuntime(log, 'ERROR');
  const nativeConnection = await NativeConnection.connect({ address: temporal.address });
  stops.push(() => nativeConnection.close());
  const client = new Client({ connection: nativeConnection, namespace: 'default' });
  const { deps } = compose({ pool, config, baseDir: process.cwd(), log });
  const worker = await createWorker({
    connection: nativeConnection,
    namespace: 'default',
    taskQueue: 'bench-decide',
    deps,
  });
  const running = worker.run();
  stops.push(async () => {
    worker.shutdown();
    await running;
  });
  const bareWorker = await Worker.create({
    connection: nativeConnection,
    namespace: 'default',
    taskQueue: 'bench-bare',
    workflowsPath: path.join(projectRoot, 'bench', 'workflows', 'bare.ts'),
  });
  const bareRunning = bareWorker.run();
  stops.push(async () => {
    bareWorker.shutdown();
    await bareRunning;
  });

  const r = await dispatchScan(deps, client, scanId, { taskQueue: 'bench-decide' });
  const { rows } = await pool.query<{ campaign_id: string }>('select distinct campaign_id from exposures');
  if (r.started !== 1 || rows.length !== 1)
    throw new Error(`expected one campaign, got ${rows.length} (${r.started} started)`);
  const handle = client.workflow.getHandle(campaignWorkflowId(rows[0]!.campaign_id, 1));
  for (;;) {
    const v = await handle.query(campaignQuery);
    if (v.exposures === total) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  say(`campaign ${rows[0]!.campaign_id} holds ${total} exposures; deciding ${rounds} times`);

  const sent = new Map<string, number>();
  const done: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const updateId = `decide-${i}`;
    const expires = new Date(Date.now() + (30 + i) * 86_400_000).toISOString();
    const t = Date.now();
    sent.set(updateId, t);
    const result = await handle.executeUpdate(decideUpdate, {
      updateId,
      args: [
        {
          decision: {
            kind: 'acceptRisk',
            actor: { personId: 'lena', via: 'api' },
            justification: `compensating control, round ${i}`,
            expires,
          },
        },
      ],
    });
    done.push(Date.now() - t);
    if (result.applied.length !== total)
      throw new Error(`round ${i}: applied to ${result.applied.length} of ${total}`);
  }
  const accepted = acceptedAt(await handle.fetchHistory());
  const held = [...sent].map(([id, t]) => (accepted.get(id) ?? NaN) - t);

  // The anchor: a do-nothing update on a bare workflow, on the same server.
  const bare = await client.workflow.start('bareUpdatable', {
    workflowId: 'bare-updatable',
    taskQueue: 'bench-bare',
  });
  const bareSent = new Map<string, number>();
  const bareDone: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const updateId = `touch-${i}`;
    const t = Date.now();
    bareSent.set(updateId, t);
    await bare.executeUpdate('touch', { updateId, args: [1] });
    bareDone.push(Date.now() - t);
  }
  const bareAccepted = acceptedAt(await bare.fetchHistory());
  const bareHeld = [...bareSent].map(([id, t]) => (bareAccepted.get(id) ?? NaN) - t);

  figure('decision_held_p50_ms', percentile(held, 50), 'ms', undefined, {
    anchor_bare_update_ms: percentile(bareHeld, 50),
  });
  figure(
    'decision_held_p99_ms',
    percentile(held, 99),
    'ms',
    { max: 1000 },
    {
      exposures: total,
      decisions: rounds,
      anchor_bare_update_ms: percentile(bareHeld, 99),
      ratio_to_anchor: Math.round((percentile(held, 99) / Math.max(1, percentile(bareHeld, 99))) * 10) / 10,
    },
  );
  figure('decision_done_p50_ms', percentile(done, 50), 'ms', undefined, {
    anchor_bare_update_ms: percentile(bareDone, 50),
  });
  figure('decision_done_p99_ms', percentile(done, 99), 'ms', undefined, {
    anchor_bare_update_ms: percentile(bareDone, 99),
  });
} finally {
  for (const stop of stops.reverse())
    await stop().catch((err: unknown) => say(`stop failed: ${(err as Error).message}`));
  rmSync(workDir, { recursive: true, force: true });
}
