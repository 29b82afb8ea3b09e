import type { ActivityDeps } from './deps.ts';
import { createFeedActivities } from './feeds/index.ts';
import { createHealthActivities } from './health/index.ts';
import { createIngestActivities } from './ingest/activities.ts';
import { createItsmActivities } from './itsm/index.ts';
import { createLifecycleActivities } from './lifecycle/index.ts';
import { createPatchingActivities } from './patching/index.ts';

/** Every activity the worker registers, built from one set of dependencies. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createFeedActivities(deps),
    ...createHealthActivities(deps),
    ...createIngestActivities(deps),
    ...createItsmActivities(deps),
    ...createLifecycleActivities(deps),
    ...createPatchingActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
