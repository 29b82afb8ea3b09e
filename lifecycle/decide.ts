// The decision API underneath the chat bots and the dashboard: a decision becomes the exposure
// workflow's update, whose validator is the one place that decides whether it is well-formed,
// authorized and allowed now. A refusal comes back as a sentence a person can act on.
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Pool } from '../runtime/pool.ts';
import { exposureWorkflowId, type Decision, type ExposureState } from '../domain/exposure.ts';
import { decisionUpdates } from '../contracts/exposure.ts';

export type DecisionApplied = { ok: true; state: ExposureState } | { ok: false; reason: string };

/** The innermost message of a failure chain: the validator's own sentence. */
function innermost(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof ApplicationFailure || e instanceof Error ? e.message : String(e);
}

function isNotFound(err: unknown): boolean {
  if (err instanceof WorkflowNotFoundError) return true;
  const code = (err as { code?: unknown }).code;
  // gRPC NOT_FOUND: the workflow never ran or has completed (resolved, false positive, retired).
  return (
    code === 5 ||
    /workflow execution already completed|not found/i.test(err instanceof Error ? err.message : '')
  );
}

export async function applyDecision(
  client: Client,
  exposureId: string,
  decision: Decision,
): Promise<DecisionApplied> {
  const handle = client.workflow.getHandle(exposureWorkflowId(exposureId));
  try {
    const update = decisionUpdates[decision.kind] as (typeof decisionUpdates)['approve'];
    const result = await handle.executeUpdate(update, {
      args: [decision as Extract<Decision, { kind: 'approve' }>],
    });
    return { ok: true, state: result.state };
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) return { ok: false, reason: innermost(err) };
    if (isNotFound(err))
      return {
        ok: false,
        reason: `exposure ${exposureId} has no open lifecycle (it is closed or was never started); see ctem exposure show ${exposureId}`,
      };
    throw err;
  }
}

/**
 * Record a refused decision in the audit log (the workflow records accepted ones). Every attempt is
 * recorded, so refusals have no idempotency key.
 */
export async function recordRefusal(
  pool: Pool,
  refusal: { exposureId: string; decision: Decision; reason: string },
): Promise<void> {
  const { exposureId, decision, reason } = refusal;
  await pool.query(
    `insert into events (exposure_id, type, actor, reason, data) values ($1, 'decision-refused', $2, $3, $4)`,
    [exposureId, decision.actor?.personId ?? 'unknown', reason, JSON.stringify({ decision })],
  );
}
