// Feed activities for the worker (e.g. a scheduled feed-sync workflow). Results are compact: the
// newly listed KEV CVEs are capped so a payload stays small; re-scoring hands exposures on in batches
// from rescoreExposures, not through one activity result.
import type { Deps } from '../runtime/deps.ts';
import { FeedInputError, type FeedName, type FeedRunResult } from '../intel/runs.ts';
import { feedsConfig, loadFeed, syncFeeds, type LoadFeedOptions } from '../intel/sources.ts';
import { resolveSecret } from '../runtime/config.ts';
import { ApplicationFailure } from '@temporalio/common';

const MAX_KEYS = 1000;

function compact(r: FeedRunResult): FeedRunResult {
  return r.addedKeys && r.addedKeys.length > MAX_KEYS
    ? { ...r, addedKeys: r.addedKeys.slice(0, MAX_KEYS) }
    : r;
}

/** Bad input will not get better by retrying: tell Temporal so. */
async function nonRetryableOnBadInput<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof FeedInputError) throw ApplicationFailure.nonRetryable(err.message, 'FeedInputError');
    throw err;
  }
}

export function createFeedActivities({ pool, config, baseDir }: Deps) {
  return {
    /** The NVD API key never travels in a payload: it is read from ctem.yaml's feeds.nvd.apiKey here. */
    async loadFeed(
      feed: FeedName,
      location: string,
      opts: Omit<LoadFeedOptions, 'since' | 'nvdApiKey'> & { since?: string } = {},
    ): Promise<FeedRunResult> {
      const { since, ...rest } = opts;
      const keyRef = feed === 'nvd' ? feedsConfig(config).nvd?.apiKey : undefined;
      const nvdApiKey = keyRef ? resolveSecret(keyRef, process.env, baseDir) : undefined;
      return compact(
        await nonRetryableOnBadInput(() =>
          loadFeed(pool, feed, location, {
            ...rest,
            ...(nvdApiKey ? { nvdApiKey } : {}),
            ...(since ? { since: new Date(since) } : {}),
          }),
        ),
      );
    },
    async syncFeeds(): Promise<FeedRunResult[]> {
      return (await nonRetryableOnBadInput(() => syncFeeds(pool, config, baseDir))).map(compact);
    },
  };
}
