// The Temporal Schedules `ctem up` keeps in line with ctem.yaml, on the real server: created once,
// updated in place on the next start, removed with their scope; and what a run does when nothing
// is installed for its job (it says so) or when a scan connector is configured (it asks it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import {
  DIGEST_SCHEDULE,
  ESCALATIONS_SCHEDULE,
  OWNER_QUEUES_SCHEDULE,
  ensureSchedules,
  FEED_SYNC_SCHEDULE,
  SCAN_CYCLE_PREFIX,
} from '../../lifecycle/schedules.ts';
import { eventually, lifecycleConfig, newPortLog, recordingPorts, seedExposures } from './support.ts';

const log = newPortLog();
const ports = recordingPorts(log);

let db: TestDatabase;
let temporal: TestTemporal;
beforeAll(async () => {
  db = await testDatabase();
  temporal = await testTemporal();
});
afterAll(async () => {
  for await (const s of temporal.client.schedule.list())
    if (s.scheduleId.startsWith('ctem-')) await temporal.client.schedule.getHandle(s.scheduleId).delete();
});

async function ours(): Promise<string[]> {
  const ids: string[] = [];
  for await (const s of temporal.client.schedule.list())
    if (s.scheduleId.startsWith('ctem-')) ids.push(s.scheduleId);
  return ids.sort();
}

describe('schedules', () => {
  it('creates one scan cycle per scope at its cadence, the daily feed sync, the weekly digest slot, the owners’ queues and the escalations, idempotently', async () => {
    const config = lifecycleConfig();
    const taskQueue = temporal.taskQueue('sched');
    const first = await ensureSchedules(temporal.client, config, taskQueue);
    expect(first.map((c) => c.what)).toEqual(Array(6).fill('created'));
    // Listing is eventually consistent on the dev server.
    await eventually('the schedules listed', ours, (ids) => ids.length === 6);
    expect(await ours()).toEqual(
      [
        `${SCAN_CYCLE_PREFIX}bare`,
        `${SCAN_CYCLE_PREFIX}prod`,
        DIGEST_SCHEDULE,
        FEED_SYNC_SCHEDULE,
        OWNER_QUEUES_SCHEDULE,
        ESCALATIONS_SCHEDULE,
      ].sort(),
    );
    // Each owner's queue goes out at their own time: checked every quarter hour; escalations are
    // gathered per window and checked every minute.
    const queues = await temporal.client.schedule.getHandle(OWNER_QUEUES_SCHEDULE).describe();
    expect(queues.spec.intervals?.[0]?.every).toBe(15 * 60_000);
    expect(queues.action).toMatchObject({ workflowType: 'scheduledOwnerQueues', taskQueue });
    const escalations = await temporal.client.schedule.getHandle(ESCALATIONS_SCHEDULE).describe();
    expect(escalations.spec.intervals?.[0]?.every).toBe(60_000);
    expect(escalations.action).toMatchObject({ workflowType: 'scheduledEscalations', taskQueue });

    const prod = await temporal.client.schedule.getHandle(`${SCAN_CYCLE_PREFIX}prod`).describe();
    expect(prod.spec.intervals?.[0]?.every).toBe(7 * 86_400_000); // the scope's default cadence, 7d
    expect(prod.action).toMatchObject({
      type: 'startWorkflow',
      workflowType: 'scheduledScanCycle',
      args: ['prod'],
      taskQueue,
    });
    const digest = await temporal.client.schedule.getHandle(DIGEST_SCHEDULE).describe();
    expect(digest.spec.calendars?.[0]).toMatchObject({
      dayOfWeek: [{ start: 'MONDAY', end: 'MONDAY', step: 1 }],
      hour: [{ start: 8, end: 8, step: 1 }],
    });

    // The next `ctem up` updates in place; a scope removed from ctem.yaml loses its schedule.
    const again = await ensureSchedules(temporal.client, config, taskQueue);
    expect(again.map((c) => c.what)).toEqual(Array(6).fill('updated'));
    const fewer = lifecycleConfig();
    fewer.scopes = fewer.scopes.filter((s) => s.name !== 'bare');
    const third = await ensureSchedules(temporal.client, fewer, taskQueue);
    expect(third).toContainEqual({ scheduleId: `${SCAN_CYCLE_PREFIX}bare`, what: 'deleted' });
    await eventually('the schedule removed', ours, (ids) => !ids.includes(`${SCAN_CYCLE_PREFIX}bare`));
  });

  it('runs a scope scan cycle through its scan connector, and records a job with nothing installed as skipped', async () => {
    const config = lifecycleConfig();
    const taskQueue = temporal.taskQueue('sched-run');
    const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
    await worker.runUntil(async () => {
      const { assetId } = await seedExposures(db.pool, { scope: 'prod', weaknesses: ['CVE-2099-5001'] });
      await ensureSchedules(temporal.client, config, taskQueue);
      await temporal.client.schedule.getHandle(`${SCAN_CYCLE_PREFIX}prod`).trigger();
      await temporal.client.schedule.getHandle(FEED_SYNC_SCHEDULE).trigger();
      const { rows } = await eventually(
        'both runs recorded',
        () =>
          db.pool.query<{ type: string; reason: string }>(
            `select type, reason from events where actor = 'schedule' order by reason`,
          ),
        (r) => r.rows.length === 2,
      );
      expect(rows).toEqual([
        {
          type: 'schedule-ran',
          reason: expect.stringMatching(/^feed sync: no feeds configured; re-score: /),
        },
        { type: 'schedule-ran', reason: 'recording check of prod: queued' },
      ]);
      expect(log.rescans.find((r) => r.requestId.startsWith('cycle:prod:'))).toMatchObject({
        scope: 'prod',
        assetIds: [assetId],
        weaknessKeys: [],
      });
    });
  });
});
