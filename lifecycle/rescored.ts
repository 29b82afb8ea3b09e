// After a feed load or a policy change, prioritization finds the exposures whose decision or
// deadline moved (intel/rescore.ts); this tells their campaigns (one signal per campaign workflow),
// with the new priority and the deadline (capped by the scope's stricter windows), judged set-based
// again.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { terminalStates, type ExposureState } from '../domain/exposure.ts';
import { campaignWorkflowId, rescoredSignal, type Rescore } from '../contracts/campaign.ts';
import { campaignPlaces } from './campaigns.ts';
import { inParallel } from './campaignStart.ts';
import { PolicyCatalog } from '../intel/policyFiles.ts';
import { rescoreExposures } from '../intel/rescore.ts';
import type { DispatchDeps } from './dispatch.ts';

/** What a re-score needs: it signals workflows and notifies nobody, so no integrations. */
export type RescoreDeps = Omit<DispatchDeps, 'integrations'>;
import { slaOverrideFor } from './settings.ts';
import { Triage } from './triage.ts';
import { systemClock } from '../runtime/clock.ts';

export async function dispatchRescored(
  deps: RescoreDeps,
  client: Client,
  exposureIds: string[],
  opts: { concurrency?: number; batchSize?: number } = {},
): Promise<{ signalled: number; skipped: number }> {
  const triage = new Triage(deps.config, deps.baseDir);
  const clock = deps.clock ?? systemClock;
  const batchSize = opts.batchSize ?? 2_000;
  let signalled = 0;
  let skipped = 0;
  for (let i = 0; i < exposureIds.length; i += batchSize) {
    const ids = exposureIds.slice(i, i + batchSize);
    const [judged, places] = await Promise.all([
      triage.triage(deps.pool, ids, new Date(clock())),
      campaignPlaces(deps.pool, ids),
    ]);
    const byWorkflow = new Map<string, Rescore[]>();
    const told: typeof judged = [];
    for (const j of judged) {
      const place = places.get(j.exposureId);
      if (terminalStates.includes(j.state as ExposureState) || j.state === 'open' || !place) {
        skipped++;
        continue;
      }
      told.push(j);
      const wf = campaignWorkflowId(place.campaignId, place.shard);
      byWorkflow.set(wf, [
        ...(byWorkflow.get(wf) ?? []),
        {
          exposureId: j.exposureId,
          priority: j.priority,
          slaDue: j.slaDue,
          policyVersion: j.policyVersion,
          contextualCvss: j.contextualCvss,
          kev: j.kev,
        },
      ]);
    }
    // The reasons of the new decision: the campaigns hold none, so their row writes keep these.
    if (told.length)
      await deps.pool.query(
        `update exposures e set reasons = r.reasons
           from jsonb_to_recordset($1::jsonb) as r(id text, reasons jsonb) where e.id = r.id`,
        [JSON.stringify(told.map((j) => ({ id: j.exposureId, reasons: j.reasons })))],
      );
    await inParallel([...byWorkflow], opts.concurrency ?? 64, async ([wf, rescores]) => {
      try {
        await client.workflow.getHandle(wf).signal(rescoredSignal, rescores);
        signalled += rescores.length;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) skipped += rescores.length;
        else throw err;
      }
    });
  }
  return { signalled, skipped };
}

export interface RescoreHandOff {
  /** Open exposures examined. */
  examined: number;
  /** Exposures whose decision or deadline changes. */
  changed: number;
  /** Exposures only re-stamped with a new policy version. */
  restamped: number;
  /** Exposures told (in one `rescored` signal per campaign workflow). */
  signalled: number;
  /** Changed exposures with no running lifecycle (not yet started, closed): their row is updated. */
  skipped: number;
  /**
   * "told": the decisions are written and the workflows told. "unreachable": no Temporal client, so
   * nothing is written either, and the next re-score finds the same exposures again.
   */
  temporal: 'told' | 'unreachable';
}

/**
 * Re-score every open exposure against the current intel and policies (after a feed load or a
 * policy change) and hand exactly those whose decision or deadline changes to their workflows, in
 * batches, as the SQL finds them. The new decisions are written in the same transaction, so a
 * failure half-way leaves nothing applied and the next run hands the same exposures on again
 * (a workflow ignores a re-score that changes nothing it holds).
 */
export async function rescoreAndHandOff(
  deps: RescoreDeps,
  client: Client | undefined,
  opts: { now?: Date; batchSize?: number; concurrency?: number; onProgress?: (told: number) => void } = {},
): Promise<RescoreHandOff> {
  const catalog = PolicyCatalog.fromConfig(deps.config, deps.baseDir);
  let signalled = 0;
  let skipped = 0;
  const r = await rescoreExposures(deps.pool, {
    policy: (name) => catalog.get(name),
    scopes: Object.fromEntries(deps.config.scopes.map((s) => [s.name, s])),
    slaCap: (scope) => slaOverrideFor(deps.config, scope),
    apply: client !== undefined,
    now: opts.now ?? new Date((deps.clock ?? systemClock)()),
    ...(opts.batchSize ? { batchSize: opts.batchSize } : {}),
    onBatch: async (rows) => {
      if (!client) return;
      const told = await dispatchRescored(
        deps,
        client,
        rows.map((row) => row.id),
        opts.concurrency ? { concurrency: opts.concurrency } : {},
      );
      signalled += told.signalled;
      skipped += told.skipped;
      opts.onProgress?.(signalled + skipped);
    },
  });
  deps.log?.info(
    {
      examined: r.examined,
      changed: r.changed,
      restamped: r.restamped,
      signalled,
      skipped,
      phasesMs: r.phasesMs,
    },
    're-score',
  );
  return {
    examined: r.examined,
    changed: r.changed,
    restamped: r.restamped,
    signalled,
    skipped,
    temporal: client ? 'told' : 'unreachable',
  };
}
