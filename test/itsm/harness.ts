// Shared set-up of the ticket tests: the fakes' configuration in ctem.yaml terms (secrets through
// env: references), campaigns as the lifecycle files them (seeded exposures put in their campaign,
// read back as the CampaignSummary a ticket is written from), a worker in this process for the
// crash test's small workflow, and the HTTP server with the inbound webhooks.
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, type Worker } from '@temporalio/worker';
import { pino } from 'pino';
import { configSchema, type Config } from '../../domain/config.ts';
import { exposureId, type ExposureState } from '../../domain/exposure.ts';
import { createWorker } from '../../worker/worker.ts';
import { HttpServer } from '../../bots/http.ts';
import { registerTicketWebhooks } from '../../bots/webhooks/index.ts';
import { assignCampaigns, campaignSummary } from '../../lifecycle/campaigns.ts';
import type { CampaignSummary } from '../../domain/ports.ts';
import type { Pool } from '../../runtime/pool.ts';
import type { TestTemporal } from '../support/temporal.ts';
import { testDeps } from '../support/deps.ts';
import { seedExposures } from '../lifecycle/support.ts';

export const silentLog = pino({ level: process.env.CTEM_TEST_LOG ?? 'silent' });

const here = path.dirname(fileURLToPath(import.meta.url));

/** The crash test's workflow (plus the production poller), bundled once per test file. */
export async function bundleTicketWorkflows(): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.join(here, 'workflows.ts'),
    logger: {
      log: () => undefined,
      trace: () => undefined,
      debug: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      error: (m: string) => console.error(m),
    },
  });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ctem-itsm-'));
  const file = path.join(dir, 'workflows.js');
  await writeFile(file, code);
  return file;
}

/** Put a secret in the environment under a fresh name and return its env: reference. */
export function envSecret(value: string): `env:${string}` {
  const name = `CTEM_TEST_SECRET_${randomBytes(4).toString('hex').toUpperCase()}`;
  process.env[name] = value;
  return `env:${name}`;
}

export function configWith(integrations: Record<string, unknown>, scopes: unknown[] = []): Config {
  return configSchema.parse({ version: 1, integrations, scopes });
}

/**
 * A scope filing its campaigns' tickets in `system`, owned and approved by olivia, its verifying
 * re-scans asked of the "recording" scan connector when `rescans` is set (the test's registry
 * provides it; a worker in another process has no such connector).
 */
export function ticketScopeConfig(opts: {
  scope: string;
  system: string;
  section: Record<string, unknown>;
  groupBy?: string;
  rescans?: boolean;
}): Config {
  return configSchema.parse({
    version: 1,
    people: [{ id: 'olivia', name: 'Olivia Owner' }],
    integrations: { [opts.system]: opts.section, ...(opts.rescans ? { recording: {} } : {}) },
    scopes: [
      {
        name: opts.scope,
        internetFacing: true,
        criticality: 'critical',
        roles: { owner: ['olivia'], approver: ['olivia'] },
        tickets: { system: opts.system, ...(opts.groupBy ? { groupBy: opts.groupBy } : {}) },
        ...(opts.rescans ? { scan: { connector: 'recording' } } : {}),
      },
    ],
  });
}

export async function startTicketWorker(opts: {
  temporal: TestTemporal;
  pool: Pool;
  config: Config;
  taskQueue: string;
  bundlePath: string;
}): Promise<{ worker: Worker; running: Promise<void> }> {
  const worker = await createWorker({
    connection: opts.temporal.nativeConnection,
    namespace: 'default',
    taskQueue: opts.taskQueue,
    deps: testDeps({
      pool: opts.pool,
      config: opts.config,
      log: silentLog,
      workerName: `test:${process.pid}`,
    }),
    workflowBundle: { codePath: opts.bundlePath },
  });
  const running = worker.run();
  return { worker, running };
}

