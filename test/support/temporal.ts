import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker, type WorkerOptions } from '@temporalio/worker';
import { afterAll, inject } from 'vitest';
import { pino } from 'pino';
import { createWorker, installWorkerRuntime } from '../../worker/worker.ts';
import { defaultConfig, type Config } from '../../domain/config.ts';
import type { Deps } from '../../runtime/deps.ts';
import type { ComposeOptions } from '../../app/compose.ts';
import { testDeps } from './deps.ts';
import type { Pool } from '../../runtime/pool.ts';

export interface TestTemporal {
  address: string;
  client: Client;
  connection: Connection;
  nativeConnection: NativeConnection;
  /** A task queue name unique to this call. */
  taskQueue(prefix?: string): string;
  /**
   * A worker on the shared server with the prebuilt workflow bundle and real activities, built with
   * `deps`, or else composed from pool, config and the test's registry.
   */
  worker(opts: {
    taskQueue: string;
    pool: Pool;
    config?: Config;
    registry?: ComposeOptions['registry'];
    deps?: Deps;
    extra?: Partial<WorkerOptions>;
  }): Promise<Worker>;
}

/** Connections to the run's Temporal dev server, closed after the file's tests. */
export async function testTemporal(): Promise<TestTemporal> {
  const address = inject('temporalAddress');
  installWorkerRuntime(pino({ level: process.env.CTEM_TEST_LOG ?? 'warn' }));
  const connection = await Connection.connect({ address });
  const nativeConnection = await NativeConnection.connect({ address });
  afterAll(async () => {
    await connection.close();
    await nativeConnection.close();
  });
  const client = new Client({ connection, namespace: 'default' });
  return {
    address,
    client,
    connection,
    nativeConnection,
    taskQueue: (prefix = 'test') => `${prefix}-${randomBytes(5).toString('hex')}`,
    worker: async ({ taskQueue, pool, config, registry, extra, ...given }) => {
      const deps =
        given.deps ??
        testDeps({ pool, config: config ?? defaultConfig(), ...(registry ? { registry } : {}) });
      return await createWorker({
        connection: nativeConnection,
        namespace: 'default',
        taskQueue,
        deps,
        workflowBundle: { codePath: inject('workflowBundlePath') },
        extra,
      });
    },
  };
}
