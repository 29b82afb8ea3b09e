import type { ActivityDeps } from './deps.ts';
import { createHealthActivities } from './health/index.ts';

/** Every activity the worker registers, built from one set of dependencies. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createHealthActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