export async function startWebhooks(opts: {
  temporal: TestTemporal;
  pool: Pool;
  config: Config;
}): Promise<{ url: string; routes: string[]; close: () => Promise<void> }> {
  const http = new HttpServer(silentLog);
  const routes = registerTicketWebhooks(http, opts.config, {
    pool: opts.pool,
    client: opts.temporal.client,
    log: silentLog,
    baseDir: process.cwd(),
  });
  const port = await http.listen(0, '127.0.0.1');
  return { url: `http://127.0.0.1:${port}`, routes, close: () => http.close() };
}

/** A host name unique to this run, so tests sharing the database never share an asset. */
export function hostName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

export interface SeededCampaign {
  campaignId: string;
  /** Exposure ids per host, in the order given. */
  ids: string[];
  assetIds: number[];
  /** The campaign as a ticket is written from it (every exposure listed). */
  summary: CampaignSummary;
}

/** Weaknesses on an asset already seeded, as a scan would add them, fixed by `pkg`. */
async function addExposures(
  pool: Pool,
  opts: {
    scope: string;
    assetId: number;
    weaknesses: string[];
    scanId: number;
    package: { name: string; fixedVersion?: string };
  },
): Promise<string[]> {
  const ids: string[] = [];
  for (const w of opts.weaknesses) {
    const id = exposureId(opts.assetId, w);
    ids.push(id);
    await pool.query(
      `insert into exposures (id, asset_id, vuln_key, scope, state, first_seen, last_seen, first_scan_id, last_scan_id)
       values ($1, $2, $3, $4, 'open', now(), now(), $5, $5)`,
      [id, opts.assetId, w, opts.scope, opts.scanId],
    );
    await pool.query(
      `insert into vulnerabilities (key, title) values ($1, $2) on conflict (key) do nothing`,
      [w, `Test weakness ${w}`],
    );
    await pool.query(
      `insert into observations (exposure_id, scanner, asset_id, vuln_key, first_seen, last_seen, first_scan_id, last_scan_id,
                                 kind, title, severity, package_name, package_version, fixed_version, package_type)
       values ($1, 'test', $2, $3, now(), now(), $4, $4, 'vulnerability', $5, 'critical', $6, '1.0', $7, 'deb')`,
      [
        id,
        opts.assetId,
        w,
        opts.scanId,
        `Test weakness ${w}`,
        opts.package.name,
        opts.package.fixedVersion ?? null,
      ],
    );
  }
  return ids;
}

/**
 * Exposures on each host (a new one by name, or an asset seeded before by id), put in their campaign
 * as dispatch would (same scope, owner and fix: one campaign), with the state, priority, deadline
 * and reasons the lifecycle would have recorded. No workflow holds them: for the tests of the ticket
 * systems themselves.
 */
