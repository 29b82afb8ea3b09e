// `npm run bench:chat [-- --rate 100 --seconds 30 --via slack|direct]`
//
// Signed Slack button clicks against the bot's endpoint on loopback, at a steady rate, each one an
// "Approve fix" for the whole of a different campaign (one weakness on one asset each) whose real
// campaign workflow is waiting for a decision:
//   ack_p99_ms        — request sent → HTTP response (Slack's ack)         (target ≤ 50 ms)
//   held_p99_ms       — request sent → the workflow has taken the decision  (target ≤ 1000 ms)
//                       (the server's time of the update's acceptance in the workflow's history,
//                       bench/support/held.ts; its handler has written the audit event by then)
//   updated_p99_ms    — request sent → the campaign's message edited in place (chat.update seen
//                       by the Slack test server: what is left, who acted, no stale buttons)
// With --via direct the same campaign decisions go straight from this process to the workflows (no
// Slack, no bot): what Temporal and the worker alone sustain on this host. cpu_<role>_s figures say
// where the machine's time went from the first click until every decision was held (Linux /proc).
// Everything is real except Slack: embedded PostgreSQL, a Temporal dev server, the worker with the
// campaign workflow (in its own process, as a deployment may run workers apart from the HTTP
// server; its workflow cache holds every campaign, so updates do not replay histories), the
// project's HTTP server with Bolt, the Slack notifier and outbox; the Slack Web API is the local
// test server (no rate limit, so message updates never queue up behind the 1/s per channel pace,
// which is not what this measures). One JSON line per figure on stdout; the host's load average is
// printed with them, since every part shares the machine.
import { mkdtempSync, chmodSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { parseConfig } from '../domain/config.ts';
import { exposureId } from '../domain/exposure.ts';
import { createPool } from '../runtime/pool.ts';
import { migrate } from '../runtime/migrate.ts';
import { startEmbeddedPostgres, ensureDatabase } from '../runtime/postgres.ts';
import { startTemporalDevServer } from '../runtime/temporal.ts';
import { freePort } from '../runtime/ports.ts';
import { decisionHeldAt } from './support/held.ts';
import { startRole, runBenchBot, runBenchWorker, type RoleProcesses } from './support/roles.ts';
import { slackSignature } from '../bots/slack/verify.ts';
import { dispatchChanges } from '../lifecycle/dispatch.ts';
import { decideCampaign } from '../lifecycle/decide.ts';
import { campaignWorkflowId } from '../contracts/campaign.ts';
import { FakeSlackApi } from '../test/fakes/slack-api.ts';
import { compose } from '../app/compose.ts';
import { pino } from 'pino';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '30' },
    // slack: signed clicks through the bot (what the targets are about); direct: the same updates
    // sent straight to the workflows from this process, to see what Temporal and the worker alone cost.
    via: { type: 'string', default: 'slack' },
    // Internal: run the worker or the HTTP server with the bot in this (child) process.
    role: { type: 'string' },
  },
});
if (values.role === 'worker' || values.role === 'bot') {
  await (values.role === 'worker' ? runWorker() : runBot());
  process.exit(0);
}
const rate = Number(values.rate);
const seconds = Number(values.seconds);
if (!(rate > 0) || !(seconds > 0)) throw new Error('--rate and --seconds must be positive numbers');
const clicks = Math.round(rate * seconds);
const via = values.via;
if (via !== 'slack' && via !== 'direct') throw new Error('--via must be slack or direct');

const say = (line: string) => process.stderr.write(`bench:chat: ${line}\n`);
function figure(
  name: string,
  value: number,
  unit: string,
  target: number | undefined,
  extra: Record<string, unknown> = {},
): void {
  const rounded = Math.round(value * 100) / 100;
  process.stdout.write(
    `${JSON.stringify({ bench: 'chat', figure: name, value: rounded, unit, ...(target !== undefined ? { target, ok: rounded <= target } : {}), ...extra })}\n`,
  );
}
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** CPU seconds (user + system) of every live process under this one, by role (Linux /proc). */
function cpuByRole(roots: Record<string, number | undefined>): Record<string, number> {
  const tick = 100; // USER_HZ
  const procs = new Map<number, { ppid: number; comm: string; cpu: number }>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const f = stat.slice(close + 2).split(' ');
      // PostgreSQL backends come and go: their time moves to the postmaster's children time.
      const children = comm === 'postgres' ? Number(f[13]) + Number(f[14]) : 0;
      procs.set(Number(d), {
        ppid: Number(f[1]),
        comm,
        cpu: (Number(f[11]) + Number(f[12]) + children) / tick,
      });
    } catch {
      // gone meanwhile
    }
  }
  const roleOf = (pid: number): string | undefined => {
    for (let p: number | undefined = pid, depth = 0; p && depth < 20; depth++) {
      const hit = Object.entries(roots).find(([, r]) => r === p);
      if (hit) return hit[0];
      if (p === process.pid) return procs.get(pid)?.comm === 'postgres' ? 'postgres' : 'bench';
      p = procs.get(p)?.ppid;
    }
    return undefined;
  };
  const out: Record<string, number> = {};
  for (const [pid, p] of procs) {
    const role = roleOf(pid);
    if (role) out[role] = (out[role] ?? 0) + p.cpu;
  }
  return out;
}

