// The worker process the chaos driver (loop.chaos.ts) kills with SIGKILL at random points: the real
// worker with every real activity, configured by env. Its patch executor is the demo one behind a
// shim that records each apply() in PostgreSQL (chaos_patch_applies), so the driver can count how
// many times a host was really changed across all the processes it killed.
import { NativeConnection } from '@temporalio/worker';
import { pino } from 'pino';
import { parseConfig } from '../../domain/config.ts';
import { createPool } from '../../runtime/pool.ts';
import { compose } from '../../app/compose.ts';
import type { PatchExecutor } from '../../domain/ports.ts';
import { createDemoPatchExecutor } from '../../patching/demo/executor.ts';
import { createWorker, installWorkerRuntime } from '../../worker/worker.ts';

const need = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`chaosWorker: ${name} is not set`);
  return value;
};

const pool = createPool(need('CHAOS_DATABASE_URL'), 8);
const chaosExecutor = (): PatchExecutor => {
  const demo = createDemoPatchExecutor();
  return {
    name: 'chaos',
    plan: async (rolloutId, targets) => ({ ...(await demo.plan(rolloutId, targets)), executor: 'chaos' }),
    async apply(plan) {
      // The simulated hosts behave like real ones under the real executors: ssh first reads each
      // host's installed versions and upgrades only what is short of the fix, satellite finds its
      // job again by tag. So an apply retried after a kill that had already upgraded the host
      // changes nothing. Every call is recorded per host; only the ones that changed the host count
      // as applies (changed = true), and a second change of a host in one rollout is a duplicate.
      const changedHosts: string[] = [];
      for (const { host } of plan.targets) {
        const done = await pool.query(
          'select 1 from chaos_patch_applies where rollout_id = $1 and host = $2 and changed',
          [plan.rolloutId, host],
        );
        const changed = done.rowCount === 0;
        await pool.query(
          'insert into chaos_patch_applies (rollout_id, host, pid, changed) values ($1, $2, $3, $4)',
          [plan.rolloutId, host, process.pid, changed],
        );
        if (changed) changedHosts.push(host);
      }
      const result = await demo.apply({
        ...plan,
        targets: plan.targets.filter((t) => changedHosts.includes(t.host)),
      });
      return {
        ...result,
        hosts: plan.targets.map(
          (t) =>
            result.hosts.find((h) => h.host === t.host) ?? {
              host: t.host,
              ok: true,
              output: `chaos executor: ${t.host} is already at the fix; nothing to upgrade`,
            },
        ),
      };
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
  deps: compose({
    pool,
    config: parseConfig(need('CHAOS_CONFIG'), 'chaos config'),
    baseDir: need('CHAOS_BASE_DIR'),
    log,
    registry: (builtIn) => ({ ...builtIn, patch: { ...builtIn.patch, chaos: chaosExecutor } }),
  }).deps,
  workflowBundle: { codePath: need('CHAOS_BUNDLE') },
  // After a kill, the workflows' next tasks leave the dead worker's sticky queue quickly.
  extra: { stickyQueueScheduleToStartTimeout: '1s' },
});
process.stdout.write('ready\n');
await worker.run();
