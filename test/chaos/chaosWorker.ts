// The worker process the chaos driver (loop.chaos.ts) kills with SIGKILL at random points: the real
// worker with every real activity, configured by env. Its patch executor is the demo one behind a
// shim that records each apply() in PostgreSQL (chaos_patch_applies), so the driver can count how
// many times a patch was really started across all the processes it killed.
import os from 'node:os';
import { NativeConnection } from '@temporalio/worker';
import { pino } from 'pino';
import { parseConfig } from '../../domain/config.ts';
import { createPool } from '../../db/pool.ts';
import { integrations } from '../../activities/lifecycle/integrations.ts';
import { createDemoPatchExecutor } from '../../activities/lifecycle/demoPatchExecutor.ts';
import { createWorker, installWorkerRuntime } from '../../worker/worker.ts';

const need = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`chaosWorker: ${name} is not set`);
  return value;
};

const pool = createPool(need('CHAOS_DATABASE_URL'), 8);
integrations.patch.chaos = () => {
  const demo = createDemoPatchExecutor();
  return {
    name: 'chaos',
    plan: async (unitId, targets) => ({ ...(await demo.plan(unitId, targets)), executor: 'chaos' }),
    async apply(plan) {
      await pool.query('insert into chaos_patch_applies (unit_id, hosts, pid) values ($1, $2, $3)', [
        plan.unitId,
        plan.targets.map((t) => t.host).join(','),
        process.pid,
      ]);
      return await demo.apply(plan);
    },
  };
};

const log = pino({ level: process.env.CHAOS_LOG ?? 'silent' });
installWorkerRuntime(log, 'ERROR');
const connection = await NativeConnection.connect({ address: need('CHAOS_TEMPORAL_ADDRESS') });
const worker = await createWorker({
  connection,
  namespace: 'default',
  taskQueue: need('CHAOS_TASK_QUEUE'),
  deps: {
    pool,
    config: parseConfig(need('CHAOS_CONFIG'), 'chaos config'),
    baseDir: need('CHAOS_BASE_DIR'),
    log,
    workerName: `${os.hostname()}:${process.pid}`,
  },
  workflowBundle: { codePath: need('CHAOS_BUNDLE') },
  // After a kill, the workflows' next tasks leave the dead worker's sticky queue quickly.
  extra: { stickyQueueScheduleToStartTimeout: '1s' },
});
process.stdout.write('ready\n');
await worker.run();
