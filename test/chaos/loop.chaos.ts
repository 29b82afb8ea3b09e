// The crash suite (`npm run test:chaos`): the demo's whole loop — ingest, triage, a Slack message to
// the owner (the local Slack Web API), the owner's approval through the decision API, a Jira ticket
// (the local Jira), a patch through the demo executor, the demo connector's re-scan, verification —
// on several scopes at once, while this driver SIGKILLs the worker process at random points (seeded,
// the seed is printed; CHAOS_SEED replays a run), kills the Temporal dev server and starts it again
// on its db file, and restarts PostgreSQL. Afterwards the records must show every exposure resolved,
// every side effect done once (counted on the fake servers and in PostgreSQL), every acknowledged
// decision in the audit log, and no gap in any exposure's event sequence.
// Knobs (env): CHAOS_SEED, CHAOS_KILLS (50), CHAOS_SCOPES (6), CHAOS_TEMPORAL_EVERY (12 kills),
// CHAOS_PG_EVERY (17 kills), CHAOS_MAX_GAP_MS (3000: longest life of a worker after "ready").
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { bundleWorkflowCode } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import { parseConfig, type Config } from '../../domain/config.ts';
import { createPool, type Pool } from '../../runtime/pool.ts';
import { migrate } from '../../runtime/migrate.ts';
import { ensureDatabase, startEmbeddedPostgres, type RunningPostgres } from '../../runtime/postgres.ts';
import { startTemporalDevServer, type RunningTemporal } from '../../runtime/temporal.ts';
import { freePort, isPortFree } from '../../runtime/ports.ts';
import { workflowsEntry } from '../../worker/worker.ts';
import { ingestFile } from '../../ingest/file.ts';
import { dispatchScan } from '../../lifecycle/dispatch.ts';
import { applyDecision } from '../../lifecycle/decide.ts';
import { FakeJira } from '../fakes/jira.ts';
import { FakeSlackApi } from '../fakes/slack-api.ts';
import { demoDir } from '../../app/demo.ts';
import { compose } from '../../app/compose.ts';
import { pino } from 'pino';

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

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

