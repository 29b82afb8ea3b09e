// The workflows Temporal Schedules start (lifecycle/schedules.ts creates the schedules):
// a scope's scan cycle, the daily feed sync, the weekly digest slot, the owners' daily queues and
// the gathered escalations. Each is one activity; the
// schedule's overlap policy (skip) keeps a slow run from piling up behind itself.
import { proxyActivities } from '@temporalio/workflow';
import type { CampaignActivities } from '../activities/campaign.ts';
import type { ScheduledJobResult } from '../lifecycle/jobs.ts';

const { runScheduledJob } = proxyActivities<Pick<CampaignActivities, 'runScheduledJob'>>({
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

export async function scheduledOwnerQueues(): Promise<ScheduledJobResult> {
  return await runScheduledJob({ kind: 'ownerQueues' });
}

export async function scheduledEscalations(): Promise<ScheduledJobResult> {
  return await runScheduledJob({ kind: 'escalations' });
}
