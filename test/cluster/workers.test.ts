// Outgrowing one machine: two ctem processes (`ctem up`, as two hosts run it) on one Temporal and one
// PostgreSQL — the run's shared ones, which `npm run test:server` makes the real Temporal server on
// PostgreSQL. They poll one task queue and answer on one HTTP address (http.reusePort: the kernel
// shares the connections). The test checks that both take work and both answer HTTP; that the
// process running a campaign's Jira create, killed (SIGKILL) after Jira made the issue and before it
// heard back, leaves its campaign to the other, which finds the issue instead of making a second;
// that every campaign ends with exactly one issue; and that the webhook of a closed issue, sent to the
// shared address, moves the campaign on. A dashboard session signed in on one process is honoured by
// both (one signing key, in PostgreSQL), and signing out holds on both.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from '@temporalio/client';
import { msNumberToTs } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { configSchema } from '../../domain/config.ts';
import { externalKeyFor } from '../../tickets/content.ts';
import { freePort } from '../../runtime/ports.ts';
import { hashPassword } from '../../runtime/passwords.ts';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { FakeJira } from '../fakes/jira.ts';
import { campaignOf, eventually, seedExposures, untilState } from '../lifecycle/support.ts';
import { envSecret, hostName } from '../itsm/harness.ts';
import { campaignDriver, WAIT } from '../itsm/campaigns.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/ctem.js');
const CAMPAIGNS = 10;

interface CtemProcess {
  child: ChildProcess;
  pid: number;
  exited: Promise<number | null>;
  stderr: () => string;
}

const children: ChildProcess[] = [];
const homes: string[] = [];

/** `ctem up` in its own process, ready once it says so. */
async function ctemUp(env: NodeJS.ProcessEnv, configFile: string): Promise<CtemProcess> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'ctem-cluster-'));
  homes.push(home);
  const child = spawn(process.execPath, [bin, 'up', '--config', configFile], {
    env: { ...env, CTEM_HOME: home },
    cwd: home,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('press Ctrl-C to stop')) resolve();
    });
    void exited.then((code) => reject(new Error(`ctem up exited early (${code}):\n${err}`)));
  });
  return { child, pid: child.pid!, exited, stderr: () => err };
}

/** GET /readyz on a new connection each time (no keep-alive), so the kernel picks a process each time. */
async function readyz(port: number): Promise<{ status: number; instance: string }> {
  return await new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/readyz', agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          instance: (JSON.parse(body) as { instance: string }).instance,
        }),
      );
    });
    req.on('error', reject);
  });
}

