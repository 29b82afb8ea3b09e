// A worker process for the crash test (durability.test.ts): the real worker with the real
// activities, plus integrations that record every call they receive in PostgreSQL, so the test can
// count calls across processes. With SLOW_TICKET=1 the ticket system pauses after creating the
// remote ticket and before answering — the moment the test kills this process with SIGKILL.
import { NativeConnection } from '@temporalio/worker';
import { pino } from 'pino';
import { createPool } from '../../runtime/pool.ts';
import { createWorker, installWorkerRuntime } from '../../worker/worker.ts';
import { crashConfig, crashPorts } from './crashConfig.ts';
import { compose } from '../../app/compose.ts';

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`crashWorker needs ${name}`);
  return v;
};

const pool = createPool(env('DATABASE_URL'), 5);

const log = pino({ level: 'warn' });
installWorkerRuntime(log, 'ERROR');
const connection = await NativeConnection.connect({ address: env('TEMPORAL_ADDRESS') });
const worker = await createWorker({
  connection,
  namespace: 'default',
  taskQueue: env('TASK_QUEUE'),
  deps: compose({
    pool,
    config: crashConfig(),
    baseDir: process.cwd(),
    log,
    registry: crashPorts(pool, { slowTicket: !!process.env.SLOW_TICKET }),
  }).deps,
  workflowBundle: { codePath: env('WORKFLOW_BUNDLE') },
});
process.stdout.write('ready\n');
await worker.run();
