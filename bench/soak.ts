// `npm run bench:soak [-- --minutes 10 --scan-every 2 --findings 20 --images 20]`
//
// A soak run: scans arrive continuously — a Trivy report every --scan-every seconds, for each of
// --images images in turn, each time with new findings, so that image's previous findings are gone
// and their lifecycles end (a steady state: the live set does not grow with time) — ingested and
// dispatched as `ctem ingest` does (triage, campaigns: one workflow per fix and owner holding its
// exposures, a Slack decision request per campaign), while the owner clicks "Approve all" on each
// request (signed Slack requests to the real Bolt endpoint). Everything is real except Slack (the
// local Web API server): embedded PostgreSQL (durable), the Temporal dev server on a db file, the
// worker in its own process, the HTTP server with the Slack bot in another (as bench:chat).
// Reported, one JSON line per figure on stdout:
//   throughput           — findings ingested per second, exposures created, decisions held
//   ingest_p99_ms        — one scan: ingest + dispatch (triage, workflows started)
//   ack_p99_ms           — signed click sent → HTTP response
//   held_p99_ms          — click sent → every exposure the click asked for has taken the approval (the
//                          workflow time its approval record carries: the task that accepted it)
//   memory samples       — worker and bot RSS, PostgreSQL PSS (all its processes; its fixed shared
//                          memory segment apart), Temporal RSS, every --sample s
//   growth verdict       — least-squares slope of each series over the run's second half, and
//                          whether it is "bounded" (projected growth over an hour < 25 % of the
//                          level, or under 1 MB/min) or "growing"
// The host's load average is printed with the figures: every part shares the machine.
import { mkdtempSync, chmodSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { parseConfig } from '../domain/config.ts';
import { createPool } from '../runtime/pool.ts';
import { migrate } from '../runtime/migrate.ts';
import { startEmbeddedPostgres, ensureDatabase } from '../runtime/postgres.ts';
import { startTemporalDevServer } from '../runtime/temporal.ts';
import { freePort } from '../runtime/ports.ts';
import { startRole, runBenchBot, runBenchWorker, type RoleProcesses } from './support/roles.ts';
import { slackSignature } from '../bots/slack/verify.ts';
import { ingestFile } from '../ingest/file.ts';
import { dispatchScan } from '../lifecycle/dispatch.ts';
import { FakeSlackApi } from '../test/fakes/slack-api.ts';
import { writeTrivyReport } from './synth/trivy.ts';
import { compose } from '../app/compose.ts';
import { pino } from 'pino';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    'scan-every': { type: 'string', default: '2' },
    findings: { type: 'string', default: '20' },
    images: { type: 'string', default: '20' },
    sample: { type: 'string', default: '10' },
    role: { type: 'string' },
  },
});
if (values.role === 'worker' || values.role === 'bot') {
  await (values.role === 'worker' ? runWorker() : runBot());
  process.exit(0);
}
const minutes = Number(values.minutes);
const scanEvery = Number(values['scan-every']);
const findingsPerScan = Number(values.findings);
const sampleEvery = Number(values.sample);
const images = Number(values.images);
if (!(minutes > 0) || !(scanEvery > 0) || !(findingsPerScan > 0) || !(sampleEvery > 0) || !(images > 0))
  throw new Error('--minutes, --scan-every, --findings, --images and --sample must be positive numbers');

