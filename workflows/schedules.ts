// The workflows Temporal Schedules start (lifecycle/schedules.ts creates the schedules):
// a scope's scan cycle, the daily feed sync and the weekly digest slot. Each is one activity; the
// schedule's overlap policy (skip) keeps a slow run from piling up behind itself.
import { proxyActivities } from '@temporalio/workflow';
import type { LifecycleActivities } from '../activities/lifecycle.ts';
import type { ScheduledJobResult } from '../lifecycle/jobs.ts';

const { runScheduledJob } = proxyActivities<Pick<LifecycleActivities, 'runScheduledJob'>>({
  startToCloseTimeout: '12 hours',
  retry: { initialInterval: '30 seconds', maximumInterval: '30 minutes', maximumAttempts: 5 },
});

export async function scheduledScanCycle(scope: string): Promise<ScheduledJobResult> {
  return await runScheduledJob({ kind: 'scanCycle', scope });
}

export async function scheduledFeedSync(): Promise<ScheduledJobResult> {
  return await runScheduledJob({ kind: 'feedSync' });
}

export async function scheduledDigest(): Promise<ScheduledJobResult> {
  return await runScheduledJob({ kind: 'digest' });
}
