import type { Deps } from '../runtime/deps.ts';
import { createFeedActivities } from './intel.ts';
import { createHealthActivities } from './health.ts';
import { createIngestActivities } from './ingest.ts';
import { createItsmActivities } from './tickets.ts';
import { createCampaignActivities } from './campaign.ts';
import { createPatchingActivities } from './patching.ts';

/** Every activity the worker registers, built from one set of dependencies. */
export function createActivities(deps: Deps) {
  return {
    ...createFeedActivities(deps),
    ...createHealthActivities(deps),
    ...createIngestActivities(deps),
    ...createItsmActivities(deps),
    ...createCampaignActivities(deps),
    ...createPatchingActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