describe('crash suite: the demo loop under SIGKILL and server restarts', () => {
  it(`loses nothing and repeats nothing (seed ${seed})`, { timeout: 1_800_000 }, async () => {
    const random = rng(seed);
    say(`seed ${seed} (replay with CHAOS_SEED=${seed}); ${KILLS} kills, ${SCOPES} scopes`);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ctem-chaos-'));
    await chmod(dir, 0o755);
    cleanups.push(() => rm(dir, { recursive: true, force: true }));

    // One demo asset per scope: the demo's before/after reports with the image renamed.
    const before = await readFile(path.join(demoDir, 'scans/web-before-fix.trivy.json'), 'utf8');
    const after = await readFile(path.join(demoDir, 'scans/web-after-fix.trivy.json'), 'utf8');
    const image = (i: number) => `registry.example.com/chaos-${i}/web`;
    for (let i = 1; i <= SCOPES; i++) {
      await writeFile(
        path.join(dir, `before-${i}.json`),
        before.replaceAll('registry.example.com/shop/web', image(i)),
      );
      await writeFile(
        path.join(dir, `after-${i}.json`),
        after.replaceAll('registry.example.com/shop/web', image(i)),
      );
    }

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
      `create table chaos_patch_applies (id bigserial primary key, campaign_id text not null, hosts text not null, pid integer not null, changed boolean not null)`,
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

    const scopes = Array.from(
      { length: SCOPES },
      (_, k) => `
  - name: chaos-${k + 1}
    match: { images: ['${image(k + 1)}*'] }
    criticality: high
    internetFacing: true
    roles: { owner: [dana], securityLead: [sam] }
    channel: { slack: C0CHAOS${k + 1} }
    tickets: { system: jira }
    patch: { executor: chaos, autoApprove: true }
    scan: { connector: demo, report: after-${k + 1}.json }`,
    ).join('');
    const configText = `
version: 1
people:
  - { id: dana, name: Dana Demo, slack: U0DANA }
  - { id: sam, name: Sam Security, slack: U0SAM }
integrations:
  slack:
    botToken: env:CHAOS_SLACK_TOKEN
    signingSecret: env:CHAOS_SLACK_SIGNING
    apiUrl: ${slack.url}
    perChannelIntervalMs: 0
  jira:
    url: ${jira.url}
    auth: { email: ctem@example.com, apiToken: env:CHAOS_JIRA_TOKEN }
    project: SEC
scopes:${scopes}
`;
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
      c.stderr!.on('data', (d: Buffer) => {
        if (process.env.CHAOS_LOG) process.stderr.write(d);
      });
      return { c, ready, exited };
    };

    const counts = { kills: 0, killedBeforeReady: 0, selfExits: 0, temporalRestarts: 0, pgRestarts: 0 };
    let stopProducing = false;

    // Ingest one scope's scan every KILLS/SCOPES kills, so work arrives throughout the chaos.
    const ingested = new Set<number>();
    const ingest = async (i: number) => {
      const summary = await persist(`ingest scope ${i}`, () =>
        ingestFile(pool, path.join(dir, `before-${i}.json`), { scopes: config.scopes, scanTime: new Date() }),
      );
      await persist(`dispatch scan ${summary.scanId}`, () =>
        dispatchScan(dispatchDeps, client, summary.scanId, { taskQueue }),
      );
      ingested.add(i);
    };

    // The owner approves whatever waits for a decision, as a Slack click would (same API).
    // A decision whose answer was lost in a restart is not re-sent once the exposure moved on:
    // whether it was taken shows in the audit log.
    const acknowledged = new Set<string>();
    const sent = new Set<string>();
    const decide = async () => {
      while (!stopProducing) {
        const waiting = await pool
          .query<{ id: string }>(`select id from exposures where state = 'awaiting-decision'`)
          .then((r) => r.rows.map((x) => x.id).filter((id) => !acknowledged.has(id)))
          .catch(() => [] as string[]);
        await Promise.all(
          waiting.map(async (id) => {
            sent.add(id);
            const r = await applyDecision(client, id, {
              kind: 'approve',
              actor: { personId: 'dana', via: 'slack' },
              comment: 'chaos approval',
            }).catch(() => undefined);
            if (r?.ok) acknowledged.add(id);
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
        counts.selfExits++;
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
      if (outcome === 'exited') counts.selfExits++;
      else await kill(victim);
    }
    for (let i = ingested.size + 1; i <= SCOPES; i++) await ingest(i);

    // ---- let one worker live, and wait for every exposure to be resolved ------------------------
    say(`chaos over after ${Math.round((Date.now() - started) / 1000)} s; one worker finishes the loop`);
    // The last standby lives on and finishes the loop.
    const expected = SCOPES * 3;
    const deadline = Date.now() + FINISH_MS;
    let states: Map<string, string>;
    for (;;) {
      // A worker that died on its own (its server was being restarted) is replaced.
      if (children.size === 0) startWorker();
      const rows = await persist('read states', () =>
        pool.query<{ id: string; state: string }>(`select id, state from exposures`),
      );
      states = new Map(rows.rows.map((r) => [r.id, r.state]));
      if (states.size >= expected && [...states.values()].every((s) => s === 'resolved')) break;
      if (Date.now() > deadline) break;
      await sleep(1000);
    }
    stopProducing = true;
    await deciding;
    const ids = [...states.keys()];

    // ---- the records -------------------------------------------------------------------------------
    const q = async <T extends object>(sql: string, params: unknown[] = []) =>
      (await pool.query<T>(sql, params)).rows;
    const notResolved = [...states].filter(([, s]) => s !== 'resolved');
    const ticketRows = await q<{ group_key: string; n: number }>(
      `select group_key, count(*)::int as n from tickets group by group_key`,
    );
    const jiraByKey = new Map<string, number>();
    for (const issue of jira.issues.values())
      for (const label of issue.fields.labels.filter((l) => l.startsWith('ctem-ru-')))
        jiraByKey.set(label, (jiraByKey.get(label) ?? 0) + 1);
    const slackPosts = slack.callsTo('chat.postMessage').length;
    const slackRows = await q<{ n: number }>(
      `select count(*)::int as n from chat_messages where transport = 'slack' and message_ref is not null`,
    );
    const patchJobDupes = await q<{ n: number }>(
      `select count(*)::int as n from (select 1 from patch_jobs group by rollout_id, host having count(*) > 1) d`,
    );
    const rolloutsPerUnit = await q<{ campaign_id: string; n: number }>(
      `select campaign_id, count(*)::int as n from patch_rollouts group by campaign_id`,
    );
    const rolloutStates = await q<{ status: string; n: number }>(
      `select status, count(*)::int as n from patch_rollouts group by status order by status`,
    );
    const applies = await q<{ campaign_id: string; n: number; calls: number }>(
      `select campaign_id, count(*) filter (where changed)::int as n, count(*)::int as calls from chaos_patch_applies group by campaign_id`,
    );
    const approvals = await q<{ exposure_id: string; n: number }>(
      `select exposure_id, count(*)::int as n from events where type = 'approve' and actor = 'dana' group by exposure_id`,
    );
    const approvalsOf = new Map(approvals.map((a) => [a.exposure_id, a.n]));
    const lostDecisions = [...acknowledged].filter((id) => (approvalsOf.get(id) ?? 0) === 0);
    const unrecorded = ids.filter((id) => approvalsOf.get(id) !== 1);
    const events = await q<{ exposure_id: string; key: string }>(
      `select exposure_id, idempotency_key as key from events where exposure_id = any($1::text[]) and idempotency_key is not null`,
      [ids],
    );
    // Each lifecycle (keyed by its first run id) numbers its records and side effects 1, 2, 3… in
    // the event keys "<exposure>:<lifecycle>:<n>": a missing number is a lost record. (The
    // dispatcher's own events are keyed by scan instead and are not part of the sequence.)
    const seqs = new Map<string, number[]>();
    for (const e of events) {
      if (!e.key.startsWith(`${e.exposure_id}:`)) continue;
      const m = /^([0-9a-f]{8}-[0-9a-f-]{27}):(\d+)$/.exec(e.key.slice(e.exposure_id.length + 1));
      if (!m) continue;
      const k = `${e.exposure_id}:${m[1]}`;
      seqs.set(k, [...(seqs.get(k) ?? []), Number(m[2])]);
    }
    const gaps: string[] = [];
    for (const [k, ns] of seqs) {
      ns.sort((a, b) => a - b);
      ns.forEach((n, i) => {
        if (n !== i + 1) gaps.push(`${k} has ${ns.join(',')}`);
      });
    }
    const withoutEvents = ids.filter((id) => ![...seqs.keys()].some((k) => k.startsWith(`${id}:`)));

    const duplicates = {
      tickets: ticketRows.filter((t) => t.n > 1).length + [...jiraByKey.values()].filter((n) => n > 1).length,
      jiraIssuesBeyondUnits: Math.max(0, jira.issues.size - ticketRows.length),
      slackPosts: Math.max(0, slackPosts - slackRows[0]!.n),
      patchJobs: patchJobDupes[0]!.n + rolloutsPerUnit.filter((r) => r.n > 1).length,
      patchApplies: applies.filter((a) => a.n > 1).length,
      approvals: approvals.filter((a) => a.n > 1).length,
    };
    const duplicateTotal = Object.values(duplicates).reduce((a, b) => a + b, 0);
    say(
      `seed ${seed}: kills survived ${counts.kills} (${counts.killedBeforeReady} during start-up, ${counts.selfExits} workers exited on their own), ` +
        `Temporal restarts ${counts.temporalRestarts}, PostgreSQL restarts ${counts.pgRestarts}, ` +
        `exposures ${ids.length}/${expected} (${ids.length - notResolved.length} resolved), units ${ticketRows.length}, ` +
        `Jira issues ${jira.issues.size}, Slack posts ${slackPosts} for ${slackRows[0]!.n} messages, ` +
        `patch applies ${applies.reduce((a, b) => a + b.n, 0)} for ${rolloutsPerUnit.length} rollouts ` +
        `(${applies.reduce((a, b) => a + b.calls - b.n, 0)} retried calls found the host already patched; rollouts ${rolloutStates.map((r) => `${r.n} ${r.status}`).join(', ')}), ` +
        `decisions sent ${sent.size}, acknowledged ${acknowledged.size}, recorded ${approvals.length} (lost ${lostDecisions.length}), ` +
        `events ${events.length} in ${seqs.size} lifecycle sequences (gaps ${gaps.length}), ` +
        `duplicates=${duplicateTotal} ${JSON.stringify(duplicates)}, ${Math.round((Date.now() - started) / 1000)} s`,
    );

    expect(counts.kills).toBeGreaterThanOrEqual(KILLS);
    expect(ids).toHaveLength(expected);
    expect(notResolved).toEqual([]);
    expect(ticketRows.length).toBeGreaterThan(0);
    expect(duplicates).toEqual({
      tickets: 0,
      jiraIssuesBeyondUnits: 0,
      slackPosts: 0,
      patchJobs: 0,
      patchApplies: 0,
      approvals: 0,
    });
    expect(lostDecisions).toEqual([]);
    expect(unrecorded).toEqual([]);
    expect(withoutEvents).toEqual([]);
    expect(gaps).toEqual([]);
  });
});

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: (message: string) => console.error(message),
};
