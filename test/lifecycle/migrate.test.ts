// The upgrade from the previous release: its lifecycles (one `exposureWorkflow` per exposure) no
// longer run; `ctem migrate lifecycles` (and `ctem up`) moves each into its campaign as it stood,
// on the real Temporal server and PostgreSQL, and ends the old workflow. Re-runnable.
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { testDeps } from '../support/deps.ts';
import { migrateLegacyLifecycles } from '../../lifecycle/migrateLegacy.ts';
import {
  campaignOf,
  eventually,
  lifecycleConfig,
  newPortLog,
  recordingPorts,
  seedExposures,
  view,
} from './support.ts';

const log = newPortLog();
const ports = recordingPorts(log);
const config = lifecycleConfig();

let db: TestDatabase;
let temporal: TestTemporal;
beforeAll(async () => {
  db = await testDatabase();
  temporal = await testTemporal();
});

describe('moving the lifecycles of the previous release into campaigns', () => {
  it('admits each running exposure workflow as it stood, ends it, and does nothing the second time', async () => {
    const taskQueue = temporal.taskQueue('migrate');
    const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
    await worker.runUntil(async () => {
      const seeded = await seedExposures(db.pool, {
        scope: 'prod',
        weaknesses: ['CVE-2098-0001', 'CVE-2098-0002', 'CVE-2098-0003', 'CVE-2098-0004'],
        package: { name: 'libxml2', fixedVersion: '2.12.7' },
      });
      const [snoozed, awaiting, resolved, untriaged] = seeded.ids as [string, string, string, string];
      const until = new Date(Date.now() + 5 * 86_400_000).toISOString();
      const due = new Date(Date.now() + 20 * 86_400_000).toISOString();
      // The rows as the previous release's workflows left them.
      await db.pool.query(
        `update exposures set state = 'snoozed', snoozed_until = $2, sla_paused = true, sla_due = $3, priority = 'attend',
                policy_version = '2026.08.1', owner = 'olivia', workflow_run = 'legacy-run-1', lifecycle_seq = 7
          where id = $1`,
        [snoozed, until, due],
      );
      await db.pool.query(
        `update exposures set state = 'awaiting-decision', sla_due = $2, priority = 'act', policy_version = '2026.08.1',
                owner = 'olivia', workflow_run = 'legacy-run-2', lifecycle_seq = 4, escalation_level = 0
          where id = $1`,
        [awaiting, due],
      );
      await db.pool.query(
        `update exposures set state = 'resolved', resolved_at = now(), workflow_run = 'legacy-run-3', lifecycle_seq = 9 where id = $1`,
        [resolved],
      );
      // The fourth one's workflow had started (its dispatch recorded) but not yet triaged it: still open.
      await db.pool.query(
        `insert into lifecycle_dispatches (scan_id, exposure_id, change) values ($1, $2, 'new')`,
        [seeded.scanId, untriaged],
      );
      // Their workflows: running, on a queue no worker of this release polls.
      for (const id of seeded.ids)
        await temporal.client.workflow.start('exposureWorkflow', {
          workflowId: `exposure-${id}`,
          taskQueue: 'previous-release',
          args: [{ exposureId: id }],
        });
      const deps = testDeps({ pool: db.pool, config, registry: ports });
      // Listing is eventually consistent: run it until all three were found (each run moves what it lists).
      let found = 0;
      let moved = 0;
      await eventually(
        'the old workflows to be listed and moved',
        async () => {
          const r = await migrateLegacyLifecycles(deps, temporal.client, { taskQueue });
          found += r.found;
          moved += r.moved;
          return found;
        },
        (n) => n >= 4,
      );
      expect(moved).toBe(3);
      await eventually(
        'every old workflow to be ended',
        async () =>
          Promise.all(
            seeded.ids.map(
              async (id) =>
                (await temporal.client.workflow.getHandle(`exposure-${id}`).describe()).status.name,
            ),
          ),
        (states) => states.every((s) => s === 'TERMINATED'),
      );
      const held = await view(temporal.client, db.pool, snoozed);
      expect(held).toMatchObject({
        state: 'snoozed',
        priority: 'Attend',
        snoozedUntil: until,
        slaPaused: true,
      });
      const { campaignId } = await campaignOf(db.pool, snoozed);
      expect((await campaignOf(db.pool, awaiting)).campaignId).toBe(campaignId);
      expect(await view(temporal.client, db.pool, awaiting)).toMatchObject({
        state: 'awaiting-decision',
        priority: 'Act',
        escalationLevel: 0,
      });
      // The untriaged one was dispatched again as new: triaged, in the same campaign, its owner asked.
      expect(await view(temporal.client, db.pool, untriaged)).toMatchObject({ state: 'awaiting-decision' });
      expect((await campaignOf(db.pool, untriaged)).campaignId).toBe(campaignId);
      const { rows } = await db.pool.query<{ campaign_id: string | null }>(
        'select campaign_id from exposures where id = $1',
        [resolved],
      );
      expect(rows[0]!.campaign_id).toBeNull();
      const { rows: events } = await db.pool.query<{ exposure_id: string; reason: string }>(
        `select exposure_id, reason from events where type = 'migrated' and exposure_id = any($1::text[]) order by exposure_id`,
        [seeded.ids],
      );
      expect(events.map((e) => e.exposure_id).sort()).toEqual([snoozed, awaiting].sort());
      expect(events[0]!.reason).toContain(campaignId);

      // The lifecycle continues where it stopped: its next record carries the old prefix and sequence.
      const { decideExposures } = await import('../../lifecycle/decide.ts');
      const answers = await decideExposures(temporal.client, db.pool, [snoozed], {
        kind: 'approve',
        actor: { personId: 'olivia', via: 'api' },
      });
      expect(answers.get(snoozed)).toEqual({ ok: true, state: 'remediating' });
      const { rows: keys } = await db.pool.query<{ idempotency_key: string }>(
        `select idempotency_key from events where exposure_id = $1 and type = 'approve'`,
        [snoozed],
      );
      expect(keys.map((k) => k.idempotency_key)).toEqual([`${snoozed}:legacy-run-1:8`]);

      // Nothing left to move.
      const again = await migrateLegacyLifecycles(deps, temporal.client, { taskQueue });
      expect(again).toMatchObject({ found: 0, moved: 0 });
    });
  });
});
