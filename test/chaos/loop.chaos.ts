// The crash suite (`npm run test:chaos`): the demo's whole campaign loop — ingest of the shop's
// Kubernetes scan, triage, its exposures filed into campaigns (one fix across the images), a Slack
// message per campaign to the owner (the local Slack Web API), a later scan adding exposures to
// campaigns already under way (a reply in the campaign's thread, its message updated in place), one
// decision per campaign through the decision API, a Jira ticket per campaign (the local Jira), a patch
// rollout per approval round through the demo executor, the demo connector's re-scan, verification —
// on several scopes at once, while this driver SIGKILLs the worker process at random points (seeded,
// the seed is printed; CHAOS_SEED replays a run), kills the Temporal dev server and starts it again
// on its db file, and restarts PostgreSQL. Afterwards the records must show every exposure resolved
// and every campaign ended, every side effect done once (counted on the fake servers and in
// PostgreSQL), every acknowledged decision in the audit log, and no gap in any exposure's event
// sequence.
// Knobs (env): CHAOS_SEED, CHAOS_KILLS (50), CHAOS_SCOPES (6), CHAOS_TEMPORAL_EVERY (12 kills),
// CHAOS_PG_EVERY (17 kills), CHAOS_MAX_GAP_MS (3000: longest life of a worker after "ready"),
// CHAOS_FINISH_MS (360000: how long the last worker has to finish the loop).
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { bundleWorkflowCode } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import { pino } from 'pino';
import { parseConfig, type Config } from '../../domain/config.ts';
import { createPool, type Pool } from '../../runtime/pool.ts';
import { migrate } from '../../runtime/migrate.ts';
import { ensureDatabase, startEmbeddedPostgres, type RunningPostgres } from '../../runtime/postgres.ts';
import { startTemporalDevServer, type RunningTemporal } from '../../runtime/temporal.ts';
import { freePort, isPortFree } from '../../runtime/ports.ts';
import { workflowsEntry } from '../../worker/worker.ts';
import { ingestFile } from '../../ingest/file.ts';
import { dispatchScan } from '../../lifecycle/dispatch.ts';
import { decideCampaign } from '../../lifecycle/decide.ts';
import { campaignMessageKey } from '../../lifecycle/notify.ts';
import { campaignWorkflowId } from '../../contracts/campaign.ts';
import { patchRolloutQuery } from '../../contracts/patch.ts';
import { FakeJira } from '../fakes/jira.ts';
import { FakeSlackApi } from '../fakes/slack-api.ts';
import { demoDir } from '../../app/demo.ts';
import { compose } from '../../app/compose.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const num = (name: string, fallback: number): number => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name} must be a non-negative number`);
  return v;
};
const seed = num('CHAOS_SEED', Math.floor(Math.random() * 2 ** 31));
const KILLS = num('CHAOS_KILLS', 50);
const SCOPES = Math.max(1, num('CHAOS_SCOPES', 6));
const TEMPORAL_EVERY = num('CHAOS_TEMPORAL_EVERY', 12);
const PG_EVERY = num('CHAOS_PG_EVERY', 17);
const MAX_GAP_MS = num('CHAOS_MAX_GAP_MS', 3000);
const FINISH_MS = num('CHAOS_FINISH_MS', 360_000);

/** mulberry32: a small seeded generator, so a failing run can be replayed with its seed. */
function rng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const say = (line: string) => process.stdout.write(`chaos: ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Retry an operation that fails while PostgreSQL or Temporal is being restarted. */
async function persist<T>(what: string, fn: () => Promise<T>, timeoutMs = 180_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: ${(err as Error).message}`, { cause: err });
      await sleep(500);
    }
  }
}

// ---- the demo's scans, made into each scope's own ---------------------------------------------

/** What the suite reads of a `trivy k8s` report: its workloads, their images and findings. */
interface K8sReport {
  ClusterName: string;
  Resources: K8sResource[];
  [field: string]: unknown;
}
interface K8sResource {
  Namespace: string;
  Kind: string;
  Name: string;
  Results: { Target: string; Vulnerabilities?: { PkgName: string }[]; [field: string]: unknown }[];
  [field: string]: unknown;
}

