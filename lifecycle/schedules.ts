// The Temporal Schedules of a deployment, made to match ctem.yaml at every `ctem up`: one scan
// cycle per scope at the scope's cadence, a daily feed sync, the weekly digest slot, the owners'
// daily queues (checked every quarter hour) and the gathered escalations (every minute). Creating is
// idempotent (an existing schedule is updated in place), and schedules of scopes that left
// ctem.yaml are deleted, so the set of schedules is a function of the configuration.
import {
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleOptions,
  type ScheduleSpec,
} from '@temporalio/client';
import { durationMs, type Config } from '../domain/config.ts';

export const SCAN_CYCLE_PREFIX = 'ctem-scan-cycle-';
export const FEED_SYNC_SCHEDULE = 'ctem-feed-sync';
export const DIGEST_SCHEDULE = 'ctem-weekly-digest';
export const OWNER_QUEUES_SCHEDULE = 'ctem-owner-queues';
export const ESCALATIONS_SCHEDULE = 'ctem-escalations';

const weekdays = {
  sun: 'SUNDAY',
  mon: 'MONDAY',
  tue: 'TUESDAY',
  wed: 'WEDNESDAY',
  thu: 'THURSDAY',
  fri: 'FRIDAY',
  sat: 'SATURDAY',
} as const;

/** The digest slot: `digest.weekday` / `digest.time` / `digest.timezone` if the digest section gives them, else Monday 08:00 UTC. */
export function digestSpec(config: Config): ScheduleSpec {
  const d = config.digest ?? {};
  const day =
    typeof d.weekday === 'string' && d.weekday in weekdays
      ? weekdays[d.weekday as keyof typeof weekdays]
      : 'MONDAY';
  const time = typeof d.time === 'string' && /^([01]\d|2[0-3]):[0-5]\d$/.test(d.time) ? d.time : '08:00';
  const [hour, minute] = time.split(':').map(Number) as [number, number];
  return {
    calendars: [{ dayOfWeek: day, hour, minute, comment: 'weekly CISO digest' }],
    ...(typeof d.timezone === 'string' ? { timezone: d.timezone } : {}),
  };
}

export interface ScheduleChange {
  scheduleId: string;
  what: 'created' | 'updated' | 'deleted';
}

type StartAction = ScheduleOptions['action'];

export async function ensureSchedules(
  client: Client,
  config: Config,
  taskQueue: string,
): Promise<ScheduleChange[]> {
  const wanted: { scheduleId: string; spec: ScheduleSpec; action: StartAction; memo: string }[] = [
    ...config.scopes.map((s) => ({
      scheduleId: `${SCAN_CYCLE_PREFIX}${s.name}`,
      spec: { intervals: [{ every: durationMs(s.cadence) }] } as ScheduleSpec,
      action: {
        type: 'startWorkflow' as const,
        workflowType: 'scheduledScanCycle',
        args: [s.name],
        taskQueue,
      },
      memo: `scan cycle of scope ${s.name} every ${s.cadence}`,
    })),
    {
      scheduleId: FEED_SYNC_SCHEDULE,
      spec: { calendars: [{ hour: 3, minute: 0, comment: 'daily feed sync' }] } as ScheduleSpec,
      action: { type: 'startWorkflow' as const, workflowType: 'scheduledFeedSync', args: [], taskQueue },
      memo: 'daily threat-intel feed sync and re-score',
    },
    {
      scheduleId: DIGEST_SCHEDULE,
      spec: digestSpec(config),
      action: { type: 'startWorkflow' as const, workflowType: 'scheduledDigest', args: [], taskQueue },
      memo: 'weekly CISO digest',
    },
    {
      // Each person's queue goes out at their own time: checked every quarter hour.
      scheduleId: OWNER_QUEUES_SCHEDULE,
      spec: { intervals: [{ every: '15 minutes' }] } as ScheduleSpec,
      action: { type: 'startWorkflow' as const, workflowType: 'scheduledOwnerQueues', args: [], taskQueue },
      memo: "owners' daily queue messages, each at the person's time",
    },
    {
      scheduleId: ESCALATIONS_SCHEDULE,
      spec: { intervals: [{ every: '1 minute' }] } as ScheduleSpec,
      action: { type: 'startWorkflow' as const, workflowType: 'scheduledEscalations', args: [], taskQueue },
      memo: 'escalations gathered per audience and window',
    },
  ];
  const changes: ScheduleChange[] = [];
  for (const w of wanted) {
    try {
      await client.schedule.create({
        scheduleId: w.scheduleId,
        spec: w.spec,
        action: w.action,
        policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day' },
        memo: { description: w.memo },
      });
      changes.push({ scheduleId: w.scheduleId, what: 'created' });
    } catch (err) {
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
      await client.schedule
        .getHandle(w.scheduleId)
        .update((prev) => ({ ...prev, spec: w.spec, action: w.action }));
      changes.push({ scheduleId: w.scheduleId, what: 'updated' });
    }
  }
  const scopes = new Set(config.scopes.map((s) => `${SCAN_CYCLE_PREFIX}${s.name}`));
  for await (const s of client.schedule.list()) {
    if (s.scheduleId.startsWith(SCAN_CYCLE_PREFIX) && !scopes.has(s.scheduleId)) {
      await client.schedule.getHandle(s.scheduleId).delete();
      changes.push({ scheduleId: s.scheduleId, what: 'deleted' });
    }
  }
  return changes;
}
