// `npm run bench:onboard [-- --exposures 100000 --assets 5000 --scopes 10 --teams 5 --fixes 2000
//                            --anchor 10000 --baseline --ephemeral --temporal dev|server --shards 4]`
//
// A real estate's first scan: a synthetic `trivy k8s` report (bench/synth/estate.ts) of N exposures
// on M workloads (each its own image), S scopes of T teams (one owner each, by ownership rules),
// about F distinct fixes shared the way real estates share them, a few real CISA KEV CVEs among
// them. Ingested into the embedded stack as `ctem ingest` + the scan cycle's dispatch do it, with a
// Slack-like counting notifier, then measured:
//   durable_exposures_per_s — N / (scan file → every exposure's lifecycle durable in Temporal with its
//                             SLA timer armed: its campaign's first workflow task completed), next to
//   bare_engine_entities_per_s — one trivial workflow per entity that arms a timer, started eagerly
//                             on the same server in the same run (the engine's own ceiling), and
//                             their ratio; DefectDojo's import (164–170 findings/s) is quoted from the
//                             issue, measured on this machine earlier;
//   owner_messages_max / channel_messages_max — messages sent at once to one owner / one channel,
//                             with each owner's campaigns and their daily queue (one message);
//   escalations_from_history — SLA reminders and escalations the import set off (target 0);
//   temporal_peak_rss_mb / ctem_peak_rss_mb — peak memory of the Temporal server and of this
//                             process (ingest, dispatch and the worker, as `ctem up` runs them);
//   database_mb — the sizes of ctem's database and (on the Temporal server) Temporal's two.
// --temporal server runs it all on the real Temporal server with PostgreSQL persistence and
// visibility (runtime/temporalServer.ts, --shards history shards) instead of the CLI's dev server.
// One JSON line per figure on stdout; progress on stderr.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
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
import { startTemporalServer, TEMPORAL_SERVER_VERSION } from '../runtime/temporalServer.ts';
import { freePort } from '../runtime/ports.ts';
import { projectRoot } from '../runtime/paths.ts';
import { createWorker, installWorkerRuntime } from '../worker/worker.ts';
import { dispatchScan } from '../lifecycle/dispatch.ts';
import { sendDailyQueues } from '../lifecycle/queue.ts';
import { ingestFile } from '../ingest/file.ts';
import { loadKev } from '../intel/kev.ts';
import { compose } from '../app/compose.ts';
import type { DigestNotification, Notifier, OwnerNotification } from '../domain/ports.ts';
import { campaignWorkflowId } from '../domain/campaign.ts';
import { writeEstate } from './synth/estate.ts';

const { values } = parseArgs({
  options: {
    exposures: { type: 'string', default: '100000' },
    assets: { type: 'string', default: '5000' },
    scopes: { type: 'string', default: '10' },
    teams: { type: 'string', default: '5' },
    fixes: { type: 'string', default: '2000' },
    anchor: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '64' },
    baseline: { type: 'boolean', default: false },
    ephemeral: { type: 'boolean', default: false },
    temporal: { type: 'string', default: 'dev' },
    shards: { type: 'string', default: '4' },
  },
});
if (values.temporal !== 'dev' && values.temporal !== 'server')
  throw new Error('--temporal must be dev or server');
const onServer = values.temporal === 'server';
const n = (k: keyof typeof values) => {
  const v = Number(values[k]);
  if (!(v > 0)) throw new Error(`--${k} must be a positive number`);
  return v;
};
const total = n('exposures');
const assets = n('assets');
const scopes = n('scopes');
const teams = n('teams');
const fixes = n('fixes');
const anchorCount = n('anchor');
const concurrency = n('concurrency');

const say = (line: string) => process.stderr.write(`bench:onboard: ${line}\n`);
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
    `${JSON.stringify({ bench: 'onboard', figure: name, value: rounded, unit, ...(target ? { target: target.min ?? target.max, ok } : {}), ...extra })}\n`,
  );
}

/** Peak resident memory of a process, from /proc (VmHWM), in MB. */
function peakRssMb(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** A file's size with its SQLite write-ahead log, in MB (0 when absent). */
function fileMb(file: string): number {
  let bytes = 0;
  for (const f of [file, `${file}-wal`]) if (existsSync(f)) bytes += statSync(f).size;
  return bytes / 1048576;
}

/** Server time of each workflow's first completed task, read from its history (32 at a time). */
async function firstTaskDone(
  client: Client,
  workflowIds: string[],
  opts: { requireTimer: boolean },
): Promise<{ doneAt: number[]; withoutTimer: number }> {
  const doneAt: number[] = [];
  let withoutTimer = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < workflowIds.length) {
        const id = workflowIds[next++]!;
        for (let attempt = 0; ; attempt++) {
          const history = await client.workflow.getHandle(id).fetchHistory();
          const events = history.events ?? [];
          const completed = events.find((e) => e.workflowTaskCompletedEventAttributes);
          if (completed?.eventTime) {
            doneAt.push(
              Number(completed.eventTime.seconds) * 1000 + Math.floor((completed.eventTime.nanos ?? 0) / 1e6),
            );
            if (opts.requireTimer && !events.some((e) => e.timerStartedEventAttributes)) withoutTimer++;
            break;
          }
          if (attempt > 600) throw new Error(`${id}: no workflow task completed after 10 minutes`);
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    }),
  );
  return { doneAt, withoutTimer };
}