async function readK8sReport(file: string): Promise<K8sReport> {
  const report = JSON.parse(await readFile(file, 'utf8')) as Partial<K8sReport>;
  const fine =
    typeof report.ClusterName === 'string' &&
    Array.isArray(report.Resources) &&
    report.Resources.every(
      (r) =>
        typeof r.Namespace === 'string' &&
        typeof r.Name === 'string' &&
        Array.isArray(r.Results) &&
        r.Results.every((x) => typeof x.Target === 'string'),
    );
  if (!fine)
    throw new Error(
      `${file}: not the trivy k8s report the crash suite expects (ClusterName, Resources[].Namespace/Name/Results[].Target)`,
    );
  return report as K8sReport;
}

const DEMO_IMAGES = 'registry.example.com/shop/';
const scopeImages = (i: number) => `registry.example.com/chaos-${i}/`;
const findingsOf = (r: K8sReport) =>
  r.Resources.flatMap((res) => res.Results.flatMap((x) => x.Vulnerabilities ?? []));

/**
 * Scope i's copy of a demo report: its own cluster, namespace and image repositories, only the
 * given workloads, and (clean) no findings left.
 */
function forScope(
  report: K8sReport,
  i: number,
  opts: { workloads?: string[]; clean?: boolean } = {},
): K8sReport {
  const resources = report.Resources.filter((r) => !opts.workloads || opts.workloads.includes(r.Name)).map(
    (r): K8sResource => ({
      ...r,
      Namespace: `chaos-${i}`,
      Results: r.Results.map((x) => ({
        ...x,
        Target: x.Target.replaceAll(DEMO_IMAGES, scopeImages(i)),
        ...(opts.clean ? { Vulnerabilities: [] } : {}),
      })),
    }),
  );
  return { ...report, ClusterName: `chaos-${i}`, Resources: resources };
}

/**
 * Per scope: the shop's first scan without its admin image, a later scan finding the admin image
 * (its exposures join campaigns already under way), and the after-fix report with every finding
 * gone (the demo accepts a risk on the admin image; here every fix lands and is verified).
 */
async function writeScopeScans(dir: string, scopes: number) {
  const before = await readK8sReport(path.join(demoDir, 'scans/shop-before-fix.trivy-k8s.json'));
  const after = await readK8sReport(path.join(demoDir, 'scans/shop-after-fix.trivy-k8s.json'));
  const later = ['admin'];
  const first = before.Resources.map((r) => r.Name).filter((n) => !later.includes(n));
  for (let i = 1; i <= scopes; i++) {
    const files: [string, K8sReport][] = [
      [`first-${i}.json`, forScope(before, i, { workloads: first })],
      [`later-${i}.json`, forScope(before, i, { workloads: later })],
      [`after-${i}.json`, forScope(after, i, { clean: true })],
    ];
    for (const [name, report] of files)
      await writeFile(path.join(dir, name), JSON.stringify(report, null, 2));
  }
  const packages = (workloads: string[]) =>
    new Set(findingsOf(forScope(before, 1, { workloads })).map((v) => v.PkgName));
  // One campaign per package to upgrade (one scope, one owner); the later scan's findings of a
  // package the first scan had join that campaign, and the owner hears of them in its thread.
  const joined = [...packages(later)].filter((p) => packages(first).has(p));
  if (joined.length === 0)
    throw new Error(
      'the demo scan has no package on its admin image that the other images share: nothing would join a campaign',
    );
  const findings = findingsOf(before);
  return {
    exposures: findings.length,
    campaigns: new Set(findings.map((v) => v.PkgName)).size,
    joined: joined.length,
  };
}

