// A worker in its own process, for the crash tests: they SIGKILL it between a ticket system's create
// and the local record. Run with `node --import tsx test/itsm/crashWorker.ts`; configured by env.
import { NativeConnection } from '@temporalio/worker';
import { pino } from 'pino';
import { configSchema } from '../../domain/config.ts';
import { createPool } from '../../runtime/pool.ts';
import { createWorker, installWorkerRuntime } from '../../worker/worker.ts';
import { compose } from '../../app/compose.ts';

const env = process.env;
const need = (name: string): string => {
  const value = env[name];
  if (!value) throw new Error(`crashWorker: ${name} is not set`);
  return value;
};

const log = pino({ level: 'silent' });
installWorkerRuntime(log, 'ERROR');
const connection = await NativeConnection.connect({ address: need('CTEM_TEST_TEMPORAL_ADDRESS') });
const pool = createPool(need('CTEM_TEST_DATABASE_URL'), 4);
const worker = await createWorker({
  connection,
  namespace: 'default',
  taskQueue: need('CTEM_TEST_TASK_QUEUE'),
  deps: compose({
    pool,
    config: configSchema.parse(JSON.parse(need('CTEM_TEST_CONFIG'))),
    baseDir: process.cwd(),
    log,
  }).deps,
  workflowBundle: { codePath: need('CTEM_TEST_BUNDLE') },
  // After the kill, the workflow's next task leaves this worker's sticky queue quickly.
  extra: { stickyQueueScheduleToStartTimeout: '1s' },
});
process.stdout.write('ready\n');
await worker.run();