const say = (line: string) => process.stderr.write(`bench:soak: ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
function figure(name: string, value: number, unit: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(
    `${JSON.stringify({ bench: 'soak', figure: name, value: Math.round(value * 100) / 100, unit, ...extra })}\n`,
  );
}
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Resident memory of one process, MB (VmRSS). */
function rssMb(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * PostgreSQL's memory, MB, from the proportional set sizes of the postmaster and every backend (so a
 * page shared by several processes is counted once): `own` is the processes' private and file
 * memory, `shared` the pages of its shared memory segment touched so far. The segment (shared
 * buffers, WAL buffers, lock tables) is allocated at start with a fixed size, so `shared` only fills
 * up to it; a leak would show in `own`.
 */
function postgresPssMb(postmaster: number): { own: number; shared: number } {
  const pids = [postmaster];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster) pids.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  let pss = 0;
  let shmem = 0;
  for (const pid of pids) {
    try {
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      pss += Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
      shmem += Number(/^Pss_Shmem:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  return { own: (pss - shmem) / 1024, shared: shmem / 1024 };
}

/** Least-squares slope (MB per minute) of the second half of a series of (seconds, MB) samples. */
function growth(samples: { t: number; mb: number }[]): {
  slopeMbPerMin: number;
  levelMb: number;
  verdict: string;
} {
  const half = samples.slice(Math.floor(samples.length / 2)).filter((s) => Number.isFinite(s.mb));
  if (half.length < 3) return { slopeMbPerMin: NaN, levelMb: NaN, verdict: 'too few samples' };
  const n = half.length;
  const mx = half.reduce((a, s) => a + s.t, 0) / n;
  const my = half.reduce((a, s) => a + s.mb, 0) / n;
  const sxy = half.reduce((a, s) => a + (s.t - mx) * (s.mb - my), 0);
  const sxx = half.reduce((a, s) => a + (s.t - mx) ** 2, 0);
  const slopeMbPerMin = sxx > 0 ? (sxy / sxx) * 60 : 0;
  const bounded = slopeMbPerMin * 60 < 0.25 * my || slopeMbPerMin < 1;
  return { slopeMbPerMin, levelMb: my, verdict: bounded ? 'bounded' : 'growing' };
}

const workDir = mkdtempSync(path.join(os.tmpdir(), 'ctem-bench-soak-'));
chmodSync(workDir, 0o755);
const procs: RoleProcesses = { stops: [], pids: {} };
const stops = procs.stops;
const childPids = procs.pids;
/** Start this script in another role; resolves with what the child printed after "ready". */
const startChild = (role: 'worker' | 'bot', childEnv: NodeJS.ProcessEnv) =>
  startRole(procs, fileURLToPath(import.meta.url), role, childEnv);

try {
  say(
    `starting PostgreSQL and Temporal (${minutes} min, a ${findingsPerScan}-finding scan every ${scanEvery} s)`,
  );
  const pgDir = path.join(workDir, 'pg');
  const [pg, temporal] = await Promise.all([
    startEmbeddedPostgres({ dataDir: pgDir, port: await freePort() }),
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
  const postmaster = Number(readFileSync(path.join(pgDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const url = await ensureDatabase(pg.url, 'bench_soak');
  const pool = createPool(url, 10);
  stops.push(() => pool.end());
  await migrate(pool);

  const slackToken = `xoxb-soak-${randomBytes(4).toString('hex')}`;
  const signingSecret = randomBytes(16).toString('hex');
  const slack = await new FakeSlackApi({ token: slackToken }).start();
  stops.push(() => slack.stop());
  process.env.BENCH_SLACK_TOKEN = slackToken;
  process.env.BENCH_SLACK_SIGNING = signingSecret;
  const configText = `
version: 1
people:
  - { id: olivia, name: Olivia Owner, slack: U0OLIVIA }
integrations:
  slack:
    botToken: env:BENCH_SLACK_TOKEN
    signingSecret: env:BENCH_SLACK_SIGNING
    apiUrl: ${slack.url}
    perChannelIntervalMs: 0
scopes:
  - name: soak
    match: { images: ['registry.example.com/soak/*'] }
    criticality: high
    internetFacing: true
    roles: { owner: [olivia] }
    # Every campaign asks its owner at once (no daily queue): the soak clicks each request as it comes.
    notifications: { urgent: { priority: [Act, Attend, Track*, Track] } }
`;
  const config = parseConfig(configText, 'soak config');
  const connection = await Connection.connect({ address: temporal.address });
  stops.push(() => connection.close());
  const client = new Client({ connection, namespace: 'default' });
  const composition = compose({ pool, config, baseDir: workDir, log: pino({ level: 'silent' }) });
  stops.push(async () => composition.stop());
  const dispatchDeps = composition.deps;
  const taskQueue = `bench-soak-${randomBytes(3).toString('hex')}`;
  const childEnv = {
    ...process.env,
    BENCH_DB_URL: url,
    BENCH_TEMPORAL: temporal.address,
    BENCH_TASK_QUEUE: taskQueue,
    BENCH_CONFIG: configText,
  };
  say('starting the worker process (bundles the workflows) and the HTTP server with the Slack bot');
  await startChild('worker', childEnv);
  const port = Number(await startChild('bot', childEnv));
  const endpoint = `http://127.0.0.1:${port}/slack/events`;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  stops.push(async () => agent.destroy());

  const t0 = performance.now();
  const endAt = t0 + minutes * 60_000;
  const elapsed = () => (performance.now() - t0) / 1000;

  // ---- memory, every --sample seconds ---------------------------------------------------------
  const memory: Record<
    'worker' | 'bot' | 'postgres' | 'postgres_shared' | 'temporal',
    { t: number; mb: number }[]
  > = {
    worker: [],
    bot: [],
    postgres: [],
    postgres_shared: [],
    temporal: [],
  };
  const sampling = (async () => {
    while (performance.now() < endAt) {
      const t = elapsed();
      memory.worker.push({ t, mb: rssMb(childPids.worker) });
      memory.bot.push({ t, mb: rssMb(childPids.bot) });
      const pgMb = postgresPssMb(postmaster);
      memory.postgres.push({ t, mb: pgMb.own });
      memory.postgres_shared.push({ t, mb: pgMb.shared });
      memory.temporal.push({ t, mb: rssMb(temporal.process?.pid) });
      await sleep(sampleEvery * 1000);
    }
  })();

  // ---- scans, one every --scan-every seconds --------------------------------------------------
  const ingestMs: number[] = [];
  let findings = 0;
  let exposuresNew = 0;
  let scans = 0;
  let ingestErrors = 0;
  const ingesting = (async () => {
    for (let k = 0; performance.now() < endAt; k++) {
      const due = t0 + k * scanEvery * 1000;
      if (due > performance.now()) await sleep(due - performance.now());
      const file = path.join(workDir, `scan-${k}.trivy.json`);
      await writeTrivyReport(file, {
        vulnerabilities: findingsPerScan,
        targets: 1,
        seed: k + 1,
        artifactName: `registry.example.com/soak/app-${k % images}:1.0`,
      });
      const started = performance.now();
      try {
        const summary = await ingestFile(pool, file, { scopes: config.scopes, scanTime: new Date() });
        await dispatchScan({ ...dispatchDeps, baseDir: workDir }, client, summary.scanId, { taskQueue });
        ingestMs.push(performance.now() - started);
        findings += summary.findings;
        exposuresNew += summary.exposures.new;
        scans++;
      } catch (err) {
        ingestErrors++;
        say(`scan ${k} failed: ${(err as Error).message}`);
      }
      rmSync(file, { force: true });
    }
  })();

  // ---- the owner approves each decision request as it arrives ---------------------------------
  const clicked = new Set<string>();
  const clicks: { sentAt: number; ids: string[] }[] = [];
  const ackMs: number[] = [];
  let clickFailures = 0;
  const post = (headers: Record<string, string>, body: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(endpoint, { method: 'POST', agent, headers }, (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
      });
      req.once('error', reject);
      req.end(body);
    });
  const click = async (channel: string, ts: string, ids: string[]) => {
    const payload = {
      type: 'block_actions',
      user: { id: 'U0OLIVIA', username: 'olivia', team_id: 'T0CTEM' },
      team: { id: 'T0CTEM', domain: 'soak' },
      api_app_id: 'A0CTEM',
      trigger_id: `${Date.now()}.${randomUUID()}`,
      container: { type: 'message', channel_id: channel, message_ts: ts },
      channel: { id: channel, name: 'directmessage' },
      message: { type: 'message', ts },
      actions: [
        {
          action_id: 'ctem_all_approve',
          block_id: 'ctem_all',
          type: 'button',
          value: 'all',
          action_ts: `${Date.now() / 1000}`,
        },
      ],
    };
    const body = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
    const stamp = String(Math.floor(Date.now() / 1000));
    const started = performance.now();
    clicks.push({ sentAt: Date.now(), ids });
    try {
      const status = await post(
        {
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': String(Buffer.byteLength(body)),
          'x-slack-request-timestamp': stamp,
          'x-slack-signature': slackSignature(signingSecret, stamp, body),
        },
        body,
      );
      if (status === 200) ackMs.push(performance.now() - started);
      else clickFailures++;
    } catch {
      clickFailures++;
    }
  };
  // A campaign's message is updated in place when new exposures join it: the owner clicks it again
  // when it asks about exposures no click has covered yet (a click approves all that wait).
  const clickedIds = new Set<string>();
  let seenUpTo = new Date(0);
  const clicking = (async () => {
    while (performance.now() < endAt) {
      const { rows } = await pool.query<{ ref: string; ids: string[]; at: Date }>(
        `select message_ref as ref, jsonb_path_query_array(model, '$.notification.campaign.exposures[*].id') as ids,
                updated_at as at
           from chat_messages
          where transport = 'slack' and message_ref is not null and updated_at >= $1
            and model->'notification'->>'kind' = 'decision-request'
            and model->'notification'->>'patchRolloutId' is null`,
        [seenUpTo],
      );
      for (const r of rows) if (r.at > seenUpTo) seenUpTo = r.at;
      await Promise.all(
        rows.map(async (r) => {
          const asked = r.ids.filter((id) => !clickedIds.has(id));
          if (asked.length === 0) return;
          for (const id of asked) clickedIds.add(id);
          clicked.add(r.ref);
          const [channel, ts] = r.ref.split('/') as [string, string];
          await click(channel, ts, asked);
        }),
      );
      await sleep(250);
    }
  })();

  let lastReport = 0;
  while (performance.now() < endAt) {
    await sleep(1000);
    if (elapsed() - lastReport >= 60) {
      lastReport = elapsed();
      const pgMb = postgresPssMb(postmaster);
      say(
        `${Math.round(elapsed())} s: ${scans} scans, ${findings} findings, ${exposuresNew} new exposures, ${clicks.length} clicks; worker ${Math.round(rssMb(childPids.worker))} MB, PostgreSQL ${Math.round(pgMb.own)} MB + ${Math.round(pgMb.shared)} MB shared`,
      );
    }
  }
  await Promise.all([ingesting, clicking, sampling]);
  const runSeconds = elapsed();

  // ---- when each click was held by the workflows ------------------------------------------------
  // Exposures a click asked to approve (one whose finding vanished first ends without approval).
  const wanted = [...new Set(clicks.flatMap((c) => c.ids))];
  let approved = new Set<string>();
  const deadline = Date.now() + 120_000;
  for (;;) {
    const { rows } = await pool.query<{ exposure_id: string }>(
      `select distinct exposure_id from events where type = 'approve' and actor = 'olivia'`,
    );
    approved = new Set(rows.map((r) => r.exposure_id));
    const { rows: open } = await pool.query<{ id: string }>(
      `select id from exposures where state = 'awaiting-decision' and id = any($1::text[])`,
      [wanted],
    );
    if (open.every((r) => approved.has(r.id)) || Date.now() > deadline) break;
    await sleep(1000);
  }
  // The audit events say that every decision is in, and when: each approval's record carries the
  // workflow time of the task that took the update (the task that accepted it into the history).
  const { rows: heldRows } = await pool.query<{ exposure_id: string; at: Date }>(
    `select exposure_id, min(at) as at from events where type = 'approve' and actor = 'olivia'
      group by exposure_id`,
  );
  const heldAt = new Map(heldRows.map((r) => [r.exposure_id, r.at.getTime()]));
  // A click is timed on the exposures it asked first (a later request for the same exposure, sent
  // before the approval reached it, is answered by that first click).
  const firstAsked = new Map<string, number>();
  clicks.forEach((c, i) => c.ids.forEach((id) => firstAsked.has(id) || firstAsked.set(id, i)));
  const heldMs = clicks
    .map((c, i) => ({ sentAt: c.sentAt, ids: c.ids.filter((id) => firstAsked.get(id) === i) }))
    .filter((c) => c.ids.length > 0 && c.ids.every((id) => heldAt.has(id)))
    .map((c) => Math.max(...c.ids.map((id) => heldAt.get(id)!)) - c.sentAt);
  const { rows: awaiting } = await pool.query<{ n: number }>(
    `select count(*)::int as n from exposures where state = 'awaiting-decision'`,
  );
  const { rows: byState } = await pool.query<{ state: string; n: number }>(
    `select state, count(*)::int as n from exposures group by state order by state`,
  );

  figure('run_seconds', runSeconds, 's');
  figure('scans_ingested', scans, 'scans', { errors: ingestErrors });
  figure('findings_per_s', findings / runSeconds, 'findings/s', { findings });
  figure('exposures_new', exposuresNew, 'exposures');
  figure('decision_requests_clicked', clicks.length, 'clicks', { failures: clickFailures });
  figure('decisions_held', heldAt.size, 'exposures', { of: wanted.length, awaitingAtEnd: awaiting[0]!.n });
  figure('decisions_held_per_s', heldAt.size / runSeconds, 'exposures/s');
  figure(
    'exposures_open_at_end',
    byState.filter((r) => r.state !== 'resolved').reduce((a, r) => a + r.n, 0),
    'exposures',
    {
      byState: Object.fromEntries(byState.map((r) => [r.state, r.n])),
    },
  );
  figure('ingest_p50_ms', percentile(ingestMs, 50), 'ms');
  figure('ingest_p99_ms', percentile(ingestMs, 99), 'ms');
  const segmentMb = Number(
    (
      await pool.query<{ mb: string }>(
        `select setting as mb from pg_settings where name = 'shared_memory_size'`,
      )
    ).rows[0]?.mb ?? NaN,
  );
  figure('ack_p50_ms', percentile(ackMs, 50), 'ms');
  figure('ack_p99_ms', percentile(ackMs, 99), 'ms');
  figure('held_p50_ms', percentile(heldMs, 50), 'ms');
  figure('held_p99_ms', percentile(heldMs, 99), 'ms');
  const measures: Record<keyof typeof memory, string> = {
    worker: 'RSS',
    bot: 'RSS',
    temporal: 'RSS',
    postgres: 'PSS of all its processes, shared memory segment excluded',
    postgres_shared: 'PSS of its shared memory segment, fixed in size at start',
  };
  for (const [name, series] of Object.entries(memory) as [
    keyof typeof memory,
    { t: number; mb: number }[],
  ][]) {
    const g = growth(series);
    const last = series.at(-1)?.mb ?? NaN;
    figure(`memory_${name}_mb`, last, 'MB', {
      samples: series.map((s) => [Math.round(s.t), Math.round(s.mb)]),
      secondHalfSlopeMbPerMin: Math.round(g.slopeMbPerMin * 100) / 100,
      secondHalfLevelMb: Math.round(g.levelMb),
      // The segment cannot grow past its size: filling it is not growth without bound.
      verdict:
        name === 'postgres_shared' && last <= segmentMb ? `bounded by its ${segmentMb} MB size` : g.verdict,
      measure: measures[name],
    });
  }
  figure('host_load_avg_1m', os.loadavg()[0]!, 'runnable', { cpus: os.cpus().length });
} finally {
  for (const stop of stops.reverse())
    await stop().catch((err: unknown) => say(`stop failed: ${(err as Error).message}`));
  rmSync(workDir, { recursive: true, force: true });
}

/** The bot process: the project's HTTP server with the Slack bot, until SIGTERM; prints its port. */
async function runBot(): Promise<void> {
  await runBenchBot({ poolSize: 10 });
}

/** The worker process: a Temporal worker with every activity and default cache size, until SIGTERM. */
async function runWorker(): Promise<void> {
  await runBenchWorker({ name: 'soak-worker', poolSize: 20 });
}
