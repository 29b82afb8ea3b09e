import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';

const { recordHeartbeat } = proxyActivities<Pick<Activities, 'recordHeartbeat'>>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 3 },
});

/** Proves the whole path works: Temporal schedules, a worker runs, the activity writes to PostgreSQL. */
export async function healthProbe(probeId: string): Promise<{ worker: string; at: string }> {
  return await recordHeartbeat(probeId);
}
