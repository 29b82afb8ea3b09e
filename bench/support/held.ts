// When did each workflow hold its decision? The moment Temporal wrote the update's acceptance into
// the workflow's history: the decision is durable there and the validator has passed. A campaign
// workflow holds many exposures: callers name the workflow each measured id is decided in. (The audit event's own time is the workflow's clock, the time its workflow task was
// handed to a worker, which comes before the task runs: a worker with a queue of tasks records
// events stamped earlier than the moment it acts on them, so that time would flatter the figure.)
import type { Client } from '@temporalio/client';
import { exposureWorkflowId } from '../../domain/exposure.ts';

/**
 * Server time of the first update accepted in the current run of each id's workflow (`workflowOf`;
 * by default the exposure workflow of the previous release). Reads the histories `concurrency` at a
 * time; an id whose acceptance is not written yet (its workflow task is still finishing) is read
 * again each second until `deadlineMs`.
 */
export async function decisionHeldAt(
  client: Client,
  ids: readonly string[],
  opts: { concurrency?: number; deadlineMs?: number; workflowOf?: (id: string) => string } = {},
): Promise<Map<string, number>> {
  const held = new Map<string, number>();
  const deadline = opts.deadlineMs ?? Date.now() + 60_000;
  const workflowOf = opts.workflowOf ?? exposureWorkflowId;
  for (let missing = [...ids]; ;) {
    let next = 0;
    const readOne = async (): Promise<void> => {
      for (let i = next++; i < missing.length; i = next++) {
        const id = missing[i]!;
        const history = await client.workflow.getHandle(workflowOf(id)).fetchHistory();
        const accepted = history.events?.find((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
        const t = accepted?.eventTime;
        if (t) held.set(id, Number(String(t.seconds ?? 0)) * 1000 + Math.floor((t.nanos ?? 0) / 1e6));
      }
    };
    await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 16, missing.length) }, readOne));
    missing = missing.filter((id) => !held.has(id));
    if (missing.length === 0 || Date.now() > deadline) return held;
    await new Promise((r) => setTimeout(r, 1000));
  }
}
