// One real PostgreSQL and one real Temporal dev server per test run, shared by every test file.
// Each file gets its own database (cloned from a migrated template) and its own task queues.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { bundleWorkflowCode } from '@temporalio/worker';
import { startEmbeddedPostgres, ensureDatabase } from '../runtime/postgres.ts';
import { startTemporalDevServer } from '../runtime/temporal.ts';
import { freePort } from '../runtime/ports.ts';
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
  const [pg, temporal, bundle] = await Promise.all([
    startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port: pgPort, ephemeral: true }),
    startTemporalDevServer({ port: temporalPort, headless: true, logLevel: 'error' }),
    bundleWorkflowCode({ workflowsPath: workflowsEntry(), logger: quietLogger }),
  ]);

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

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
};
