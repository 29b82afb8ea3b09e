// Patching from the campaign lifecycle, on the real Temporal server and PostgreSQL: approved
// exposures run their campaign's patch rollout as a child workflow (workflows/patch.ts, one per
// approval round, every host of the round in it, canary first) through the real
// executors — SSH against a real sshd with package-manager shims, Satellite against the local Katello
// server, WSUS through an sshd with the powershell shim. The plan (dry run) is shown in the approval
// request; only a scope approver may approve; an unanswered request escalates; nothing runs outside
// the maintenance window; the evidence is recorded; the exposures then verify by re-scan. A failed
// step stops the rollout and escalates. Each test has its own scope: a campaign is one fix in one
// scope for one owner, and these tests' fixes are the same openssl upgrade.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, type Config } from '../../domain/config.ts';
import { exposureId } from '../../domain/exposure.ts';
import { applyDecision, decideCampaign } from '../../lifecycle/decide.ts';
import { dispatchChanges } from '../../lifecycle/dispatch.ts';
import { scanChangesSignal } from '../../contracts/campaign.ts';
import {
  approvePatchUpdate,
  patchRolloutQuery,
  rejectPatchUpdate,
  type PatchRolloutStatus,
  type PatchRolloutView,
} from '../../contracts/patch.ts';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testSshd, type Sshd } from '../support/sshd.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { startFakeSatellite, type FakeSatellite } from '../fakes/satellite.ts';
import { becomeHost, hostState, type FakeHostState } from '../patching/fakeHost.ts';
import { powershellShim, setWsusState, wsusState } from '../patching/fakeWsus.ts';
import {
  campaignOf,
  eventTypes,
  eventually,
  newPortLog,
  newScan,
  recordingPorts,
  seedExposures,
  untilState,
  view,
} from './support.ts';
import { testDeps } from '../support/deps.ts';

const hhmm = (d: Date) => d.toISOString().slice(11, 16);
const allDays = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const now = new Date();
const closedOpensAt = new Date(now.getTime() + 3 * 3_600_000);
const fixed = '3.0.11-1~deb12u2';
const openssl = { name: 'openssl', fixedVersion: fixed };

const log = newPortLog();
const ports = recordingPorts(log);

let db: TestDatabase;
let temporal: TestTemporal;
let hostA: Sshd;
let hostB: Sshd;
let wsus: Sshd;
let satellite: FakeSatellite;
let worker: Worker;
let running: Promise<void>;
let taskQueue: string;
let config: Config;

const debian = (sshd: Sshd, extra: Partial<FakeHostState> = {}): FakeHostState => ({
  packages: { openssl: '3.0.11-1~deb12u1', libssl3: '3.0.11-1~deb12u1' },
  candidates: { openssl: fixed, libssl3: fixed },
  rebootFlagFile: path.join(sshd.stateDir, 'reboot-required'),
  ...extra,
});

