// The daily feed sync behind the Temporal Schedule "ctem-feed-sync" (lifecycle/schedules.ts
// → workflows/schedules.ts scheduledFeedSync → runScheduledJob → integrations.jobs.feedSync): load
// every configured feed, then re-score and tell exactly the workflows whose decision or deadline
// changed. The re-score runs even when no feed is configured, so an edited policy file reaches the
// exposures by the next morning at the latest.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import type { IntegrationContext } from '../runtime/deps.ts';
import type { JobOutcome } from '../domain/ports.ts';
import { rescoreAndHandOff } from './rescored.ts';
import { FeedInputError, type FeedRunResult } from '../intel/runs.ts';
import { FEED_NAMES, feedsConfig, syncFeeds } from '../intel/sources.ts';

/** The activity's client and a heartbeat, when running as one (a plain call has neither). */
function activityContext(): { client?: Client; heartbeat: (d: unknown) => void } {
  try {
    const ctx = Context.current();
    return { client: ctx.client, heartbeat: (d) => ctx.heartbeat(d) };
  } catch {
    return { heartbeat: () => undefined };
  }
}

export async function runFeedSyncJob(
  ctx: IntegrationContext,
  opts: { client?: Client; now?: Date } = {},
): Promise<JobOutcome> {
  const { config, deps } = ctx;
  const activity = activityContext();
  const client = opts.client ?? activity.client;
  let feeds;
  try {
    feeds = feedsConfig(config);
  } catch (err) {
    throw ApplicationFailure.nonRetryable((err as Error).message, 'FeedConfigError');
  }
  const configured = FEED_NAMES.filter((f) => feeds[f]?.enabled);
  let runs: FeedRunResult[] = [];
  if (configured.length > 0)
    try {
      runs = await syncFeeds(deps.pool, config, deps.baseDir, process.env, (r) =>
        activity.heartbeat({ feed: r.feed }),
      );
    } catch (err) {
      if (err instanceof FeedInputError) throw ApplicationFailure.nonRetryable(err.message, 'FeedInputError');
      throw err;
    }
  const r = await rescoreAndHandOff(deps, client, {
    now: opts.now ?? new Date(deps.clock()),
    onProgress: (told) => activity.heartbeat({ told }),
  });
  const loaded = runs.length
    ? runs.map((f) => `${f.feed} ${f.added} added, ${f.changed} changed, ${f.removed} removed`).join('; ')
    : 'no feeds configured';
  const rescore =
    r.temporal === 'told'
      ? `re-score: ${r.changed} of ${r.examined} open exposures change priority or deadline, ${r.signalled} workflows told`
      : `re-score: ${r.changed} of ${r.examined} open exposures change priority or deadline, not applied: no Temporal client`;
  return { detail: `feed sync: ${loaded}; ${rescore}` };
}