/** One request on a new connection (no keep-alive): status, headers and body. */
async function request(
  port: number,
  method: string,
  urlPath: string,
  opts: { cookie?: string; form?: Record<string, string> } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const body = opts.form ? new URLSearchParams(opts.form).toString() : undefined;
  return await new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
        method,
        agent: false,
        headers: {
          ...(opts.cookie ? { cookie: opts.cookie } : {}),
          ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Identities of the workers that completed the workflow's tasks, from its history. */
async function taskIdentities(client: Client, workflowId: string): Promise<Set<string>> {
  const ids = new Set<string>();
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  for (const e of history.events ?? [])
    if (e.workflowTaskCompletedEventAttributes?.identity)
      ids.add(e.workflowTaskCompletedEventAttributes.identity);
  return ids;
}

describe('two ctem processes on one Temporal and one PostgreSQL', () => {
  let db: TestDatabase;
  let temporal: TestTemporal;
  let client: Client;
  const namespace = `ctem-cluster-${randomBytes(3).toString('hex')}`;
  const jira = new FakeJira({ email: 'ctem@example.com', apiToken: 'jira-token-cluster', projects: ['SEC'] });
  const webhookSecret = 'jira-webhook-cluster';

  beforeAll(async () => {
    [db, temporal] = await Promise.all([testDatabase(), testTemporal(), jira.start()]);
    // Its own namespace: `ctem up` creates its Temporal Schedules under fixed ids.
    await temporal.connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msNumberToTs(86_400_000),
    });
    client = new Client({ connection: temporal.connection, namespace });
    // Usable once the frontend's namespace cache has it (up to ~10 s on the Temporal server).
    await eventually(
      'the new namespace',
      async () =>
        await client.workflow.count().then(
          () => true,
          () => false,
        ),
      (ok) => ok,
      60_000,
    );
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await jira.close();
    for (const h of homes) rmSync(h, { recursive: true, force: true });
  });

  it('share the campaigns and the address; the process killed mid-create leaves its campaign to the other; one issue per campaign', async () => {
    const scope = hostName('cluster');
    const section = {
      url: jira.url,
      auth: { email: 'ctem@example.com', apiToken: envSecret('jira-token-cluster') },
      project: 'SEC',
      webhookSecret: envSecret(webhookSecret),
    };
    const config = configSchema.parse({
      version: 1,
      people: [{ id: 'olivia', name: 'Olivia Owner' }],
      integrations: { jira: section },
      dashboard: { accounts: [{ person: 'olivia', passwordHash: await hashPassword('olivia-cluster-pw') }] },
      scopes: [
        {
          name: scope,
          internetFacing: true,
          criticality: 'critical',
          roles: { owner: ['olivia'], approver: ['olivia'] },
          tickets: { system: 'jira' },
        },
      ],
    });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ctem-cluster-config-'));
    homes.push(dir);
    const configFile = path.join(dir, 'ctem.yaml');
    // JSON is YAML: the parsed configuration, written back as the file both processes read.
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    const taskQueue = temporal.taskQueue('cluster');
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CTEM_CONFIG: '',
      DATABASE_URL: db.url,
      CTEM_TEMPORAL_ADDRESS: inject('temporalAddress'),
      CTEM_TEMPORAL_NAMESPACE: namespace,
      CTEM_TASK_QUEUE: taskQueue,
      CTEM_HTTP_PORT: String(port),
      CTEM_HTTP_REUSE_PORT: '1',
      CTEM_METRICS_PORT: '0',
      CTEM_LOG_LEVEL: 'error',
    };
    const [a, b] = await Promise.all([ctemUp(env, configFile), ctemUp(env, configFile)]);
    const byPid = new Map([
      [a.pid, a],
      [b.pid, b],
    ]);

    // --- one address, two servers: new connections reach both processes.
    const answers = [];
    for (let i = 0; i < 40; i++) answers.push(await readyz(port));
    expect(answers.every((r) => r.status === 200)).toBe(true);
    const instances = new Set(answers.map((r) => Number(r.instance.split('@')[0])));
    expect([...instances].sort()).toEqual([a.pid, b.pid].sort());

    // --- a dashboard session issued by one process is good on both; signing out holds on both.
    const csrf = 'login-form-token';
    const login = await request(port, 'POST', '/dashboard/login', {
      cookie: `ctem_login=${csrf}`,
      form: { _csrf: csrf, user: 'olivia', password: 'olivia-cluster-pw' },
    });
    expect(login.status).toBe(303);
    const session = String(login.headers['set-cookie']).split(';')[0]!;
    expect(session).toMatch(/^ctem_session=.+/);
    const pages = [];
    for (let i = 0; i < 20; i++) pages.push(await request(port, 'GET', '/dashboard', { cookie: session }));
    expect(pages.map((p) => p.status)).toEqual(Array(20).fill(200));
    const pageCsrf = /name="_csrf" value="([^"]+)"/.exec(pages[0]!.body)![1]!;
    const out = await request(port, 'POST', '/dashboard/logout', {
      cookie: session,
      form: { _csrf: pageCsrf },
    });
    expect(out.status).toBe(303);
    const after = [];
    for (let i = 0; i < 20; i++) after.push(await request(port, 'GET', '/dashboard', { cookie: session }));
    expect(after.map((p) => [p.status, p.headers.location])).toEqual(
      Array(20).fill([303, '/dashboard/login']),
    );

    // --- campaigns, each one fix on two hosts, filed by both processes' workers.
    jira.options.webhook = { url: `http://127.0.0.1:${port}/webhooks/jira`, secret: webhookSecret };
    const drive = campaignDriver({ client, pool: db.pool, config, taskQueue, heartbeatTimeoutMs: 3_000 });
    const campaigns: { campaignId: string; workflowId: string; ids: string[] }[] = [];
    for (let i = 0; i < CAMPAIGNS; i++) {
      const pkg = { name: `libcluster${i}`, fixedVersion: '2.0.1' };
      const weakness = `CVE-2099-7${String(i).padStart(3, '0')}`;
      const one = await seedExposures(db.pool, {
        scope,
        host: hostName('web'),
        weaknesses: [weakness],
        package: pkg,
        exploited: true,
      });
      const two = await seedExposures(db.pool, {
        scope,
        host: hostName('db'),
        weaknesses: [weakness],
        package: pkg,
        exploited: true,
      });
      const ids = [...one.ids, ...two.ids];
      await drive.dispatch(ids, 'new', one);
      for (const id of ids) await untilState(client, db.pool, id, 'awaiting-decision', WAIT);
      const { campaignId, workflowId } = await campaignOf(db.pool, ids[0]!);
      expect((await campaignOf(db.pool, ids[1]!)).campaignId).toBe(campaignId);
      campaigns.push({ campaignId, workflowId, ids });
    }
    expect(new Set(campaigns.map((c) => c.campaignId)).size).toBe(CAMPAIGNS);
    const identities = new Set<string>();
    for (const c of campaigns)
      for (const id of await taskIdentities(client, c.workflowId)) identities.add(id);
    const pidsAtWork = new Set([...identities].map((id) => Number(id.split('@')[0])));
    expect(pidsAtWork).toEqual(new Set([a.pid, b.pid]));

    // --- the first campaign's create: Jira makes the issue, the process running it dies before
    // hearing back (it is found by the pending activity's worker identity).
    const isCreate = (r: { method: string; path: string }) =>
      r.method === 'POST' && r.path === '/rest/api/3/issue';
    const first = campaigns[0]!;
    const held = jira.holdNextMatching(isCreate);
    await drive.approveCampaign(first.campaignId);
    await held;
    const description = await client.workflow.getHandle(first.workflowId).describe();
    const running = (description.raw.pendingActivities ?? []).map((p) => p.lastWorkerIdentity ?? '');
    const victimPid = Number(running.find((id) => id)?.split('@')[0]);
    const victim = byPid.get(victimPid);
    expect(victim, `the pending create runs on ${running.join(', ')}`).toBeDefined();
    const survivor = victim === a ? b : a;
    victim!.child.kill('SIGKILL');
    await victim!.exited;
    expect(jira.withLabel(externalKeyFor(first.campaignId))).toHaveLength(1);

    // --- the survivor takes the retried create (it finds the issue) and every other campaign.
    for (const c of campaigns.slice(1)) await drive.approveCampaign(c.campaignId);
    for (const c of campaigns) {
      const ref = await drive.ticketOf(c.campaignId);
      expect(jira.withLabel(externalKeyFor(c.campaignId)).map((i) => i.key)).toEqual([ref.key]);
    }
    expect(jira.requests.filter((r) => isCreate(r) && (r.status ?? 0) < 300)).toHaveLength(CAMPAIGNS);
    // The first campaign's workflow went on on the survivor (its next workflow task after the create).
    await eventually(
      "the survivor's workflow task in the first campaign",
      async () => [...(await taskIdentities(client, first.workflowId))].map((id) => Number(id.split('@')[0])),
      (pids) => pids.includes(survivor.pid),
      WAIT,
    );

    // --- a person closes the first issue: its webhook, sent to the shared address, reaches the
    // survivor and the campaign's exposures go to verification.
    for (let i = 0; i < 10; i++)
      expect((await readyz(port)).instance).toMatch(new RegExp(`^${survivor.pid}@`));
    const ref = await drive.ticketOf(first.campaignId);
    expect(await jira.humanTransition(ref.key, 'Done', 'Dana Reviewer')).toBe(200);
    expect(jira.webhookDeliveries.at(-1)).toMatchObject({
      status: 200,
      body: { outcome: 'signalled', group: first.campaignId },
    });
    for (const id of first.ids) await untilState(client, db.pool, id, 'verifying', WAIT);

    survivor.child.kill('SIGTERM');
    expect(await survivor.exited).toBe(0);
  }, 600_000);
});