beforeAll(async () => {
  db = await testDatabase();
  temporal = await testTemporal();
  hostA = await testSshd();
  [hostB, wsus] = await Promise.all([
    testSshd({ authorizedKeys: [hostA.publicKey] }),
    testSshd({ shims: { powershell: powershellShim }, authorizedKeys: [hostA.publicKey] }),
  ]);
  satellite = await startFakeSatellite({
    username: 'ctem',
    password: 'lifecycle-satellite-token',
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
  process.env.CTEM_TEST_LIFECYCLE_SATELLITE_TOKEN = 'lifecycle-satellite-token';
  const knownHosts = path.join(hostA.dir, 'known_hosts.lifecycle');
  await writeFile(
    knownHosts,
    [hostA, hostB, wsus].map((s) => `[127.0.0.1]:${s.port} ${s.hostPublicKey}`).join('\n') + '\n',
  );
  const ssh = (s: Sshd) => ({ address: '127.0.0.1', port: s.port });
  const roles = { owner: ['bob'], approver: ['alice'], securityLead: ['sam'], ciso: ['cyrus'] };
  const openWindow = {
    days: allDays,
    start: hhmm(new Date(now.getTime() - 3_600_000)),
    end: hhmm(new Date(now.getTime() + 2 * 3_600_000)),
    timezone: 'UTC',
  };
  const scope = (name: string, patch: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    name,
    roles,
    channel: { slack: `C0${name.toUpperCase()}` },
    scan: { connector: 'recording' },
    maintenanceWindow: openWindow,
    patch,
    ...extra,
  });
  config = configSchema.parse({
    version: 1,
    people: ['alice', 'bob', 'sam', 'cyrus', 'mallory'].map((id) => ({ id, name: id })),
    scopes: [
      scope('prod', { executor: 'ssh' }),
      scope('joined', { executor: 'ssh' }),
      scope('fragile', { executor: 'ssh' }),
      scope(
        'frozen',
        { executor: 'ssh', autoApprove: true },
        {
          maintenanceWindow: {
            days: allDays,
            start: hhmm(closedOpensAt),
            end: hhmm(new Date(closedOpensAt.getTime() + 3_600_000)),
            timezone: 'UTC',
          },
        },
      ),
      scope('slow', { executor: 'ssh', approvalTimeout: '3s' }),
      scope('rhel', { executor: 'satellite' }),
      scope('windows', { executor: 'wsus', targetGroup: 'Production Servers' }),
    ],
    integrations: {
      recording: {},
      ssh: {
        user: hostA.user,
        privateKey: `file:${hostA.privateKeyPath}`,
        knownHosts,
        hosts: {
          'web-01': ssh(hostA),
          'web-02': ssh(hostB),
          'web-03': ssh(hostA),
          'web-04': ssh(hostA),
          'web-05': ssh(hostA),
        },
        rebootRequiredFile: path.join(hostA.stateDir, 'reboot-required'),
      },
      satellite: {
        url: satellite.url,
        username: 'ctem',
        password: 'env:CTEM_TEST_LIFECYCLE_SATELLITE_TOKEN',
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
  taskQueue = temporal.taskQueue('lifecycle-patch');
  worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
  running = worker.run();
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await satellite?.close();
});

const person = (personId: string, via: 'api' | 'slack' | 'teams' = 'api') => ({ personId, via });

/** A new exposure on `host`, dispatched as a scan would, waiting for its owner's decision. */
async function newExposure(
  scope: string,
  host: string,
  weakness: string,
  pkg?: { name: string; fixedVersion?: string },
) {
  const s = await seedExposures(db.pool, {
    scope,
    weaknesses: [weakness],
    host,
    ...(pkg ? { package: pkg } : {}),
  });
  const id = s.ids[0]!;
  await dispatchChanges(
    testDeps({ pool: db.pool, config, registry: ports }),
    temporal.client,
    [{ exposureId: id, change: 'new', scanId: s.scanId, at: s.at }],
    { taskQueue },
  );
  await untilState(temporal.client, db.pool, id, 'awaiting-decision');
  return { id, assetId: s.assetId };
}

/** Another weakness on an asset already in the inventory, found by a later scan and dispatched. */
async function laterExposure(
  assetId: number,
  scope: string,
  weakness: string,
  pkg: { name: string; fixedVersion: string },
): Promise<string> {
  const at = new Date().toISOString();
  const scanId = (
    await db.pool.query<{ id: number }>(
      `insert into scans (scanner, format, source, scope, started_at, finished_at) values ('test', 'test', 'later', $1, $2, $2) returning id`,
      [scope, at],
    )
  ).rows[0]!.id;
  const id = exposureId(assetId, weakness);
  await db.pool.query(
    `insert into exposures (id, asset_id, vuln_key, scope, state, first_seen, last_seen, first_scan_id, last_scan_id)
     values ($1, $2, $3, $4, 'open', $5, $5, $6, $6)`,
    [id, assetId, weakness, scope, at, scanId],
  );
  await db.pool.query(
    `insert into vulnerabilities (key, title) values ($1, $1) on conflict (key) do nothing`,
    [weakness],
  );
  await db.pool.query(
    `insert into observations (exposure_id, scanner, asset_id, vuln_key, first_seen, last_seen, first_scan_id, last_scan_id,
                               kind, title, severity, package_name, package_version, fixed_version, package_type)
     values ($1, 'test', $2, $3, $4, $4, $5, $5, 'vulnerability', $3, 'high', $6, '1.0', $7, 'deb')`,
    [id, assetId, weakness, at, scanId, pkg.name, pkg.fixedVersion],
  );
  await dispatchChanges(
    testDeps({ pool: db.pool, config, registry: ports }),
    temporal.client,
    [{ exposureId: id, change: 'new', scanId, at }],
    { taskQueue },
  );
  await untilState(temporal.client, db.pool, id, 'awaiting-decision');
  return id;
}

/** The owner approves the fix; the campaign starts a patch rollout for it. */
async function approveFix(id: string): Promise<WorkflowHandle> {
  expect(
    await applyDecision(temporal.client, db.pool, id, { kind: 'approve', actor: person('bob') }),
  ).toEqual({
    ok: true,
    state: 'remediating',
  });
  return await rolloutOf(id);
}

async function rolloutOf(id: string): Promise<WorkflowHandle> {
  const v = await eventually(
    'the patch rollout',
    () => view(temporal.client, db.pool, id),
    (x) => x.patchRolloutId !== undefined,
  );
  return temporal.client.workflow.getHandle(v.patchRolloutId!);
}

async function rolloutStatus(handle: WorkflowHandle, status: PatchRolloutStatus): Promise<PatchRolloutView> {
  return await eventually(
    `rollout ${handle.workflowId} ${status}`,
    () => handle.query(patchRolloutQuery),
    (r) => r.status === status,
  );
}

const installs = async (sshd: Sshd) => (await sshd.calls('apt-get')).filter((c) => c.argv[0] === 'install');

async function notificationsLike(pattern: string) {
  return (
    await db.pool.query<{ kind: string; level: number | null; recipients: string[] }>(
      'select kind, level, recipients from notifications where key like $1 order by key',
      [pattern],
    )
  ).rows;
}

/** A scan proves every exposure of a campaign gone: they resolve, and the campaign ends. */
async function resolveByScan(ids: string[], scope: string): Promise<void> {
  const scan = await newScan(db.pool, scope, new Date(Date.now() + 1_000));
  const campaign = temporal.client.workflow.getHandle((await campaignOf(db.pool, ids[0]!)).workflowId);
  await campaign.signal(
    scanChangesSignal,
    ids.map((exposureId) => ({ exposureId, kind: 'absent' as const, ...scan })),
  );
  await campaign.result();
  for (const id of ids) expect((await view(temporal.client, db.pool, id)).state).toBe('resolved');
}

describe('patching from the campaign lifecycle', () => {
  it('SSH: the plan goes to the approvers, an approver (not the owner, not a stranger) approves, the host is patched in the window, the evidence is kept and the re-scan requested', async () => {
    await becomeHost(hostA, 'apt', debian(hostA));
    const { id, assetId } = await newExposure('prod', 'web-01', 'CVE-2023-5678', openssl);
    const rollout = await approveFix(id);
    const waiting = await rolloutStatus(rollout, 'awaiting-approval');
    expect(waiting.plan!.summary).toContain(`upgrade openssl 3.0.11-1~deb12u1 → ${fixed}`);
    expect(waiting.approvers).toEqual(['alice', 'sam', 'cyrus']);

    // The approval request carries the dry run and names the rollout the chat buttons answer.
    const request = await eventually(
      'the approval request',
      async () => log.notifications.find((n) => n.patchRolloutId === rollout.workflowId),
      (n) => n !== undefined,
    );
    expect(request!.kind).toBe('decision-request');
    expect(request!.to).toEqual(['alice', 'sam']);
    expect(request!.text).toContain('Approve this patch?');
    expect(request!.text).toContain(`upgrade openssl 3.0.11-1~deb12u1 → ${fixed}`);
    expect(await installs(hostA)).toEqual([]);

    for (const who of ['bob', 'mallory']) {
      const refused = await rollout
        .executeUpdate(approvePatchUpdate, { args: [{ actor: person(who, 'slack') }] })
        .catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
      expect((refused as WorkflowUpdateFailedError).cause?.message).toBe(
        `${who} may not approve patches in scope prod; approvers: alice, sam, cyrus`,
      );
    }
    expect(await installs(hostA)).toEqual([]);
    await rollout.executeUpdate(approvePatchUpdate, {
      args: [{ actor: person('alice', 'slack'), comment: 'go' }],
    });

    const verifying = await untilState(temporal.client, db.pool, id, 'verifying', 120_000);
    expect((await hostState(hostA)).packages.openssl).toBe(fixed);
    expect((await installs(hostA)).map((c) => c.argv.includes('openssl'))).toEqual([true]);
    const jobs = (
      await db.pool.query<{ host: string; status: string; output: string }>(
        'select host, status, output from patch_jobs where rollout_id = $1',
        [rollout.workflowId],
      )
    ).rows;
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ host: 'web-01', status: 'succeeded' });
    expect(jobs[0]!.output).toContain(`Setting up openssl (${fixed}) ...`);
    const rescans = await eventually(
      'the verifying re-scan',
      async () => log.rescans.filter((r) => r.assetIds[0] === assetId),
      (r) => r.length === 1,
    );
    expect(rescans[0]).toMatchObject({ weaknessKeys: ['CVE-2023-5678'], notBefore: verifying.fixedAt });
    // The re-scan request is on record once the connector has answered.
    const events = await eventually(
      'the re-scan on record',
      async () =>
        (
          await db.pool.query<{ type: string; actor: string }>(
            'select type, actor from events where exposure_id = $1 order by id',
            [id],
          )
        ).rows,
      (rows) => rows.some((e) => e.type === 'rescan-requested'),
    );
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining([
        'approve',
        'patch-requested',
        'patch-planned',
        'patch-approved',
        'patch-host-succeeded:web-01',
        'patch-succeeded',
        'verifying',
        'rescan-requested',
      ]),
    );
    expect(events.find((e) => e.type === 'patch-approved')!.actor).toBe('alice');
    await resolveByScan([id], 'prod');
  }, 240_000);

  it('two weaknesses fixed by one upgrade on one host: one rollout, one install; an exposure found later is patched by the next round', async () => {
    await becomeHost(hostA, 'apt', debian(hostA));
    const first = await newExposure('joined', 'web-05', 'CVE-2023-5678', openssl);
    const second = await laterExposure(first.assetId, 'joined', 'CVE-2023-6129', openssl);
    const { campaignId } = await campaignOf(db.pool, first.id);
    expect((await campaignOf(db.pool, second)).campaignId).toBe(campaignId);
    // One decision for the campaign: one round, one rollout for both exposures.
    const approved = await decideCampaign(temporal.client, db.pool, campaignId, {
      kind: 'approve',
      actor: person('bob'),
    });
    expect(approved.applied.map((a) => a.exposureId).sort()).toEqual([first.id, second].sort());
    const rollout = await rolloutOf(first.id);
    expect(rollout.workflowId).toBe(`patch-${campaignId}-r1`);
    expect((await rolloutOf(second)).workflowId).toBe(rollout.workflowId);
    await rolloutStatus(rollout, 'awaiting-approval');
    expect(
      (
        await db.pool.query('select exposure_ids from patch_rollouts where id = $1', [rollout.workflowId])
      ).rows[0].exposure_ids.sort(),
    ).toEqual([first.id, second].sort());

    // A third weakness found while the rollout waits: its approval is the campaign's next round.
    const third = await laterExposure(first.assetId, 'joined', 'CVE-2024-0727', openssl);
    expect((await campaignOf(db.pool, third)).campaignId).toBe(campaignId);
    const next = await approveFix(third);
    expect(next.workflowId).toBe(`patch-${campaignId}-r2`);
    expect((await rolloutStatus(next, 'awaiting-approval')).hosts.map((h) => h.host)).toEqual(['web-05']);
    expect(
      (await db.pool.query('select exposure_ids from patch_rollouts where id = $1', [next.workflowId]))
        .rows[0],
    ).toEqual({ exposure_ids: [third] });

    await rollout.executeUpdate(approvePatchUpdate, { args: [{ actor: person('alice') }] });
    for (const id of [first.id, second]) await untilState(temporal.client, db.pool, id, 'verifying', 120_000);
    expect((await installs(hostA)).length).toBe(1);
    expect((await view(temporal.client, db.pool, third)).state).toBe('remediating');
    await next.executeUpdate(rejectPatchUpdate, {
      args: [{ actor: person('alice'), comment: 'done by r1' }],
    });
    await eventually(
      'the rejected round on record',
      () => eventTypes(db.pool, third),
      (t) => t.includes('patch-rollout-rejected'),
    );
    expect((await installs(hostA)).length).toBe(1);
    await resolveByScan([first.id, second, third], 'joined');
  }, 240_000);

  it('SSH: a failed step stops the rollout and escalates; the exposure stays in remediation and is not sent to verification', async () => {
    await becomeHost(hostB, 'apt', debian(hostB, { failUpgrade: true }));
    const { id, assetId } = await newExposure('fragile', 'web-02', 'CVE-2023-5678', openssl);
    const rollout = await approveFix(id);
    await rolloutStatus(rollout, 'awaiting-approval');
    await rollout.executeUpdate(approvePatchUpdate, { args: [{ actor: person('sam', 'teams') }] });
    await eventually(
      'the exposure to hear of the failure',
      () => eventTypes(db.pool, id),
      (t) => t.includes('patch-rollout-failed'),
      120_000,
    );
    const v = await view(temporal.client, db.pool, id);
    expect(v.state).toBe('remediating');
    expect(v.fixedAt).toBeUndefined();
    expect((await rollout.query(patchRolloutQuery)).status).toBe('failed');
    const escalation = await notificationsLike(`%:patch-failed:${rollout.workflowId}`);
    expect(escalation).toEqual([{ kind: 'escalation', level: 1, recipients: ['bob', 'sam'] }]);
    expect(v.patchRolloutId).toBeUndefined();
    expect(await eventTypes(db.pool, id)).toEqual(
      expect.arrayContaining(['patch-host-failed:web-02', 'patch-failed']),
    );
    expect(log.rescans.filter((r) => r.assetIds[0] === assetId)).toEqual([]);
  }, 240_000);

  it('waits for the scope maintenance window before touching anything (auto-approved scope)', async () => {
    await becomeHost(hostA, 'apt', debian(hostA));
    const { id } = await newExposure('frozen', 'web-03', 'CVE-2023-5678', openssl);
    const rollout = await approveFix(id);
    const waiting = await rolloutStatus(rollout, 'waiting-for-window');
    expect(waiting.decision).toMatchObject({ by: 'policy', approved: true });
    expect(Date.parse(waiting.windowOpensAt!)).toBeGreaterThan(Date.now());
    expect(waiting.windowOpensAt!.slice(11, 16)).toBe(hhmm(closedOpensAt));
    expect(await installs(hostA)).toEqual([]);
    expect(
      (
        await db.pool.query('select count(*)::int as n from patch_jobs where rollout_id = $1', [
          rollout.workflowId,
        ])
      ).rows[0],
    ).toEqual({ n: 0 });
    expect((await view(temporal.client, db.pool, id)).state).toBe('remediating');
  }, 240_000);

  it('escalates an approval request nobody answers, and still takes the approval after', async () => {
    await becomeHost(hostA, 'apt', debian(hostA));
    const { id } = await newExposure('slow', 'web-04', 'CVE-2023-5678', openssl);
    const rollout = await approveFix(id);
    await rolloutStatus(rollout, 'awaiting-approval');
    const escalated = await eventually(
      'the approval escalation',
      () => notificationsLike(`%:patch-approval-timeout-1:${rollout.workflowId}`),
      (rows) => rows.length === 1,
    );
    expect(escalated[0]).toMatchObject({ kind: 'escalation', level: 1, recipients: ['alice', 'sam'] });
    const message = log.notifications.find((n) =>
      n.key.includes(`patch-approval-timeout-1:${rollout.workflowId}`),
    );
    expect(message!.channels).toEqual({ slack: 'C0SLOW' });
    expect(message!.text).toContain(`No decision on the patch of`);
    expect(message!.patchRolloutId).toBe(rollout.workflowId);
    expect((await rollout.query(patchRolloutQuery)).approvalEscalations).toBeGreaterThanOrEqual(1);
    expect(await installs(hostA)).toEqual([]);
    await rollout.executeUpdate(approvePatchUpdate, { args: [{ actor: person('cyrus') }] });
    await untilState(temporal.client, db.pool, id, 'verifying', 120_000);
    expect((await hostState(hostA)).packages.openssl).toBe(fixed);
  }, 240_000);

  it('Satellite: plan with the errata, approval, the errata job in the window, its output as evidence, re-scan requested', async () => {
    const { id, assetId } = await newExposure('rhel', 'rhel9-db-01.example.com', 'CVE-2023-5678', {
      name: 'openssl',
    });
    const rollout = await approveFix(id);
    const waiting = await rolloutStatus(rollout, 'awaiting-approval');
    expect(waiting.plan!.steps[0]!.description).toContain(
      'Errata search query: errata_id ^ (RHSA-2024:0310)',
    );
    expect(satellite.jobs).toEqual([]);
    await rollout.executeUpdate(approvePatchUpdate, { args: [{ actor: person('alice', 'slack') }] });
    const verifying = await untilState(temporal.client, db.pool, id, 'verifying', 120_000);
    expect(satellite.jobs.map((j) => [j.hostName, j.errataIds, j.status])).toEqual([
      ['rhel9-db-01.example.com', ['RHSA-2024:0310'], 'succeeded'],
    ]);
    const job = (
      await db.pool.query<{ status: string; remote_job_id: string; output: string }>(
        'select status, remote_job_id, output from patch_jobs where rollout_id = $1',
        [rollout.workflowId],
      )
    ).rows[0]!;
    expect(job).toMatchObject({ status: 'succeeded', remote_job_id: String(satellite.jobs[0]!.id) });
    expect(job.output).toContain('Upgrading        : openssl-1:3.0.7-25.el9_3.x86_64');
    await eventually(
      'the verifying re-scan',
      async () => log.rescans.filter((r) => r.assetIds[0] === assetId),
      (r) => r.length === 1 && r[0]!.notBefore === verifying.fixedAt,
    );
  }, 240_000);

  it('WSUS: the KB the scanner named is approved for the target group after the approval, the JSON report kept, re-scan requested', async () => {
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
    // What Nessus says to do about it: the KB the campaign is about and the plan is made of.
    await db.pool.query(
      `insert into vulnerabilities (key, title, reported_solution)
       values ($1, $1, 'Microsoft has released KB5034439 to address this issue.')`,
      ['CVE-2024-20666'],
    );
    const { id, assetId } = await newExposure('windows', 'app-01.example.com', 'CVE-2024-20666');
    expect((await campaignOf(db.pool, id)).campaignId).toMatch(/^cmp:windows:bob:/);
    expect(
      (
        await db.pool.query(
          'select c.fix_key from campaigns c join exposures e on e.campaign_id = c.id where e.id = $1',
          [id],
        )
      ).rows[0],
    ).toEqual({ fix_key: 'advisory:KB5034439' });
    const rollout = await approveFix(id);
    const waiting = await rolloutStatus(rollout, 'awaiting-approval');
    expect(waiting.plan!.summary).toContain(
      'KB5034439: 2024-01 Security Update for Windows Server 2022 (KB5034439) — will be approved for Install',
    );
    expect((await wsusState(wsus)).approvals).toEqual({});
    await rollout.executeUpdate(approvePatchUpdate, { args: [{ actor: person('alice', 'teams') }] });
    await untilState(temporal.client, db.pool, id, 'verifying', 120_000);
    expect((await wsusState(wsus)).approvals).toEqual({
      '5c3b2bd6-9a14-4c8f-8b8e-0c2f1a0f6a11': ['Production Servers'],
    });
    const job = (
      await db.pool.query<{ output: string }>('select output from patch_jobs where rollout_id = $1', [
        rollout.workflowId,
      ])
    ).rows[0]!;
    expect(job.output).toContain('"approvedNow":true');
    await eventually(
      'the verifying re-scan',
      async () => log.rescans.filter((r) => r.assetIds[0] === assetId),
      (r) => r.length === 1,
    );
  }, 240_000);
});
