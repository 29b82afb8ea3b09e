// The contextual CVSS score and the KEV flag land on the exposure row with the triage (columns
// cvss_contextual and kev, migration 011), stay there through the workflow's own writes, and follow
// a re-score, so lists and the digest can sort and filter on them without parsing reasons. The
// campaign holding the exposure never writes reasons (the triage and the re-score do).
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { dispatchChanges } from '../../lifecycle/dispatch.ts';
import { applyDecision } from '../../lifecycle/decide.ts';
import { exposureQuery, rescoredSignal, type ExposureView } from '../../contracts/campaign.ts';
import {
  campaignOf,
  eventually,
  lifecycleConfig,
  newPortLog,
  recordingPorts,
  seedExposures,
  untilState,
} from './support.ts';
import { testDeps } from '../support/deps.ts';

const ports = recordingPorts(newPortLog());
const config = lifecycleConfig();

let db: TestDatabase;
let temporal: TestTemporal;
beforeAll(async () => {
  db = await testDatabase();
  temporal = await testTemporal();
});

async function scores(id: string) {
  return (
    await db.pool.query<{ cvss_contextual: number | null; kev: boolean; reasons: string[]; state: string }>(
      'select cvss_contextual, kev, reasons, state from exposures where id = $1',
      [id],
    )
  ).rows[0]!;
}

/**
 * The exposure as the campaign holding it shows it: its query, never the row (a campaign that cannot
 * answer fails here instead of being stood in for by the row).
 */
async function held(id: string): Promise<ExposureView> {
  const { workflowId } = await campaignOf(db.pool, id);
  const v = await temporal.client.workflow.getHandle(workflowId).query(exposureQuery, id);
  if (!v) throw new Error(`campaign ${workflowId} does not hold exposure ${id}`);
  return v;
}

/** The score the policy wrote into the reasons, which the column must agree with. */
const scoreInReasons = (reasons: string[]) =>
  Number(/^Contextual CVSS (\d+(?:\.\d+)?)/.exec(reasons.find((r) => r.startsWith('Contextual CVSS'))!)![1]);

describe('contextual CVSS and KEV on the exposure row', () => {
  it('are written with the triage, kept by the workflow, and follow a re-score', async () => {
    const run = await db.pool.query<{ id: number }>(
      `insert into feed_runs (feed, source, status) values ('kev', 'test', 'succeeded') returning id`,
    );
    await db.pool.query(
      `insert into kev_entries (cve, vendor_project, product, date_added, due_date, valid_from, run_id)
       values ('CVE-2099-7001', 'Test', 'Test', '2024-01-01', '2024-01-22', now() - interval '1 day', $1)`,
      [run.rows[0]!.id],
    );
    const s = await seedExposures(db.pool, { scope: 'prod', weaknesses: ['CVE-2099-7001', 'CVE-2099-7002'] });
    const [inKev, notInKev] = s.ids as [string, string];
    const taskQueue = temporal.taskQueue('scores');
    const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
    await worker.runUntil(async () => {
      await dispatchChanges(
        testDeps({ pool: db.pool, config, registry: ports }),
        temporal.client,
        s.ids.map((id) => ({ exposureId: id, change: 'new' as const, scanId: s.scanId, at: s.at })),
        { taskQueue },
      );
      for (const id of s.ids) await untilState(temporal.client, db.pool, id, 'awaiting-decision');

      const a = await scores(inKev);
      const b = await scores(notInKev);
      expect(a.kev).toBe(true);
      expect(b.kev).toBe(false);
      expect(a.cvss_contextual).toBeCloseTo(scoreInReasons(a.reasons), 5);
      expect(b.cvss_contextual).toBeCloseTo(scoreInReasons(b.reasons), 5);
      // The campaign carries them from the admission.
      const heldKev = await held(inKev);
      expect(heldKev.kev).toBe(true);
      expect(heldKev.contextualCvss).toBeCloseTo(a.cvss_contextual!, 5);
      expect((await held(notInKev)).kev).toBe(false);

      // The workflow's own row writes keep them.
      await applyDecision(temporal.client, db.pool, inKev, {
        kind: 'snooze',
        actor: { personId: 'olivia', via: 'api' },
        until: new Date(Date.now() + 86_400_000).toISOString(),
      });
      await eventually(
        'the snoozed row',
        () => scores(inKev),
        (r) => r.state === 'snoozed',
      );
      expect(await scores(inKev)).toMatchObject({ kev: true, cvss_contextual: a.cvss_contextual });
      expect(await held(inKev)).toMatchObject({ state: 'snoozed', kev: true });

      // A re-score carries the new figures (the KEV entry withdrawn, a lower score).
      const reasonsBefore = (await scores(inKev)).reasons;
      const places = await Promise.all(s.ids.map((id) => campaignOf(db.pool, id)));
      await temporal.client.workflow.getHandle(places[0]!.workflowId).signal(rescoredSignal, [
        {
          exposureId: inKev,
          priority: 'Track',
          slaDue: new Date(Date.parse(s.at) + 3_600_000).toISOString(),
          policyVersion: 'v2',
          contextualCvss: 4.2,
          kev: false,
        },
      ]);
      const after = await eventually(
        'the re-scored row',
        () => scores(inKev),
        (r) => r.kev === false,
      );
      expect(after.cvss_contextual).toBeCloseTo(4.2, 5);
      expect(await held(inKev)).toMatchObject({ kev: false, contextualCvss: 4.2, priority: 'Track' });
      // The reasons are the re-score's to write (intel/rescore.ts), not the campaign's.
      expect(after.reasons).toEqual(reasonsBefore);
      await applyDecision(temporal.client, db.pool, inKev, {
        kind: 'markFalsePositive',
        actor: { personId: 'olivia', via: 'api' },
        reason: 'test over',
      });
      await applyDecision(temporal.client, db.pool, notInKev, {
        kind: 'markFalsePositive',
        actor: { personId: 'olivia', via: 'api' },
        reason: 'test over',
      });
      for (const p of places) await temporal.client.workflow.getHandle(p.workflowId).result();
    });
  }, 180_000);
});