const workDir = mkdtempSync(path.join(os.tmpdir(), 'ctem-bench-chat-'));
chmodSync(workDir, 0o755);
const procs: RoleProcesses = { stops: [], pids: {} };
const stops = procs.stops;
const childPids = procs.pids;
// CTEM_BENCH_PROFILE_DIR=dir writes a V8 CPU profile of each child (where the time goes).
const profileArgs = process.env.CTEM_BENCH_PROFILE_DIR
  ? ['--cpu-prof', `--cpu-prof-dir=${process.env.CTEM_BENCH_PROFILE_DIR}`]
  : [];
/** Start this script in another role; resolves with what the child printed after "ready". */
const startChild = (role: 'worker' | 'bot', childEnv: NodeJS.ProcessEnv) =>
  startRole(procs, fileURLToPath(import.meta.url), role, childEnv, profileArgs);

try {
  say(`starting PostgreSQL and Temporal (${clicks} clicks at ${rate}/s)`);
  const [pg, temporal] = await Promise.all([
    startEmbeddedPostgres({ dataDir: path.join(workDir, 'pg'), port: await freePort(), ephemeral: true }),
    startTemporalDevServer({ port: await freePort(), headless: true, logLevel: 'error' }),
  ]);
  stops.push(
    () => pg.stop(),
    () => temporal.stop(),
  );
  const url = await ensureDatabase(pg.url, 'bench_chat');
  const pool = createPool(url, 40);
  stops.push(() => pool.end());
  await migrate(pool);

  const slackToken = `xoxb-bench-${randomBytes(4).toString('hex')}`;
  const signingSecret = randomBytes(16).toString('hex');
  const slack = await new FakeSlackApi({ token: slackToken }).start();
  stops.push(() => slack.stop());
  // The dispatcher (run here) sends the decision requests too, so this process needs the secrets.
  process.env.BENCH_SLACK_TOKEN = slackToken;
  process.env.BENCH_SLACK_SIGNING = signingSecret;
  const env = { ...process.env };
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
  - name: bench
    roles: { owner: [olivia] }
    # Every decision request goes out at once (the daily queue is not what this measures).
    notifications: { urgent: { priority: [Act, Attend, Track*, Track] }, escalationWindow: 0s }
`;
  const config = parseConfig(configText);

  const connection = await Connection.connect({ address: temporal.address });
  stops.push(() => connection.close());
  const client = new Client({ connection, namespace: 'default' });
  const taskQueue = `bench-chat-${randomBytes(3).toString('hex')}`;
  const childEnv = {
    ...env,
    BENCH_DB_URL: url,
    BENCH_TEMPORAL: temporal.address,
    BENCH_TASK_QUEUE: taskQueue,
    BENCH_CONFIG: configText,
    BENCH_CACHE: String(clicks + 500),
  };
  say('bundling the workflows and starting the worker process');
  await startChild('worker', childEnv);
  say('starting the HTTP server with the Slack bot in its own process');
  const port = Number(await startChild('bot', childEnv));

  // ---- one exposure per click, each on its own asset (its own campaign and message) -------------
  say(`seeding ${clicks} exposures and starting their lifecycles`);
  const at = new Date().toISOString();
  await pool.query(`insert into scopes (name) values ('bench') on conflict do nothing`);
  const scan = await pool.query<{ id: number }>(
    `insert into scans (scanner, format, source, scope, started_at, finished_at) values ('bench', 'bench', 'bench', 'bench', $1, $1) returning id`,
    [at],
  );
  const scanId = scan.rows[0]!.id;
  const assets = await pool.query<{ id: number }>(
    `insert into assets (identity_key, kind, hostname, scope, criticality)
     select 'host:bench-' || g, 'host', 'bench-' || g, 'bench', 'high' from generate_series(1, $1) g returning id`,
    [clicks],
  );
  const ids = assets.rows.map((a, i) => exposureId(a.id, `CVE-2099-${String(100000 + i)}`));
  await pool.query(
    `insert into exposures (id, asset_id, vuln_key, scope, state, first_seen, last_seen, first_scan_id, last_scan_id)
     select e.id, e.asset_id, e.vuln_key, 'bench', 'open', $2, $2, $3, $3
       from jsonb_to_recordset($1::jsonb) as e(id text, asset_id bigint, vuln_key text)`,
    [
      JSON.stringify(
        assets.rows.map((a, i) => ({
          id: ids[i],
          asset_id: a.id,
          vuln_key: `CVE-2099-${String(100000 + i)}`,
        })),
      ),
      at,
      scanId,
    ],
  );
  await pool.query(
    `insert into vulnerabilities (key, title, reported_cvss)
     select 'CVE-2099-' || (100000 + g), 'Bench weakness ' || g, $2::jsonb from generate_series(0, $1 - 1) g on conflict do nothing`,
    [clicks, JSON.stringify([{ version: '3.1', vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }])],
  );
  const seeded = Date.now();
  const composition = compose({ pool, config, baseDir: process.cwd(), log: pino({ level: 'silent' }) });
  stops.push(async () => composition.stop());
  await dispatchChanges(
    composition.deps,
    client,
    ids.map((id) => ({ exposureId: id, change: 'new' as const, scanId, at })),
    { taskQueue },
  );
  // Wait until every decision request is posted (one message per campaign).
  for (;;) {
    const posted = slack.callsTo('chat.postMessage').length;
    if (posted >= clicks) break;
    if (Date.now() - seeded > 600_000)
      throw new Error(`only ${posted} of ${clicks} decision requests were posted`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const { rows: waiting } = await pool.query<{ n: number }>(
    `select count(*)::int as n from exposures where state = 'awaiting-decision'`,
  );
  say(
    `${clicks} decision requests posted in ${((Date.now() - seeded) / 1000).toFixed(1)} s; ${waiting[0]!.n} awaiting a decision`,
  );
  const { rows: places } = await pool.query<{ id: string; campaign_id: string; campaign_shard: number }>(
    `select id, campaign_id, campaign_shard from exposures where id = any($1::text[])`,
    [ids],
  );
  const campaignOf = new Map(places.map((p) => [p.id, p.campaign_id]));
  const workflowOf = new Map(places.map((p) => [p.id, campaignWorkflowId(p.campaign_id, p.campaign_shard)]));
  if (new Set(places.map((p) => p.campaign_id)).size !== clicks)
    throw new Error('every exposure should be a campaign of its own');
  const messageOf = new Map<string, { channel: string; ts: string }>();
  for (const m of slack.messages.values()) {
    const hit = /CVE-2099-(\d{6})/.exec(JSON.stringify(m.blocks));
    if (hit) messageOf.set(`CVE-2099-${hit[1]}`, { channel: m.channel, ts: m.ts });
  }

  // ---- the clicks --------------------------------------------------------------------------------
  const endpoint = `http://127.0.0.1:${port}/slack/events`;
  const sentAt = new Map<string, number>();
  const ackMs: number[] = [];
  let failures = 0;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const post = (headers: Record<string, string>, body: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(endpoint, { method: 'POST', agent, headers }, (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
      });
      req.once('error', reject);
      req.end(body);
    });
  const direct = async (i: number): Promise<void> => {
    const started = performance.now();
    sentAt.set(ids[i]!, Date.now());
    try {
      const r = await decideCampaign(client, pool, campaignOf.get(ids[i]!)!, {
        kind: 'approve',
        actor: { personId: 'olivia', via: 'slack' },
      });
      if (r.applied.length > 0) ackMs.push(performance.now() - started);
      else failures++;
    } catch {
      failures++; // e.g. the server's deadline passed while it was swamped
    }
  };
  const click = async (i: number): Promise<void> => {
    if (via === 'direct') return await direct(i);
    const weakness = `CVE-2099-${String(100000 + i)}`;
    const m = messageOf.get(weakness);
    if (!m) {
      failures++;
      return;
    }
    const payload = {
      type: 'block_actions',
      user: { id: 'U0OLIVIA', username: 'olivia', team_id: 'T0CTEM' },
      team: { id: 'T0CTEM', domain: 'bench' },
      api_app_id: 'A0CTEM',
      trigger_id: `${Date.now()}.${randomUUID()}`,
      container: { type: 'message', channel_id: m.channel, message_ts: m.ts },
      channel: { id: m.channel, name: 'directmessage' },
      message: { type: 'message', ts: m.ts },
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
    const ts = String(Math.floor(Date.now() / 1000));
    const started = performance.now();
    sentAt.set(ids[i]!, Date.now());
    try {
      const status = await post(
        {
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': String(Buffer.byteLength(body)),
          'x-slack-request-timestamp': ts,
          'x-slack-signature': slackSignature(signingSecret, ts, body),
        },
        body,
      );
      if (status !== 200) failures++;
      else ackMs.push(performance.now() - started);
    } catch {
      failures++;
    }
  };
  say(
    `clicking: ${rate}/s for ${seconds} s (${via === 'direct' ? 'updates sent directly, no Slack' : 'signed Slack clicks'})`,
  );
  const roots = { worker: childPids.worker, bot: childPids.bot, temporal: temporal.process?.pid };
  const cpu0 = cpuByRole(roots);
  const loadAtStart = os.loadavg()[0]!;
  const t0 = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < clicks; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(click(i));
  }
  await Promise.all(inflight);
  const sendSeconds = (performance.now() - t0) / 1000;

  // ---- when each workflow held its decision --------------------------------------------------------
  // First wait until every audit event is written (the handler writes it before it returns), then
  // read from each history when the update was accepted (bench/support/held.ts).
  const deadline = Date.now() + 120_000;
  for (;;) {
    const { rows } = await pool.query<{ n: number }>(
      `select count(*)::int as n from events where type = 'approve' and actor = 'olivia'`,
    );
    if (rows[0]!.n >= clicks - failures || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const allHeldSeconds = (performance.now() - t0) / 1000;
  // Each campaign's message edited in place after its decision (the first chat.update it gets).
  const updatedAt = new Map<string, number>();
  const updatesDeadline = Date.now() + 60_000;
  while (via === 'slack' && Date.now() < updatesDeadline) {
    for (const c of slack.callsTo('chat.update')) {
      const m = slack.messages.get(`${String(c.args.channel)}/${String(c.args.ts)}`);
      const hit = m ? /CVE-2099-(\d{6})/.exec(JSON.stringify(m.blocks)) : null;
      const id = hit ? ids[Number(hit[1]) - 100000] : undefined;
      if (id && !updatedAt.has(id)) updatedAt.set(id, slack.startedAtMs + c.at);
    }
    if (updatedAt.size >= clicks - failures) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const cpu1 = cpuByRole(roots);
  agent.destroy();
  const held = await decisionHeldAt(client, ids, {
    deadlineMs: Date.now() + 20_000,
    workflowOf: (id) => workflowOf.get(id)!,
  });
  const heldMs = [...held]
    .map(([id, at]) => at - (sentAt.get(id) ?? NaN))
    .filter((x) => Number.isFinite(x))
    .sort((a, b) => a - b);
  ackMs.sort((a, b) => a - b);

  figure('clicks_sent', clicks, 'clicks', undefined, {
    seconds: Math.round(sendSeconds * 10) / 10,
    achievedRate: Math.round((clicks / sendSeconds) * 10) / 10,
  });
  figure('click_failures', failures, 'clicks', 0);
  figure('ack_p50_ms', percentile(ackMs, 50), 'ms', undefined);
  figure('ack_p99_ms', percentile(ackMs, 99), 'ms', 50);
  figure('ack_max_ms', ackMs.at(-1) ?? NaN, 'ms', undefined);
  figure('decisions_held', heldMs.length, 'decisions', undefined, { of: clicks });
  figure('held_p50_ms', percentile(heldMs, 50), 'ms', undefined);
  figure('held_p99_ms', percentile(heldMs, 99), 'ms', 1000);
  figure('held_max_ms', heldMs.at(-1) ?? NaN, 'ms', undefined);
  if (via === 'slack') {
    const updatedMs = [...updatedAt]
      .map(([id, at]) => at - (sentAt.get(id) ?? NaN))
      .filter((x) => Number.isFinite(x))
      .sort((a, b) => a - b);
    figure('messages_updated', updatedMs.length, 'messages', undefined, { of: clicks });
    figure('updated_p50_ms', percentile(updatedMs, 50), 'ms', undefined);
    figure('updated_p99_ms', percentile(updatedMs, 99), 'ms', undefined);
  }
  // Where the machine's time went from the first click until every decision was held.
  for (const role of Object.keys(cpu1).sort())
    figure(`cpu_${role}_s`, (cpu1[role] ?? 0) - (cpu0[role] ?? 0), 's', undefined, {
      ofWallSeconds: Math.round(allHeldSeconds * 10) / 10,
    });
  figure('host_load_avg_1m', os.loadavg()[0]!, 'runnable', undefined, {
    cpus: os.cpus().length,
    atFirstClick: Math.round(loadAtStart * 100) / 100,
  });
} finally {
  for (const stop of stops.reverse())
    await stop().catch((err: unknown) => say(`stop failed: ${(err as Error).message}`));
  rmSync(workDir, { recursive: true, force: true });
}

/** The bot process: the project's HTTP server with the Slack bot, until SIGTERM; prints its port. */
async function runBot(): Promise<void> {
  await runBenchBot({ poolSize: 20 });
}

/** The worker process: a Temporal worker with every activity, until SIGTERM. */
async function runWorker(): Promise<void> {
  await runBenchWorker({
    name: 'bench-worker',
    poolSize: 40,
    maxCachedWorkflows: Number(process.env.BENCH_CACHE ?? 5000),
  });
}
