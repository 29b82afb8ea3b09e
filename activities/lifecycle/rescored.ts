// After a feed load or a policy change, prioritization finds the exposures whose decision or
// deadline moved (activities/feeds/rescore.ts); this tells their workflows, with the new priority,
// the deadline (capped by the scope's stricter windows) and the reasons, judged set-based again.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { exposureWorkflowId, terminalStates, type ExposureState } from '../../domain/exposure.ts';
import { rescoredSignal } from '../../workflows/exposure/messages.ts';
import type { DispatchDeps } from './dispatch.ts';
import { Triage } from './triage.ts';

export async function dispatchRescored(
  deps: DispatchDeps,
  client: Client,
  exposureIds: string[],
  opts: { concurrency?: number; batchSize?: number } = {},
): Promise<{ signalled: number; skipped: number }> {
  const triage = new Triage(deps.config, deps.baseDir);
  const batchSize = opts.batchSize ?? 1_000;
  let signalled = 0;
  let skipped = 0;
  for (let i = 0; i < exposureIds.length; i += batchSize) {
    const judged = await triage.triage(deps.pool, exposureIds.slice(i, i + batchSize));
    const live = judged.filter(
      (j) => !terminalStates.includes(j.state as ExposureState) && j.state !== 'open',
    );
    skipped += judged.length - live.length;
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(opts.concurrency ?? 64, live.length) }, async () => {
        while (next < live.length) {
          const j = live[next++]!;
          try {
            await client.workflow.getHandle(exposureWorkflowId(j.exposureId)).signal(rescoredSignal, {
              priority: j.priority,
              slaDue: j.slaDue,
              reasons: j.reasons,
              policyVersion: j.policyVersion,
            });
            signalled++;
          } catch (err) {
            if (err instanceof WorkflowNotFoundError) skipped++;
            else throw err;
          }
        }
      }),
    );
  }
  return { signalled, skipped };
}