function configText(): string {
  const people: string[] = [];
  const scopeBlocks: string[] = [];
  for (let s = 0; s < scopes; s++) {
    const owners: string[] = [];
    const rules: string[] = [];
    for (let t = 0; t < teams; t++) {
      const team = s * teams + t;
      const id = `owner-${team}`;
      owners.push(id);
      people.push(`  - { id: ${id}, name: Owner ${team}, manager: manager-${s} }`);
      rules.push(
        `      - { owner: ${id}, match: { images: ['registry.example.com/scope-${s}/team-${team}/*'] } }`,
      );
    }
    people.push(`  - { id: manager-${s}, name: Manager ${s} }`);
    scopeBlocks.push(
      [
        `  - name: scope-${s}`,
        `    internetFacing: ${s % 3 === 0}`,
        `    criticality: ${['critical', 'high', 'medium'][s % 3]}`,
        `    match: { images: ['registry.example.com/scope-${s}/*'] }`,
        `    roles: { owner: [${owners.join(', ')}], securityLead: [lead], ciso: [ciso] }`,
        `    channel: { slack: C${String(s).padStart(4, '0')} }`,
        `    ownership:`,
        ...rules,
      ].join('\n'),
    );
  }
  people.push('  - { id: lead, name: Security Lead }', '  - { id: ciso, name: The CISO }');
  return `version: 1\npeople:\n${people.join('\n')}\nintegrations:\n  benchcount: {}\nscopes:\n${scopeBlocks.join('\n')}\n`;
}

