// The decision API underneath the chat bots and the dashboard: a decision becomes the `decide` update
// of the campaign workflows holding the exposures it is for (one update per workflow, whatever the
// number of exposures), whose validator is the one place that decides whether it is well-formed,
// authorized and allowed now. A refusal comes back as a sentence a person can act on.
import {
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Pool } from '../runtime/pool.ts';
import type { Decision, ExposureState } from '../domain/exposure.ts';
import { campaignWorkflowId, decideUpdate } from '../contracts/campaign.ts';
import { campaignPlaces, readCampaign } from './campaigns.ts';

/**
 * A decision's answer for one exposure. `unconfirmed`: the campaign did not answer in time — not a
 * refusal (the decision may still be taken), so it is not recorded as one.
 */
export type DecisionApplied =
  { ok: true; state: ExposureState } | { ok: false; reason: string; unconfirmed?: boolean };

/** The innermost message of a failure chain: the validator's own sentence. */
function innermost(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof ApplicationFailure || e instanceof Error ? e.message : String(e);
}

/** gRPC DEADLINE_EXCEEDED: the call outlived its deadline. */
function isDeadline(err: unknown): boolean {
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    if ((e as { code?: unknown }).code === 4) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

function isNotFound(err: unknown): boolean {
  if (err instanceof WorkflowNotFoundError) return true;
  const code = (err as { code?: unknown }).code;
  // gRPC NOT_FOUND: the workflow never ran or has completed (every exposure closed).
  return (
    code === 5 ||
    /workflow execution already completed|not found/i.test(err instanceof Error ? err.message : '')
  );
}

/**
 * How long a decision waits for its campaign to take it. A campaign whose worker is down cannot
 * answer; the person is told so rather than left waiting (the decision may still be taken when a
 * worker comes back: Temporal holds an update it has admitted).
 */
const DECISION_DEADLINE_MS = 30_000;

/** One update to one campaign workflow; every exposure named gets an answer. */
async function decideIn(
  client: Client,
  workflowId: string,
  decision: Decision,
  exposureIds: string[] | undefined,
  closedReason: string,
  deadlineMs = DECISION_DEADLINE_MS,
): Promise<Map<string, DecisionApplied>> {
  const out = new Map<string, DecisionApplied>();
  try {
    const r = await client.withDeadline(Date.now() + deadlineMs, () =>
      client.workflow.getHandle(workflowId).executeUpdate(decideUpdate, {
        args: [{ decision, ...(exposureIds ? { exposureIds } : {}) }],
      }),
    );
    for (const a of r.applied) out.set(a.exposureId, { ok: true, state: a.state });
    for (const f of r.refused) out.set(f.exposureId, { ok: false, reason: f.reason });
  } catch (err) {
    let reason: string;
    let unconfirmed = false;
    if (err instanceof WorkflowUpdateFailedError) reason = innermost(err);
    else if (isNotFound(err)) reason = closedReason;
    else if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError || isDeadline(err)) {
      reason = `not confirmed: the campaign (${workflowId}) did not answer within ${deadlineMs / 1000} s — its worker may be down; the decision may still be taken when it is back (see \`ctem exposure show\`)`;
      unconfirmed = true;
    } else throw err;
    const answer = { ok: false as const, reason, ...(unconfirmed ? { unconfirmed } : {}) };
    for (const id of exposureIds ?? []) out.set(id, answer);
    if (!exposureIds) out.set('*', answer);
  }
  return out;
}

/** A decision for some exposures, wherever their campaigns hold them: one update per workflow. */
export async function decideExposures(
  client: Client,
  pool: Pool,
  exposureIds: string[],
  decision: Decision,
  opts: { concurrency?: number; deadlineMs?: number } = {},
): Promise<Map<string, DecisionApplied>> {
  const places = await campaignPlaces(pool, exposureIds);
  const out = new Map<string, DecisionApplied>();
  const byWorkflow = new Map<string, string[]>();
  for (const id of exposureIds) {
    const p = places.get(id);
    if (!p) {
      out.set(id, {
        ok: false,
        reason: `exposure ${id} has no open lifecycle (it is closed or was never started); see ctem exposure show ${id}`,
      });
      continue;
    }
    const wf = campaignWorkflowId(p.campaignId, p.shard);
    byWorkflow.set(wf, [...(byWorkflow.get(wf) ?? []), id]);
  }
  const groups = [...byWorkflow];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(opts.concurrency ?? 8, groups.length) }, async () => {
      while (next < groups.length) {
        const [wf, ids] = groups[next++]!;
        const answers = await decideIn(
          client,
          wf,
          decision,
          ids,
          `the lifecycle of these exposures is closed (their campaign has ended); see ctem exposure show ${ids[0]}`,
          opts.deadlineMs,
        );
        for (const [id, a] of answers) out.set(id, a);
      }
    }),
  );
  return out;
}

export async function applyDecision(
  client: Client,
  pool: Pool,
  exposureId: string,
  decision: Decision,
): Promise<DecisionApplied> {
  return (await decideExposures(client, pool, [exposureId], decision)).get(exposureId)!;
}

export interface CampaignDecisionOutcome {
  applied: { exposureId: string; state: ExposureState }[];
  refused: { exposureId: string; reason: string }[];
  /** Why nothing at all was applied (refused by the validator, or the campaign holds nothing now). */
  reason?: string;
  /** Some shard did not answer in time: not refused, maybe taken later (DecisionApplied). */
  unconfirmed?: boolean;
}

/**
 * A decision for a whole campaign (every shard): applied to each of its exposures it is allowed for,
 * e.g. "approve" to those waiting for a decision. Refused outright only when it applies to none.
 */
export async function decideCampaign(
  client: Client,
  pool: Pool,
  campaignId: string,
  decision: Decision,
): Promise<CampaignDecisionOutcome> {
  const campaign = await readCampaign(pool, campaignId);
  if (!campaign) return { applied: [], refused: [], reason: `no campaign has the id "${campaignId}"` };
  const out: CampaignDecisionOutcome = { applied: [], refused: [] };
  const reasons: string[] = [];
  for (let shard = 1; shard <= campaign.shards; shard++) {
    const answers = await decideIn(
      client,
      campaignWorkflowId(campaignId, shard),
      decision,
      undefined,
      `campaign ${campaignId} holds no open exposure now`,
    );
    for (const [id, a] of answers) {
      if (!a.ok && a.unconfirmed) out.unconfirmed = true;
      if (id === '*') reasons.push((a as { reason: string }).reason);
      else if (a.ok) out.applied.push({ exposureId: id, state: a.state });
      else out.refused.push({ exposureId: id, reason: a.reason });
    }
  }
  if (out.applied.length === 0) out.reason = reasons[0] ?? out.refused[0]?.reason ?? 'nothing to decide';
  return out;
}

/**
 * Record a refused decision in the audit log (the campaign records accepted ones). Every attempt is
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