function chaosConfig(scopes: number, slackUrl: string, jiraUrl: string): string {
  const scopeList = Array.from(
    { length: scopes },
    (_, k) => `
  - name: chaos-${k + 1}
    match: { images: ['${scopeImages(k + 1)}*'] }
    criticality: high
    internetFacing: true
    roles: { owner: [dana], securityLead: [sam] }
    channel: { slack: C0CHAOS${k + 1} }
    tickets: { system: jira }
    patch: { executor: chaos, autoApprove: true }
    scan: { connector: demo, report: after-${k + 1}.json }
    # Every campaign's decision request at once, so each is a Slack message sent under the chaos.
    notifications: { urgent: { priority: [Act, Attend, Track*, Track] } }`,
  ).join('');
  return `
version: 1
people:
  - { id: dana, name: Dana Demo, slack: U0DANA }
  - { id: sam, name: Sam Security, slack: U0SAM }
integrations:
  slack:
    botToken: env:CHAOS_SLACK_TOKEN
    signingSecret: env:CHAOS_SLACK_SIGNING
    apiUrl: ${slackUrl}
    perChannelIntervalMs: 0
  jira:
    url: ${jiraUrl}
    auth: { email: ctem@example.com, apiToken: env:CHAOS_JIRA_TOKEN }
    project: SEC
scopes:${scopeList}
`;
}

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