export async function seedCampaign(
  pool: Pool,
  config: Config,
  opts: {
    scope: string;
    /** `assetId`: more weaknesses on an asset seeded before (`host` is its name). */
    hosts: { host: string; weaknesses: string[]; assetId?: number }[];
    package?: { name: string; fixedVersion?: string; type?: string };
    state?: ExposureState;
    priority?: 'act' | 'attend' | 'track*' | 'track';
    slaDue?: string;
    reasons?: string[];
    /** The observation's title of each exposure (default "Test weakness <key>"). */
    title?: (weakness: string, host: string) => string;
    /** Exposures per campaign workflow (a larger campaign is split into shards). */
    shardCap?: number;
  },
): Promise<SeededCampaign> {
  const ids: string[] = [];
  const assetIds: number[] = [];
  const pkg = opts.package ?? { name: 'openssl', fixedVersion: '3.0.8' };
  await pool.query('insert into scopes (name) values ($1) on conflict do nothing', [opts.scope]);
  const scanId = (
    await pool.query<{ id: number }>(
      `insert into scans (scanner, format, source, scope, started_at, finished_at) values ('test', 'test', 'seed', $1, now(), now()) returning id`,
      [opts.scope],
    )
  ).rows[0]!.id;
  for (const h of opts.hosts) {
    let hostIds: string[];
    if (h.assetId !== undefined) {
      hostIds = await addExposures(pool, {
        scope: opts.scope,
        assetId: h.assetId,
        weaknesses: h.weaknesses,
        scanId,
        package: pkg,
      });
      assetIds.push(h.assetId);
    } else {
      const seeded = await seedExposures(pool, {
        scope: opts.scope,
        host: h.host,
        weaknesses: h.weaknesses,
        scanId,
        package: pkg,
      });
      hostIds = seeded.ids;
      assetIds.push(seeded.assetId);
    }
    ids.push(...hostIds);
    if (opts.title)
      for (const [i, w] of h.weaknesses.entries())
        await pool.query('update observations set title = $2 where exposure_id = $1', [
          hostIds[i],
          opts.title(w, h.host),
        ]);
  }
  if (opts.package?.type)
    await pool.query('update observations set package_type = $2 where exposure_id = any($1::text[])', [
      ids,
      opts.package.type,
    ]);
  await pool.query(
    `update exposures set state = $2, priority = $3, sla_due = $4, reasons = $5 where id = any($1::text[])`,
    [
      ids,
      opts.state ?? 'remediating',
      opts.priority ?? 'act',
      opts.slaDue ?? '2031-05-01T12:00:00.000Z',
      JSON.stringify(opts.reasons ?? ['CISA KEV: known exploited', 'EPSS 0.92 (99th percentile)']),
    ],
  );
  const places = await assignCampaigns(pool, config, ids, opts.shardCap ? { shardCap: opts.shardCap } : {});
  const campaignIds = new Set([...places.values()].map((p) => p.campaignId));
  if (campaignIds.size !== 1) throw new Error(`seeded ${campaignIds.size} campaigns, expected one`);
  const campaignId = [...campaignIds][0]!;
  return { campaignId, ids, assetIds, summary: (await campaignSummary(pool, campaignId))! };
}

/** The lifecycle's record of some exposures' state (what "closed" means for a shared ticket). */
export async function setStates(pool: Pool, ids: string[], state: ExposureState): Promise<void> {
  await pool.query('update exposures set state = $2 where id = any($1::text[])', [ids, state]);
}

let sampleCounter = 0;

/**
 * A campaign as the lifecycle summarises it, for the tests of the clients' wire behaviour: "upgrade
 * openssl" on web-01 (two CVEs) and db-01 (one), each call a campaign of its own.
 */
export function sampleCampaign(overrides: Partial<CampaignSummary> = {}): CampaignSummary {
  const n = ++sampleCounter;
  const tag = `${randomBytes(5).toString('hex')}${String(n).padStart(2, '0')}`;
  const exposure = (asset: string, weaknessKey: string, title: string, priority: string) => ({
    id: `${100 + n}:${weaknessKey}-${tag}-${asset}`,
    weaknessKey,
    title,
    asset,
    state: 'remediating' as const,
    priority,
    reasons: ['CISA KEV: known exploited', 'EPSS 0.92 (99th percentile)'],
    package: { name: 'openssl', version: '3.0.2', fixedVersion: '3.0.8' },
  });
  return {
    id: `cmp:production:alice:${tag}`,
    scope: 'production',
    owner: 'alice',
    kind: 'package',
    subject: 'openssl',
    action: 'Upgrade openssl to 3.0.8 or later on 2 assets',
    priority: 'Act',
    slaDue: '2031-05-01T12:00:00.000Z',
    totals: { exposures: 3, open: 3, assets: 2, states: { remediating: 3 } },
    exposures: [
      exposure('web-01', 'CVE-2023-0286', 'X.400 address type confusion in X.509 GeneralName', 'Act'),
      exposure('web-01', 'CVE-2022-3602', 'X.509 email address 4-byte buffer overflow', 'Attend'),
      exposure('db-01', 'CVE-2023-0286', 'X.400 address type confusion in X.509 GeneralName', 'Act'),
    ],
    url: `https://ctem.example.com/campaigns/${tag}`,
    ...overrides,
  };
}

/** Poll until the check passes (for effects that arrive asynchronously: webhooks, polls). */
export async function eventually<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}
