// What every PatchExecutor is wrapped in when its module builds it (patching/<name>/index.ts), so
// that whoever calls one from an activity finds:
//   - errors that no retry can cure (bad scanner data, a host key that does not match, a
//     configuration mistake, a 4xx from Satellite) leave as Temporal non-retryable failures;
//   - apply refuses to run outside the scope's maintenance window, with a retry delayed until the
//     window opens (the patch rollout workflow waits for the window itself; this is the backstop
//     for any other caller).
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../domain/config.ts';
import {
  describeMaintenanceWindow,
  maintenanceWindowAt,
  type MaintenanceWindow,
} from '../domain/maintenance.ts';
import { PatchInputError } from '../domain/packages.ts';
import type { Deps } from '../runtime/deps.ts';
import type { PatchExecutor, PatchPlan, PatchResult, PatchTarget } from '../domain/ports.ts';
import { PatchConfigError } from './config.ts';
import { SatelliteApiError } from './satellite/executor.ts';
import { HostKeyRejectedError } from './sshSession.ts';

/** What a factory is given: the registry's IntegrationContext, structurally. */
export interface PatchExecutorContext {
  config: Config;
  scope?: { name: string; maintenanceWindow?: MaintenanceWindow };
  deps: Pick<Deps, 'baseDir' | 'clock'>;
}

/** The scope's window is closed: retried when it opens. */
export function outsideWindowFailure(
  scope: string,
  window: MaintenanceWindow,
  now: Date,
): ApplicationFailure | undefined {
  const state = maintenanceWindowAt(window, now);
  if (state.open) return undefined;
  const waitMs = state.opensAt.getTime() - now.getTime();
  return ApplicationFailure.create({
    message: `scope ${scope} may be patched only in its maintenance window (${describeMaintenanceWindow(window)}); it opens at ${state.opensAt.toISOString()}`,
    type: 'OutsideMaintenanceWindow',
    nextRetryDelay: waitMs,
  });
}

function permanent(err: unknown): boolean {
  return (
    err instanceof PatchInputError ||
    err instanceof PatchConfigError ||
    err instanceof HostKeyRejectedError ||
    (err instanceof SatelliteApiError && err.permanent)
  );
}

function nonRetryable(err: unknown): unknown {
  if (!permanent(err)) return err;
  const e = err as Error;
  return ApplicationFailure.create({ message: e.message, type: e.name, nonRetryable: true, cause: e });
}

/** The executor with permanent errors marked non-retryable and apply kept inside the window. */
function guarded(executor: PatchExecutor, ctx: PatchExecutorContext): PatchExecutor {
  const scope = ctx.scope;
  return {
    name: executor.name,
    ...(executor.advisoriesIn ? { advisoriesIn: (text: string) => executor.advisoriesIn!(text) } : {}),
    plan: async (rolloutId: string, targets: PatchTarget[]): Promise<PatchPlan> => {
      try {
        return await executor.plan(rolloutId, targets);
      } catch (err) {
        throw nonRetryable(err);
      }
    },
    apply: async (plan: PatchPlan): Promise<PatchResult> => {
      const closed =
        scope?.maintenanceWindow &&
        outsideWindowFailure(scope.name, scope.maintenanceWindow, new Date(ctx.deps.clock()));
      if (closed) throw closed;
      try {
        return await executor.apply(plan);
      } catch (err) {
        throw nonRetryable(err);
      }
    },
  };
}

/** Build an executor guarded as above; a configuration mistake found while building is non-retryable. */
export function building(ctx: PatchExecutorContext, build: () => PatchExecutor): PatchExecutor {
  try {
    return guarded(build(), ctx);
  } catch (err) {
    throw nonRetryable(err);
  }
}

/** A heartbeat when running inside an activity (long Satellite jobs), nothing otherwise. */
export function heartbeat(detail: unknown): void {
  let ctx: Context | undefined;
  try {
    ctx = Context.current();
  } catch {
    ctx = undefined; // not in an activity (CLI, tests calling the executor directly)
  }
  ctx?.heartbeat(detail);
}