describe('crash suite: the demo campaign loop under SIGKILL and server restarts', () => {
  it(`loses nothing and repeats nothing (seed ${seed})`, { timeout: 1_800_000 }, async () => {
    const random = rng(seed);
    say(`seed ${seed} (replay with CHAOS_SEED=${seed}); ${KILLS} kills, ${SCOPES} scopes`);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ctem-chaos-'));
    await chmod(dir, 0o755);
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const perScope = await writeScopeScans(dir, SCOPES);

    // ---- servers: PostgreSQL (durable), Temporal on a db file, the Jira and Slack fakes ----------
    const pgPort = await freePort();
    const temporalPort = await freePort();
    const pgDir = path.join(dir, 'pg');
    const dbFile = path.join(dir, 'temporal.db');
    let pg: RunningPostgres = await startEmbeddedPostgres({ dataDir: pgDir, port: pgPort });
    cleanups.push(() => pg.stop());
    const url = await ensureDatabase(pg.url, 'ctem');
    const pool: Pool = createPool(url, 10);
    cleanups.push(() => pool.end());
    await migrate(pool);
    await pool.query(
      `create table chaos_patch_applies (id bigserial primary key, rollout_id text not null, host text not null, pid integer not null, changed boolean not null)`,
    );
    const startTemporal = () =>
      startTemporalDevServer({ port: temporalPort, headless: true, dbFile, logLevel: 'error' });
    let temporal: RunningTemporal = await startTemporal();
    cleanups.push(() => temporal.stop());
    const bundle = await bundleWorkflowCode({ workflowsPath: workflowsEntry(), logger: quietLogger });
    const bundlePath = path.join(dir, 'workflows.js');
    await writeFile(bundlePath, bundle.code);

    const jiraToken = `chaos-jira-${randomBytes(4).toString('hex')}`;
    const slackToken = `xoxb-chaos-${randomBytes(4).toString('hex')}`;
    const jira = await new FakeJira({
      email: 'ctem@example.com',
      apiToken: jiraToken,
      projects: ['SEC'],
    }).start();
    cleanups.push(() => jira.close());
    const slack = await new FakeSlackApi({ token: slackToken }).start();
    cleanups.push(() => slack.stop());
    process.env.CHAOS_JIRA_TOKEN = jiraToken;
    process.env.CHAOS_SLACK_TOKEN = slackToken;
    process.env.CHAOS_SLACK_SIGNING = randomBytes(16).toString('hex');

    const configText = chaosConfig(SCOPES, slack.url, jira.url);
    const config: Config = parseConfig(configText, 'chaos config');
    const taskQueue = `chaos-${randomBytes(3).toString('hex')}`;
    const connection = await Connection.connect({ address: temporal.address });
    cleanups.push(() => connection.close());
    const client = new Client({ connection, namespace: 'default' });
    // The dispatcher runs in this process, as `ctem ingest` does, with its own composition.
    const composition = compose({ pool, config, baseDir: dir, log: pino({ level: 'silent' }) });
    cleanups.push(async () => composition.stop());
    const dispatchDeps = composition.deps;

    // ---- the worker process and its killer -------------------------------------------------------
    const childEnv = {
      ...process.env,
      CHAOS_DATABASE_URL: url,
      CHAOS_TEMPORAL_ADDRESS: temporal.address,
      CHAOS_TASK_QUEUE: taskQueue,
      CHAOS_CONFIG: configText,
      CHAOS_BASE_DIR: dir,
      CHAOS_BUNDLE: bundlePath,
    };
    const counts = { kills: 0, killedBeforeReady: 0, selfExits: 0, temporalRestarts: 0, pgRestarts: 0 };
    const children = new Set<ChildProcess>();
    cleanups.push(async () => children.forEach((c) => c.kill('SIGKILL')));
    const startWorker = () => {
      const c = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'chaosWorker.ts')], {
        env: childEnv,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(c);
      const exited = new Promise<void>((resolve) =>
        c.once('exit', () => {
          children.delete(c);
          resolve();
        }),
      );
      const ready = new Promise<boolean>((resolve) => {
        let out = '';
        c.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('ready\n')) resolve(true);
        });
        void exited.then(() => resolve(false));
      });
      // The end of what it printed, to say why a worker exited on its own.
      let lastWords = '';
      c.stderr!.on('data', (d: Buffer) => {
        if (process.env.CHAOS_LOG) process.stderr.write(d);
        lastWords = (lastWords + d.toString()).slice(-3000);
      });
      const exitedAlone = () => {
        counts.selfExits++;
        if (counts.selfExits <= 3)
          say(
            `a worker exited on its own (code ${c.exitCode}): ${lastWords.trim().replaceAll(/\s*\n\s*/g, ' | ') || 'it said nothing'}`,
          );
      };
      return { c, ready, exited, exitedAlone };
    };

    let stopProducing = false;

    // Ingest one scope every KILLS/SCOPES kills, so work arrives throughout the chaos: its first
    // scan, then at once the later one, whose exposures join the campaigns the first one started
    // (before or after their decision, as the race goes).
    const ingested = new Set<number>();
    const ingestOne = async (file: string) => {
      const summary = await persist(`ingest ${file}`, () =>
        ingestFile(pool, path.join(dir, file), { scopes: config.scopes, scanTime: new Date() }),
      );
      // A killed worker's activities are retried once their heartbeat times out: 10 s instead of the
      // default minute (two for a host's patch, whose slot the scope's other rollouts wait for), so
      // fifty kills do not add up to an hour.
      await persist(`dispatch scan ${summary.scanId}`, () =>
        dispatchScan(dispatchDeps, client, summary.scanId, { taskQueue, heartbeatTimeoutMs: 10_000 }),
      );
    };
    const ingest = async (i: number) => {
      await ingestOne(`first-${i}.json`);
      await ingestOne(`later-${i}.json`);
      ingested.add(i);
    };

    // The owner approves every campaign with exposures waiting for a decision, one decision per
    // campaign, as a click on its Slack message would (same API). A decision whose answer was lost
    // in a restart is not re-sent once the exposures moved on: whether it was taken shows in the
    // audit log.
    const acknowledged = new Set<string>();
    const decisions = { sent: 0, acknowledged: 0 };
    const decide = async () => {
      while (!stopProducing) {
        const waiting = await pool
          .query<{ campaign_id: string; ids: string[] }>(
            `select campaign_id, array_agg(id) as ids from exposures
              where state = 'awaiting-decision' and campaign_id is not null group by campaign_id`,
          )
          .then((r) => r.rows.filter((c) => c.ids.some((id) => !acknowledged.has(id))))
          .catch(() => []);
        await Promise.all(
          waiting.map(async ({ campaign_id }) => {
            decisions.sent++;
            const r = await decideCampaign(client, pool, campaign_id, {
              kind: 'approve',
              actor: { personId: 'dana', via: 'slack' },
              comment: 'chaos approval',
            }).catch(() => undefined);
            if (!r?.applied.length) return;
            decisions.acknowledged++;
            for (const a of r.applied) acknowledged.add(a.exposureId);
          }),
        );
        await sleep(300);
      }
    };
    const deciding = decide();

    const restartTemporal = async () => {
      temporal.process?.kill('SIGKILL');
      await temporal.stop();
      await persist('free the Temporal port', async () => {
        if (!(await isPortFree(temporalPort))) throw new Error('port still taken');
      });
      temporal = await startTemporal();
      counts.temporalRestarts++;
    };
    const restartPostgres = async () => {
      await pg.stop();
      pg = await startEmbeddedPostgres({ dataDir: pgDir, port: pgPort });
      counts.pgRestarts++;
    };

    const started = Date.now();
    await ingest(1);
    // Two worker processes overlap: while the victim works, its successor starts, so a kill costs
    // the longer of a worker's life and its start-up, not both.
    let standby = startWorker();
    const kill = async (w: ReturnType<typeof startWorker>) => {
      w.c.kill('SIGKILL');
      await w.exited;
      counts.kills++;
      const next = ingested.size + 1;
      if (next <= SCOPES && counts.kills >= ((next - 1) * KILLS) / SCOPES) await ingest(next);
      if (TEMPORAL_EVERY && counts.kills % TEMPORAL_EVERY === 0) await restartTemporal();
      if (PG_EVERY && counts.kills % PG_EVERY === 0) await restartPostgres();
      if (counts.kills % 10 === 0)
        say(`${counts.kills} kills so far (${Math.round((Date.now() - started) / 1000)} s)`);
    };
    while (counts.kills < KILLS) {
      const victim = standby;
      if (!(await victim.ready)) {
        victim.exitedAlone();
        standby = startWorker();
        continue;
      }
      standby = startWorker();
      // One kill in five lands on a worker still starting (connecting, loading the bundle).
      if (random() < 0.2) {
        const outcome = await Promise.race([
          sleep(random() * 1500).then(() => 'kill' as const),
          standby.ready.then(() => 'ready' as const),
        ]);
        if (outcome === 'kill' && standby.c.exitCode === null) {
          counts.killedBeforeReady++;
          await kill(standby);
          standby = startWorker();
        }
      }
      // The rest at a random moment of a working life: polling, mid-activity, mid-workflow-task.
      const outcome = await Promise.race([
        sleep(200 + random() * MAX_GAP_MS).then(() => 'kill' as const),
        victim.exited.then(() => 'exited' as const),
      ]);
      if (outcome === 'exited') victim.exitedAlone();
      else await kill(victim);
    }
    for (let i = ingested.size + 1; i <= SCOPES; i++) await ingest(i);

    // ---- let one worker live, and wait for the loop to finish ----------------------------------
    say(`chaos over after ${Math.round((Date.now() - started) / 1000)} s; one worker finishes the loop`);
    // The last standby lives on and finishes the loop: every exposure resolved, every campaign's
    // workflow ended, and its ticket closed.
    const expected = {
      exposures: SCOPES * perScope.exposures,
      campaigns: SCOPES * perScope.campaigns,
      replies: SCOPES * perScope.joined,
    };
    const deadline = Date.now() + FINISH_MS;
    let states: Map<string, string>;
    let pending: string[];
    for (;;) {
      // A worker that died on its own (its server was being restarted) is replaced.
      if (children.size === 0) startWorker();
      const rows = await persist('read states', () =>
        pool.query<{ id: string; state: string }>(`select id, state from exposures`),
      );
      states = new Map(rows.rows.map((r) => [r.id, r.state]));
      pending = await unfinished(pool, client, jira, states, expected.exposures).catch((err: Error) => [
        `cannot tell: ${err.message}`,
      ]);
      if (pending.length === 0 || Date.now() > deadline) break;
      await sleep(1000);
    }
    stopProducing = true;
    await deciding;
    const ids = [...states.keys()];

    // ---- the records -------------------------------------------------------------------------------
    const q = async <T extends object>(sql: string, params: unknown[] = []) =>
      (await pool.query<T>(sql, params)).rows;
    const notResolved = [...states].filter(([, s]) => s !== 'resolved');
    for (const [id, state] of notResolved.slice(0, 10)) {
      const last = await q<{ type: string; reason: string | null }>(
        `select type, reason from events where exposure_id = $1 order by id desc limit 3`,
        [id],
      );
      say(`not resolved: ${id} is ${state}; last: ${last.map((e) => `${e.type} (${e.reason})`).join('; ')}`);
    }
    if (pending.length) say(`unfinished: ${pending.join('; ')}`);
    await describeStuckRollouts(pool, client);

    // Campaigns and their tickets: one Jira issue per campaign, known by its ctem-cmp- label.
    const campaignRows = await q<{ id: string; shards: number }>(`select id, shards from campaigns`);
    const ticketRows = await q<{ group_key: string; n: number }>(
      `select group_key, count(*)::int as n from tickets group by group_key`,
    );
    const campaignIds = new Set(campaignRows.map((c) => c.id));
    const withoutTicket = campaignRows.filter((c) => !ticketRows.some((t) => t.group_key === c.id));
    const jiraByLabel = new Map<string, number>();
    for (const issue of jira.issues.values())
      for (const label of issue.fields.labels.filter((l) => l.startsWith('ctem-cmp-')))
        jiraByLabel.set(label, (jiraByLabel.get(label) ?? 0) + 1);

    // Slack: every message in Slack (a campaign's original, a reply in its thread) is one the outbox
    // recorded, once; a message posted again after a crash lost its reference is one nobody records.
    const recorded = await q<{ key: string; ref: string; thread_ref: string | null }>(
      `select notification_key as key, message_ref as ref, thread_ref from chat_messages
        where transport = 'slack' and message_ref is not null`,
    );
    const refs = new Set(recorded.map((m) => m.ref));
    const slackPosts = slack.callsTo('chat.postMessage').length;
    const slackUpdates = slack.callsTo('chat.update').length;
    const unrecordedSlack = [...slack.messages.keys()].filter((ref) => !refs.has(ref));
    const originals = recorded.filter((m) => m.key.startsWith('campaign:') && m.thread_ref === null);
    const replies = recorded.filter((m) => m.thread_ref !== null);
    // A reply must sit in the thread it was recorded under.
    const misthreaded = replies.filter(
      (m) => slack.messages.get(m.ref)?.threadTs !== m.thread_ref!.split('/').at(-1),
    );
    const withoutMessage = campaignRows.filter(
      (c) => !originals.some((m) => m.key === campaignMessageKey(c.id)),
    );

    // Patching: each host of a rollout changed once, by some apply; a host in one rollout per campaign.
    const rollouts = await q<{ id: string; campaign_id: string; status: string }>(
      `select id, campaign_id, status from patch_rollouts`,
    );
    const rolloutStates = new Map<string, number>();
    for (const r of rollouts) rolloutStates.set(r.status, (rolloutStates.get(r.status) ?? 0) + 1);
    const hostsInTwoRounds = await q<{ n: number }>(
      `select count(*)::int as n from (select 1 from patch_jobs group by campaign_id, host having count(*) > 1) d`,
    );
    const applies = await q<{ rollout_id: string; host: string; n: number; calls: number }>(
      `select rollout_id, host, count(*) filter (where changed)::int as n, count(*)::int as calls
         from chaos_patch_applies group by rollout_id, host`,
    );
    const unapplied = await q<{ rollout_id: string; host: string }>(
      `select j.rollout_id, j.host from patch_jobs j
        where j.status = 'succeeded' and not exists (
          select 1 from chaos_patch_applies a where a.rollout_id = j.rollout_id and a.host = j.host and a.changed)`,
    );

    // Decisions: each exposure approved once by its owner, every acknowledged approval on record.
    const approvals = await q<{ exposure_id: string; n: number }>(
      `select exposure_id, count(*)::int as n from events where type = 'approve' and actor = 'dana' group by exposure_id`,
    );
    const approvalsOf = new Map(approvals.map((a) => [a.exposure_id, a.n]));
    const lostDecisions = [...acknowledged].filter((id) => (approvalsOf.get(id) ?? 0) === 0);
    const unapproved = ids.filter((id) => approvalsOf.get(id) !== 1);

    // Each lifecycle (named after the scan that started it, "s<scan id>") numbers its records 1, 2,
    // 3… in the event keys "<exposure>:<lifecycle>:<n>": a missing number is a lost record. (The
    // dispatcher's and the side effects' own events are keyed otherwise and are not in the sequence.)
    const events = await q<{ exposure_id: string; key: string }>(
      `select exposure_id, idempotency_key as key from events where exposure_id = any($1::text[]) and idempotency_key is not null`,
      [ids],
    );
    const seqs = new Map<string, number[]>();
    for (const e of events) {
      if (!e.key.startsWith(`${e.exposure_id}:`)) continue;
      const m = /^(s\d+):(\d+)$/.exec(e.key.slice(e.exposure_id.length + 1));
      if (!m) continue;
      const k = `${e.exposure_id}:${m[1]}`;
      seqs.set(k, [...(seqs.get(k) ?? []), Number(m[2])]);
    }
    const gaps: string[] = [];
    for (const [k, ns] of seqs) {
      ns.sort((a, b) => a - b);
      if (ns.some((n, i) => n !== i + 1)) gaps.push(`${k} has ${ns.join(',')}`);
    }
    const withoutEvents = ids.filter((id) => ![...seqs.keys()].some((k) => k.startsWith(`${id}:`)));

    const duplicates = {
      tickets:
        ticketRows.filter((t) => t.n > 1).length + [...jiraByLabel.values()].filter((n) => n > 1).length,
      jiraIssuesBeyondCampaigns: Math.max(0, jira.issues.size - campaignRows.length),
      slackPosts: unrecordedSlack.length,
      patchJobs: hostsInTwoRounds[0]!.n,
      patchApplies: applies.filter((a) => a.n > 1).length,
      approvals: approvals.filter((a) => a.n > 1).length,
    };
    const duplicateTotal = Object.values(duplicates).reduce((a, b) => a + b, 0);
    say(
      `seed ${seed}: kills survived ${counts.kills} (${counts.killedBeforeReady} during start-up, ${counts.selfExits} workers exited on their own), ` +
        `Temporal restarts ${counts.temporalRestarts}, PostgreSQL restarts ${counts.pgRestarts}, ` +
        `exposures ${ids.length}/${expected.exposures} (${ids.length - notResolved.length} resolved), campaigns ${campaignRows.length}/${expected.campaigns} (${ticketRows.length} tickets), ` +
        `Jira issues ${jira.issues.size}, Slack posts ${slackPosts} for ${recorded.length} messages (${originals.length} campaign messages, ${replies.length} thread replies; ${slackUpdates} updates in place), ` +
        `patch applies ${applies.reduce((a, b) => a + b.n, 0)} on ${applies.length} hosts of ${rollouts.length} rollouts ` +
        `(${applies.reduce((a, b) => a + b.calls - b.n, 0)} retried calls found the host already patched; rollouts ${[...rolloutStates].map(([s, n]) => `${n} ${s}`).join(', ')}), ` +
        `campaign decisions sent ${decisions.sent}, acknowledged ${decisions.acknowledged} for ${acknowledged.size} exposures, recorded ${approvals.length} (lost ${lostDecisions.length}), ` +
        `events ${events.length} in ${seqs.size} lifecycle sequences (gaps ${gaps.length}), ` +
        `duplicates=${duplicateTotal} ${JSON.stringify(duplicates)}, ${Math.round((Date.now() - started) / 1000)} s`,
    );

    expect(counts.kills).toBeGreaterThanOrEqual(KILLS);
    expect(ids).toHaveLength(expected.exposures);
    expect(notResolved).toEqual([]);
    expect(pending).toEqual([]);
    expect(campaignRows).toHaveLength(expected.campaigns);
    expect(withoutTicket).toEqual([]);
    expect(ticketRows.every((t) => campaignIds.has(t.group_key))).toBe(true);
    expect(duplicates).toEqual({
      tickets: 0,
      jiraIssuesBeyondCampaigns: 0,
      slackPosts: 0,
      patchJobs: 0,
      patchApplies: 0,
      approvals: 0,
    });
    expect(withoutMessage).toEqual([]);
    expect(replies).toHaveLength(expected.replies);
    expect(misthreaded).toEqual([]);
    expect(rollouts.filter((r) => r.status !== 'succeeded')).toEqual([]);
    expect(unapplied).toEqual([]);
    expect(lostDecisions).toEqual([]);
    expect(unapproved).toEqual([]);
    expect(withoutEvents).toEqual([]);
    expect(gaps).toEqual([]);
  });
});