const workDir = mkdtempSync(path.join(os.tmpdir(), 'ctem-bench-onboard-'));
chmodSync(workDir, 0o755);
const log = pino({ level: process.env.CTEM_BENCH_LOG ?? 'error' });
const stops: (() => Promise<void>)[] = [];
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
    `starting PostgreSQL and Temporal (${total} exposures on ${assets} assets, ${scopes} scopes × ${teams} owners)`,
  );
  const pg = await startEmbeddedPostgres({
    dataDir: path.join(workDir, 'pg'),
    port: await freePort(),
    ephemeral: values.ephemeral,
  });
  stops.push(() => pg.stop());
  const temporal = onServer
    ? await startTemporalServer({
        databaseUrl: pg.url,
        dir: path.join(workDir, 'temporal-server'),
        port: 20_000 + Math.floor(Math.random() * 10_000),
        shards: n('shards'),
        maxConns: 40,
        logLevel: 'error',
      })
    : await startTemporalDevServer({
        port: await freePort(),
        headless: true,
        logLevel: 'error',
        dbFile: path.join(workDir, 'temporal.db'),
      });
  say(
    `Temporal: ${onServer ? `the Temporal server ${TEMPORAL_SERVER_VERSION} on PostgreSQL, ${n('shards')} shards` : 'the CLI dev server (SQLite)'}`,
  );
  stops.push(() => temporal.stop());
  const url = await ensureDatabase(pg.url, 'bench_onboard');
  const pool = createPool(url, 40);
  stops.push(() => pool.end());
  await migrate(pool);
  const config = parseConfig(configText());

  // Real KEV entries give the estate some urgent work, as a real estate has.
  const kevFile = path.join(
    projectRoot,
    '..',
    'shared',
    'data',
    'feeds',
    'kev',
    'known_exploited_vulnerabilities.json',
  );
  let kevCves: string[] = [];
  if (existsSync(kevFile)) {
    await loadKev(pool, kevFile);
    kevCves = (
      await pool.query<{ cve: string }>(
        `select cve from kev_entries where valid_to is null order by cve desc limit 400`,
      )
    ).rows.map((r) => r.cve);
  } else say(`no KEV catalog at ${kevFile}: the estate has no KEV CVEs (fewer urgent campaigns)`);

  const file = path.join(workDir, 'estate.trivy-k8s.json');
  const written = await writeEstate(file, {
    exposures: total,
    assets,
    scopes,
    teamsPerScope: teams,
    fixes,
    kevCves,
    createdAt: new Date(),
  });
  say(
    `wrote ${file}: ${(written.bytes / 1e6).toFixed(1)} MB, ${written.exposures} findings, ${written.fixes} fixes`,
  );

  // What each person and channel is sent, counted as a chat integration would deliver it.
  const toPeople = new Map<string, number>();
  const toChannels = new Map<string, number>();
  const queues = new Map<string, number>();
  const count = (to: string[], channels: OwnerNotification['channels'], into: Map<string, number>) => {
    for (const p of to) into.set(p, (into.get(p) ?? 0) + 1);
    for (const c of Object.values(channels ?? {})) if (c) toChannels.set(c, (toChannels.get(c) ?? 0) + 1);
  };
  const benchcount: Notifier = {
    name: 'benchcount',
    async notify(m: OwnerNotification) {
      count(m.to, m.channels, toPeople);
      return { delivered: [{ via: 'benchcount', ref: m.key }] };
    },
    async digest(m: DigestNotification) {
      count(m.to, m.channels, m.kind === 'queue' ? queues : toPeople);
      return { delivered: [{ via: 'benchcount', ref: m.key }] };
    },
  };

  installWorkerRuntime(log, 'ERROR');
  const nativeConnection = await NativeConnection.connect({ address: temporal.address });
  stops.push(() => nativeConnection.close());
  // The dispatcher's client shares the worker's connection, as in the scan cycle's dispatch
  // activity, so campaign workflows start eagerly.
  const client = new Client({ connection: nativeConnection, namespace: 'default' });
  const taskQueue = 'bench-onboard';
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
  });
  const running = worker.run();
  stops.push(async () => {
    worker.shutdown();
    await running;
  });

  say(`ingesting and dispatching${values.baseline ? ' (baseline: a backlog import)' : ''}`);
  const t0 = Date.now();
  const summary = await ingestFile(pool, file, { scopes: config.scopes });
  const ingestMs = Date.now() - t0;
  const dispatched = await dispatchScan(deps, client, summary.scanId, {
    taskQueue,
    concurrency,
    ...(values.baseline ? { baseline: true } : {}),
  });
  const dispatchedAt = Date.now();
  say(
    `ingest ${ingestMs} ms; dispatch ${dispatchedAt - t0 - ingestMs} ms: ${dispatched.started} started (${dispatched.eagerlyStarted} eagerly), ${dispatched.signalled} signalled, ${dispatched.admitted} admitted; ${JSON.stringify(dispatched.phasesMs)}`,
  );

  const { rows: places } = await pool.query<{
    campaign_id: string;
    campaign_shard: number;
    owner: string;
    n: number;
  }>(
    `select campaign_id, campaign_shard, owner, count(*)::int as n from exposures
      where campaign_id is not null group by campaign_id, campaign_shard, owner`,
  );
  const workflowIds = places.map((p) => campaignWorkflowId(p.campaign_id, p.campaign_shard));
  say(`reading ${workflowIds.length} campaign histories for their first completed task and armed timer`);
  const ours = await firstTaskDone(client, workflowIds, { requireTimer: true });
  const durableMs = Math.max(dispatchedAt, ...ours.doneAt) - t0;
  // Each campaign workflow's wait from the scan's start to its lifecycle being durable.
  const waits = ours.doneAt.map((d) => d - t0).sort((a, b) => a - b);
  const pct = (q: number) => waits[Math.min(waits.length - 1, Math.floor(q * waits.length))] ?? NaN;
  const durablePerS = (total / durableMs) * 1000;
  const ctemPeakMb = process.resourceUsage().maxRSS / 1024;

  // The import must not set off the ladder: give the campaigns a few seconds, then count.
  await new Promise((r) => setTimeout(r, 5_000));
  const { rows: fired } = await pool.query<{ n: number }>(
    `select (select count(*)::int from events where type in ('sla-reminder', 'sla-escalated'))
          + (select count(*)::int from escalation_items) as n`,
  );

  // The daily queue, at the next 09:00 UTC: one message per owner with campaigns waiting.
  const nine = new Date();
  nine.setUTCHours(9, 0, 0, 0);
  if (nine.getTime() <= Date.now()) nine.setUTCDate(nine.getUTCDate() + 1);
  const queueRun = await sendDailyQueues({ ...deps, clock: () => nine.getTime() });

  const campaignsOf = new Map<string, number>();
  for (const p of places)
    if (p.campaign_shard === 1) campaignsOf.set(p.owner, (campaignsOf.get(p.owner) ?? 0) + 1);
  const owners = [...campaignsOf.keys()];
  const immediate = owners.map((o) => toPeople.get(o) ?? 0);
  const ownerMax = Math.max(0, ...immediate);
  const worstOwner = owners[immediate.indexOf(ownerMax)];
  const withinBound = owners.every(
    (o) => (toPeople.get(o) ?? 0) <= campaignsOf.get(o)! && (queues.get(o) ?? 0) <= 1,
  );
  const temporalPeakMb = peakRssMb(temporal.process?.pid);

  // The anchor: the bare engine, on the same server, started the same way (eagerly).
  say(`anchor: ${anchorCount} bare workflows that arm one timer`);
  const bareQueue = 'bench-bare';
  const bareWorker = await Worker.create({
    connection: nativeConnection,
    namespace: 'default',
    taskQueue: bareQueue,
    workflowsPath: path.join(projectRoot, 'bench', 'workflows', 'bare.ts'),
  });
  const bareRunning = bareWorker.run();
  stops.push(async () => {
    bareWorker.shutdown();
    await bareRunning;
  });
  const a0 = Date.now();
  let nextBare = 0;
  const bareIds: string[] = [];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (nextBare < anchorCount) {
        const id = `bare-${nextBare++}`;
        bareIds.push(id);
        await client.workflow.start('bareTimer', {
          workflowId: id,
          taskQueue: bareQueue,
          args: [30],
          requestEagerStart: true,
        });
      }
    }),
  );
  const startedAt = Date.now();
  const bare = await firstTaskDone(client, bareIds, { requireTimer: true });
  const bareMs = Math.max(startedAt, ...bare.doneAt) - a0;
  const barePerS = (anchorCount / bareMs) * 1000;

  figure(
    'durable_exposures_per_s',
    durablePerS,
    'exposures/s',
    { min: 1000 },
    {
      exposures: total,
      wall_ms: durableMs,
      ingest_ms: ingestMs,
      dispatch_ms: dispatchedAt - t0 - ingestMs,
      campaigns: new Set(places.map((p) => p.campaign_id)).size,
      workflows: workflowIds.length,
      started_eagerly: dispatched.eagerlyStarted,
      workflows_without_timer: ours.withoutTimer,
      bare_engine_entities_per_s: Math.round(barePerS * 10) / 10,
      ratio_to_bare_engine: Math.round((durablePerS / barePerS) * 100) / 100,
      defectdojo_import_findings_per_s: '164-170 (issue 17, measured on this machine before)',
      ratio_to_defectdojo: Math.round((durablePerS / 167) * 10) / 10,
    },
  );
  figure('campaign_durable_p99_ms', pct(0.99), 'ms', undefined, {
    p50_ms: pct(0.5),
    p90_ms: pct(0.9),
    max_ms: waits.at(-1),
    measured: 'scan start → each campaign workflow first task completed with its timer armed',
  });
  const sizes = await pool.query<{ datname: string; mb: number }>(
    `select datname, round(pg_database_size(datname) / 1048576.0)::int as mb from pg_database
      where datname in ('bench_onboard', 'temporal', 'temporal_visibility')`,
  );
  figure(
    'database_mb',
    sizes.rows.reduce((a, r) => a + r.mb, 0),
    'MB',
    undefined,
    {
      ...Object.fromEntries(sizes.rows.map((r) => [r.datname, r.mb])),
      ...(onServer ? {} : { temporal_sqlite_mb: Math.round(fileMb(path.join(workDir, 'temporal.db'))) }),
    },
  );
  figure('bare_engine_entities_per_s', barePerS, 'workflows/s', undefined, {
    entities: anchorCount,
    wall_ms: bareMs,
    without_timer: bare.withoutTimer,
  });
  figure('owner_messages_max', ownerMax, 'messages', undefined, {
    owner: worstOwner,
    campaigns_of_that_owner: worstOwner ? campaignsOf.get(worstOwner) : 0,
    daily_queue_messages_of_that_owner: worstOwner ? (queues.get(worstOwner) ?? 0) : 0,
    every_owner_within_one_per_campaign_plus_one_queue: withinBound,
    owners: owners.length,
    queues_sent: queueRun.sent.length,
  });
  figure('channel_messages_max', Math.max(0, ...toChannels.values()), 'messages', undefined, {
    channels: toChannels.size,
  });
  figure('escalations_from_history', fired[0]!.n, 'messages', { max: 0 });
  figure('temporal_peak_rss_mb', temporalPeakMb ?? NaN, 'MB', undefined, {
    open_exposures: total,
    engine: onServer
      ? `temporal-server ${TEMPORAL_SERVER_VERSION}, PostgreSQL, ${n('shards')} shards`
      : 'CLI dev server, SQLite',
    measured: temporalPeakMb === undefined ? 'no /proc entry for the server' : 'VmHWM',
  });
  figure('ctem_peak_rss_mb', ctemPeakMb, 'MB', undefined, {
    open_exposures: total,
    process: 'ingest + dispatch + worker (one process, as ctem up runs them)',
  });
} finally {
  for (const stop of stops.reverse())
    await stop().catch((err: unknown) => say(`stop failed: ${(err as Error).message}`));
  rmSync(workDir, { recursive: true, force: true });
}
