// Shared set-up of the ticket tests: the fakes' configuration in ctem.yaml terms (secrets through
// env: references), a worker on the real Temporal server running the real activities with the
// ticket test workflows, and the HTTP server with the inbound webhooks.
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, type Worker } from '@temporalio/worker';
import { pino } from 'pino';
import { configSchema, type Config } from '../../domain/config.ts';
import { createWorker } from '../../worker/worker.ts';
import { HttpServer } from '../../bots/http.ts';
import { registerTicketWebhooks } from '../../bots/webhooks/index.ts';
import type { CampaignSummary } from '../../domain/ports.ts';
import type { Pool } from '../../runtime/pool.ts';
import type { TestTemporal } from '../support/temporal.ts';
import { testDeps } from '../support/deps.ts';

export const silentLog = pino({ level: process.env.CTEM_TEST_LOG ?? 'silent' });

const here = path.dirname(fileURLToPath(import.meta.url));

/** The ticket test workflows (plus the production poller), bundled once per test file. */
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

let unitCounter = 0;

/** A remediation unit as the lifecycle summarises it: "upgrade openssl on web-01", two CVEs. */
export function sampleUnit(overrides: Partial<CampaignSummary> = {}): CampaignSummary {
  const n = ++unitCounter;
  const tag = randomBytes(3).toString('hex');
  const exposureBase = 100 + n;
  return {
    id: `ru:production:alice:${exposureBase}:${tag}`,
    scope: 'production',
    owner: 'alice',
    action: 'Upgrade openssl to 3.0.8 or later on web-01',
    priority: 'Act',
    slaDue: '2031-05-01T12:00:00.000Z',
    url: `https://ctem.example.com/units/${tag}`,
    exposures: [
      {
        id: `${exposureBase}:CVE-2023-0286-${tag}`,
        weaknessKey: 'CVE-2023-0286',
        title: 'X.400 address type confusion in X.509 GeneralName',
        asset: 'web-01',
        state: 'remediating',
        priority: 'Act',
        reasons: [
          'CISA KEV: known exploited',
          'EPSS 0.92 (99th percentile)',
          'internet-facing, critical asset',
        ],
        package: { name: 'openssl', version: '3.0.2', fixedVersion: '3.0.8' },
      },
      {
        id: `${exposureBase}:CVE-2022-3602-${tag}`,
        weaknessKey: 'CVE-2022-3602',
        title: 'X.509 email address 4-byte buffer overflow "quote" & <b>',
        asset: 'web-01',
        state: 'remediating',
        priority: 'Attend',
        reasons: ['CVSS 7.5 (AV:N/AC:L)'],
        package: { name: 'openssl', version: '3.0.2', fixedVersion: '3.0.7' },
      },
    ],
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
