import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker, type WorkerOptions } from '@temporalio/worker';
import { afterAll, inject } from 'vitest';
import { pino } from 'pino';
import { createWorker, installWorkerRuntime } from '../../worker/worker.ts';
import { defaultConfig, type Config } from '../../domain/config.ts';
import type { ActivityDeps } from '../../activities/deps.ts';
import type { Pool } from '../../db/pool.ts';
import { systemClock } from '../../runtime/clock.ts';

export interface TestTemporal {
  address: string;
  client: Client;
  connection: Connection;
  nativeConnection: NativeConnection;
  /** A task queue name unique to this call. */
  taskQueue(prefix?: string): string;
  /** A worker on the shared server with the prebuilt workflow bundle and real activities. */
  worker(opts: {
    taskQueue: string;
    pool: Pool;
    config?: Config;
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
    worker: async ({ taskQueue, pool, config, extra }) => {
      const deps: ActivityDeps = {
        pool,
        config: config ?? defaultConfig(),
        baseDir: process.cwd(),
        log: pino({ level: process.env.CTEM_TEST_LOG ?? 'silent' }),
        workerName: `${os.hostname()}:${process.pid}`,
        clock: systemClock,
      };
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
