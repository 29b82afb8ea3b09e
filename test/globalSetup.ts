// One real PostgreSQL and one real Temporal per test run, shared by every test file. Each file gets
// its own database (cloned from a migrated template) and its own task queues. The Temporal is the CLI's
// dev server, or with CTEM_TEST_TEMPORAL=server the real Temporal server persisting to this run's
// PostgreSQL (4 history shards, PostgreSQL visibility): `npm run test:server` runs the Temporal-facing
// files that way.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { bundleWorkflowCode } from '@temporalio/worker';
import { startEmbeddedPostgres, ensureDatabase } from '../runtime/postgres.ts';
import { startTemporalDevServer } from '../runtime/temporal.ts';
import {
  startTemporalServer,
  TEMPORAL_SERVER_VERSION,
  type TemporalServerPorts,
} from '../runtime/temporalServer.ts';
import { freePort, isPortFree } from '../runtime/ports.ts';
import { createPool } from '../runtime/pool.ts';
import { migrate } from '../runtime/migrate.ts';
import { workflowsEntry } from '../worker/worker.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pgServerUrl: string;
    pgTemplate: string;
    temporalAddress: string;
    workflowBundlePath: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ctem-test-'));
  await import('node:fs/promises').then((fs) => fs.chmod(dir, 0o755));
  const [pgPort, temporalPort] = [await freePort(), await freePort()];
  const onServer = process.env.CTEM_TEST_TEMPORAL === 'server';
  const pgStarted = startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port: pgPort, ephemeral: true });
  const [pg, temporal, bundle] = await Promise.all([
    pgStarted,
    onServer
      ? pgStarted.then(async (pg) =>
          startTemporalServer({
            databaseUrl: pg.url,
            dir: path.join(dir, 'temporal'),
            port: temporalPort,
            ports: await serverPorts(),
            maxConns: 10,
            logLevel: 'error',
          }),
        )
      : startTemporalDevServer({ port: temporalPort, headless: true, logLevel: 'error' }),
    bundleWorkflowCode({ workflowsPath: workflowsEntry(), logger: quietLogger }),
  ]);
  if (onServer)
    console.log(
      `tests on the Temporal server ${TEMPORAL_SERVER_VERSION} at ${temporal.address} (PostgreSQL)`,
    );

  const templateUrl = await ensureDatabase(pg.url, 'ctem_template');
  const pool = createPool(templateUrl, 1);
  await migrate(pool);
  await pool.end();

  const bundlePath = path.join(dir, 'workflow-bundle.js');
  await writeFile(bundlePath, bundle.code);

  project.provide('pgServerUrl', pg.url);
  project.provide('pgTemplate', 'ctem_template');
  project.provide('temporalAddress', temporal.address);
  project.provide('workflowBundlePath', bundlePath);

  return async () => {
    await temporal.stop();
    await pg.stop();
    await rm(dir, { recursive: true, force: true });
  };
}

/**
 * Every port of the server's other services, each asked of the OS (the frontend's is given);
 * membership ports below 32768, where Temporal can record them.
 */
async function serverPorts(): Promise<Partial<TemporalServerPorts>> {
  const names = [
    'frontendHttp',
    'history',
    'matching',
    'worker',
    'frontendMembership',
    'historyMembership',
    'matchingMembership',
    'workerMembership',
  ] as const;
  const ports: Partial<TemporalServerPorts> = {};
  const taken = new Set<number>();
  for (const name of names) {
    if (!name.endsWith('Membership')) {
      ports[name] = await freePort();
      continue;
    }
    for (;;) {
      const port = 20_000 + Math.floor(Math.random() * 12_000);
      if (!taken.has(port) && (await isPortFree(port))) {
        ports[name] = port;
        taken.add(port);
        break;
      }
    }
  }
  return ports;
}

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
};