/**
 * What keeps the loop from being finished: exposures missing or not resolved, campaign workflows
 * still running, campaign tickets still open. Empty when it is done.
 */
async function unfinished(
  pool: Pool,
  client: Client,
  jira: FakeJira,
  states: Map<string, string>,
  exposures: number,
): Promise<string[]> {
  const out: string[] = [];
  const open = [...states.values()].filter((s) => s !== 'resolved').length;
  if (states.size < exposures || open > 0)
    return [`${open} of ${states.size}/${exposures} exposures not resolved`];
  const { rows } = await pool.query<{ id: string; shards: number }>('select id, shards from campaigns');
  for (const c of rows)
    for (let shard = 1; shard <= c.shards; shard++) {
      const wf = campaignWorkflowId(c.id, shard);
      const { status } = await client.workflow.getHandle(wf).describe();
      if (status.name !== 'COMPLETED') out.push(`${wf} is ${status.name}`);
    }
  const notDone = [...jira.issues.values()].filter((i) => i.fields.status !== 'Done');
  if (notDone.length) out.push(`Jira issues not done: ${notDone.map((i) => i.key).join(', ')}`);
  return out;
}

/** Where each unfinished rollout is: its view, what it waits for, and the scope's held slots. */
async function describeStuckRollouts(pool: Pool, client: Client): Promise<void> {
  const { rows } = await pool.query<{ id: string; scope: string; status: string }>(
    `select id, scope, status from patch_rollouts where status <> 'succeeded'`,
  );
  for (const r of rows) {
    const handle = client.workflow.getHandle(r.id);
    const view = await handle.query(patchRolloutQuery).catch((err: Error) => err.message);
    const described = await handle.describe().catch(() => undefined);
    const activities = (described?.raw.pendingActivities ?? []).map(
      (a) => `${a.activityType?.name} attempt ${a.attempt} (${a.lastFailure?.message ?? 'no failure'})`,
    );
    const { rows: held } = await pool.query<{ rollout_id: string; host: string; lease_until: Date }>(
      `select rollout_id, host, lease_until from patch_jobs where scope = $1 and status = 'applying'`,
      [r.scope],
    );
    say(
      `rollout ${r.id} is ${r.status}: ${typeof view === 'string' ? view : `${view.status}, hosts ${view.hosts.map((h) => `${h.host} ${h.status}`).join(', ')}`}; ` +
        `workflow ${described?.status.name ?? '?'}, pending ${activities.join('; ') || 'none'}; ` +
        `slots held in ${r.scope}: ${held.map((h) => `${h.rollout_id} ${h.host} until ${h.lease_until.toISOString()}`).join(', ') || 'none'}`,
    );
  }
}

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: (message: string) => console.error(message),
};
