import path from 'node:path';
import {
  DefaultLogger,
  Runtime,
  Worker,
  type LogLevel,
  type NativeConnection,
  type WorkerOptions,
} from '@temporalio/worker';
import type { Logger } from 'pino';
import { createActivities } from '../activities/index.ts';
import type { Deps } from '../runtime/deps.ts';
import { correlationInterceptor } from '../runtime/logContext.ts';
import { projectRoot } from '../runtime/paths.ts';

export interface CreateWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: Deps;
  /** A prebuilt workflow bundle (tests bundle once per run); otherwise workflows/ is bundled now. */
  workflowBundle?: { codePath: string } | { code: string };
  extra?: Partial<WorkerOptions>;
}

export async function createWorker(opts: CreateWorkerOptions): Promise<Worker> {
  return await Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    activities: createActivities(opts.deps),
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: workflowsEntry() }),
    // A campaign workflow mostly waits (for a deadline, a decision, a scan); a bounded cache keeps the
    // worker's memory flat whatever the number of campaigns: an evicted one is replayed from its
    // history when it next has work.
    maxCachedWorkflows: DEFAULT_CACHED_WORKFLOWS,
    // Workflow tasks here are short; more slots than the SDK's 40 let a scan's dispatch start its
    // exposures eagerly (a start is eager only while this worker has a free slot), which saves the
    // server a task-queue round trip per exposure. Never more than the cache holds.
    // (A caller's tuner sizes the slots itself; the SDK refuses both.)
    ...(opts.extra?.tuner
      ? {}
      : {
          maxConcurrentWorkflowTaskExecutions: workflowTaskSlots(
            opts.extra?.maxCachedWorkflows ?? DEFAULT_CACHED_WORKFLOWS,
          ),
        }),
    ...opts.extra,
    interceptors: {
      ...opts.extra?.interceptors,
      // Every activity attempt logs with its workflow, run, activity and exposure ids.
      activity: [correlationInterceptor(opts.deps.log), ...(opts.extra?.interceptors?.activity ?? [])],
    },
  });
}

const WORKFLOW_TASK_SLOTS = 200;
/** Workflows kept in memory between their tasks (see createWorker). */
export const DEFAULT_CACHED_WORKFLOWS = 1_000;

function workflowTaskSlots(cache: number | undefined): number {
  return cache === undefined || cache === 0
    ? WORKFLOW_TASK_SLOTS
    : Math.max(2, Math.min(WORKFLOW_TASK_SLOTS, cache));
}

/** The workflows' entry, always the TypeScript source: the worker's bundler compiles it. */
export function workflowsEntry(): string {
  return path.join(projectRoot, 'workflows', 'index.ts');
}

let runtimeInstalled = false;

/**
 * Route the Temporal SDK's own logs (bundler output, worker state changes) into our structured log at
 * the given level. Must run before the first worker or native connection of the process.
 */
export function installWorkerRuntime(log: Logger, level: LogLevel = 'WARN'): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({
    logger: new DefaultLogger(level, (entry) => {
      const fields = { ...entry.meta, part: 'temporal-sdk' };
      if (entry.level === 'ERROR') log.error(fields, entry.message);
      else if (entry.level === 'WARN') log.warn(fields, entry.message);
      else log.info(fields, entry.message);
    }),
  });
}
