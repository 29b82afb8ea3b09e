// The weekly digest job behind the Temporal Schedule "ctem-weekly-digest" (the lifecycle's slot:
// lifecycle/schedules.ts → workflows/schedules.ts scheduledDigest → runScheduledJob →
// integrations.jobs.digest). It reports the last complete week in the digest's time zone and sends
// it through every configured channel, each channel once per week whatever the retries.
import { ApplicationFailure } from '@temporalio/common';
import type { IntegrationContext } from '../runtime/deps.ts';
import type { JobOutcome } from '../domain/ports.ts';
import { DigestConfigError, digestSettings, type DigestSettings } from './config.ts';
import { configuredChannels, deliverDigest, type ChannelOutcome } from './delivery.ts';
import { buildDigest } from './report.ts';
import { previousWeek } from './week.ts';

export class DigestDeliveryError extends Error {
  constructor(readonly outcomes: ChannelOutcome[]) {
    super(
      `the weekly digest could not be sent through ${outcomes
        .filter((o) => o.status === 'failed')
        .map((o) => `${o.channel} (${o.detail})`)
        .join(', ')}; it is retried, and channels already sent are not sent again`,
    );
    this.name = 'DigestDeliveryError';
  }
}

export async function runDigestJob(
  ctx: IntegrationContext,
  now = new Date(ctx.deps.clock()),
): Promise<JobOutcome> {
  const { config, deps } = ctx;
  let settings: DigestSettings;
  try {
    settings = digestSettings(config);
  } catch (err) {
    // A configuration mistake does not heal by retrying.
    if (err instanceof DigestConfigError)
      throw ApplicationFailure.nonRetryable(err.message, 'DigestConfigError');
    throw err;
  }
  const week = previousWeek(now, settings.timezone);
  if (configuredChannels(settings).length === 0)
    return {
      detail: `weekly digest ${week.label} not sent: no channel configured (digest.email, digest.slack or digest.teams in ctem.yaml)`,
    };
  const report = await buildDigest(deps.pool, config, week, {
    now,
    ...(settings.dashboardUrl ? { dashboardUrl: settings.dashboardUrl } : {}),
  });
  const outcomes = await deliverDigest(
    {
      pool: deps.pool,
      config,
      baseDir: deps.baseDir,
      log: deps.log,
      ...(deps.integrations.chat ? { chat: deps.integrations.chat } : {}),
    },
    report,
  );
  if (outcomes.some((o) => o.status === 'failed')) throw new DigestDeliveryError(outcomes);
  return {
    detail: `weekly digest ${week.label} (health ${report.health.score}): ${outcomes.map((o) => `${o.channel} ${o.status}`).join(', ')}`,
  };
}
