// The patch rollout's activities (workflows/patch.ts): the scope's rules, the plan shown for
// approval, the decision, a per-scope concurrency slot per host, the apply of one host, and the
// record of the outcome. Every one is idempotent by (rollout, host): a retried or replayed call finds
// its row and does nothing twice. The executor is the scope's one from the lifecycle's integration
// registry (scopes[].patch.executor), the same object the lifecycle would use.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Deps } from '../runtime/deps.ts';
import type { PatchExecutor, PatchPlan, PatchResult } from '../domain/ports.ts';
import { heartbeating } from '../lifecycle/heartbeat.ts';
import {
  patchRolloutPolicy as readPolicy,
  PatchConfigError,
  type PatchRolloutPolicy,
} from '../patching/config.ts';
import type {
  HostApplyOutcome,
  HostApplyRequest,
  HostFailureRecord,
  PatchDecisionRecord,
  PlannedRollout,
  PlanRolloutRequest,
  RolloutFinish,
  SlotGrant,
  SlotRequest,
} from '../contracts/patching.ts';

function configFailure(err: unknown): never {
  if (err instanceof PatchConfigError || (err instanceof Error && err.name === 'UnknownIntegrationError'))
    throw ApplicationFailure.nonRetryable(err.message, 'PatchConfigError');
  throw err;
}

function executorFor(deps: Deps, scope: string): PatchExecutor {
  let patch: PatchExecutor | undefined;
  try {
    patch = deps.integrations.forScope(scope).patch;
  } catch (err) {
    configFailure(err);
  }
  if (!patch)
    throw ApplicationFailure.nonRetryable(
      `ctem.yaml: scope ${scope} has no patch executor (scopes[].patch.executor: ssh, satellite or wsus)`,
      'PatchConfigError',
    );
  return patch;
}

/** The plan narrowed to one host: what one patch job applies. */
export function planForHost(plan: PatchPlan, host: string): PatchPlan {
  return {
    ...plan,
    targets: plan.targets.filter((t) => t.host === host),
    steps: plan.steps.filter((s) => s.host === host),
    problems: (plan.problems ?? []).filter((p) => p.host === host),
  };
}

/**
 * A plan as recorded. The previous release keyed a plan by its remediation unit (`unitId`) where this
 * one names the rollout: an executor's idempotency key (the Satellite job tag) must stay the one the
 * plan was applied under, or a retried apply of a rollout planned before the upgrade would not find
 * the job it started (and every such plan would share one key per host).
 */
function recordedPlan(plan: PatchPlan & { unitId?: string }): PatchPlan {
  if (plan.rolloutId || !plan.unitId) return plan;
  const { unitId, ...rest } = plan;
  return { ...rest, rolloutId: unitId };
}

interface RolloutRow {
  campaign_id: string;
  scope: string;
  executor: string;
  exposure_ids: string[];
  plan: PatchPlan;
  status: string;
}

async function readRollout(deps: Deps, rolloutId: string): Promise<RolloutRow> {
  const { rows } = await deps.pool.query<RolloutRow>(
    'select campaign_id, scope, executor, exposure_ids, plan, status from patch_rollouts where id = $1',
    [rolloutId],
  );
  if (!rows[0])
    throw ApplicationFailure.nonRetryable(`patch rollout ${rolloutId} has no recorded plan`, 'NotFound');
  return rows[0];
}

/**
 * One audit event per exposure of the rollout (or of those on one of its hosts), each exactly once,
 * in one statement whatever the campaign's size.
 */
async function auditEach(
  deps: Deps,
  rolloutId: string,
  exposureIds: string[],
  type: string,
  reason: string,
  data: Record<string, unknown>,
  actor = 'system',
  onAssets?: number[],
): Promise<void> {
  await deps.pool.query(
    `insert into events (exposure_id, type, actor, reason, data, idempotency_key)
     select e.id, $2, $3, $4, $5::jsonb, $6 || ':' || e.id
       from exposures e
      where e.id = any($1::text[]) and ($7::bigint[] is null or e.asset_id = any($7::bigint[]))
     on conflict (idempotency_key) do nothing`,
    [
      exposureIds,
      type,
      actor,
      reason,
      JSON.stringify({ rolloutId, ...data }),
      `${rolloutId}:${type}`,
      onAssets ?? null,
    ],
  );
}

function tail(text: string, max = 2_000): string {
  return text.length > max ? `…${text.slice(-max)}` : text;
}

/** A host whose apply could not complete: its job failed, its slot released. */
async function recordHostFailure(deps: Deps, f: HostFailureRecord): Promise<void> {
  await deps.pool.query(
    `update patch_jobs set status = 'failed', output = coalesce(output || E'\\n', '') || $3, finished_at = now(), lease_until = null
      where rollout_id = $1 and host = $2 and status = 'applying'`,
    [f.rolloutId, f.host, `FAILED: ${f.reason}`],
  );
}

/** Plan (dry run) once per rollout; a retry returns the recorded plan. */
async function planRollout(deps: Deps, req: PlanRolloutRequest): Promise<PlannedRollout> {
  const { pool } = deps;
  const prior = await pool.query<{ plan: PatchPlan; status: string }>(
    'select plan, status from patch_rollouts where id = $1',
    [req.rolloutId],
  );
  if (prior.rows[0]) return { plan: prior.rows[0].plan, blocked: prior.rows[0].status === 'blocked' };
  const executor = executorFor(deps, req.scope);
  const plan = await executor.plan(req.rolloutId, req.targets);
  const blocked = (plan.problems ?? []).length > 0;
  await pool.query(
    `insert into patch_rollouts (id, campaign_id, scope, executor, exposure_ids, plan, summary, status)
     values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict (id) do nothing`,
    [
      req.rolloutId,
      req.campaignId,
      req.scope,
      executor.name,
      req.exposureIds,
      JSON.stringify(plan),
      plan.summary,
      blocked ? 'blocked' : 'awaiting-approval',
    ],
  );
  const stored = await readRollout(deps, req.rolloutId);
  await auditEach(deps, req.rolloutId, stored.exposure_ids, 'patch-planned', stored.plan.summary, {
    executor: stored.executor,
    steps: stored.plan.steps,
    problems: stored.plan.problems ?? [],
  });
  return { plan: stored.plan, blocked: stored.status === 'blocked' };
}

async function recordDecision(deps: Deps, d: PatchDecisionRecord): Promise<void> {
  await deps.pool.query(
    `update patch_rollouts set status = $2, decided_by = $3, decided_at = now(), decision_comment = $4, updated_at = now()
      where id = $1 and status = 'awaiting-approval'`,
    [d.rolloutId, d.decision, d.by, d.comment ?? null],
  );
  const r = await readRollout(deps, d.rolloutId);
  await auditEach(
    deps,
    d.rolloutId,
    r.exposure_ids,
    d.decision === 'approved' ? 'patch-approved' : 'patch-rejected',
    `patch plan ${d.decision} by ${d.by}${d.via ? ` via ${d.via}` : ''}${d.comment ? `: ${d.comment}` : ''}`,
    { by: d.by, via: d.via, comment: d.comment },
    d.by,
  );
}

/**
 * A slot for one host under the scope's concurrency limit, counted over every rollout: hosts
 * applying with a live lease hold one each. Serialized per scope by an advisory lock.
 */
async function claimSlot(deps: Deps, req: SlotRequest): Promise<SlotGrant> {
  const client = await deps.pool.connect();
  try {
    await client.query('begin');
    await client.query('select pg_advisory_xact_lock(hashtextextended($1, 7426006))', [req.scope]);
    const own = await client.query<{ status: 'applying' | 'succeeded' | 'failed' }>(
      'select status from patch_jobs where rollout_id = $1 and host = $2',
      [req.rolloutId, req.host],
    );
    const holders = Number(
      (
        await client.query<{ n: string }>(
          `select count(*) as n from patch_jobs where scope = $1 and status = 'applying' and lease_until > now()`,
          [req.scope],
        )
      ).rows[0]!.n,
    );
    const mine = own.rows[0]?.status;
    if (mine === 'succeeded' || mine === 'failed') {
      await client.query('commit');
      return { granted: true, holders, finished: mine };
    }
    if (mine === 'applying') {
      await client.query(
        `update patch_jobs set lease_until = now() + $3 * interval '1 millisecond' where rollout_id = $1 and host = $2`,
        [req.rolloutId, req.host, req.leaseMs],
      );
      await client.query('commit');
      return { granted: true, holders };
    }
    if (holders >= req.limit) {
      await client.query('commit');
      return { granted: false, holders };
    }
    const rollout = await client.query<RolloutRow>(
      'select campaign_id, scope, executor, plan, status from patch_rollouts where id = $1',
      [req.rolloutId],
    );
    const r = rollout.rows[0];
    if (!r || r.status !== 'approved')
      throw ApplicationFailure.nonRetryable(
        `patch rollout ${req.rolloutId} is ${r?.status ?? 'unknown'}, not approved: nothing may be applied`,
        'NotApproved',
      );
    await client.query(
      `insert into patch_jobs (rollout_id, host, campaign_id, scope, executor, plan, status, lease_until)
       values ($1, $2, $3, $4, $5, $6, 'applying', now() + $7 * interval '1 millisecond')`,
      [
        req.rolloutId,
        req.host,
        r.campaign_id,
        r.scope,
        r.executor,
        JSON.stringify(planForHost(r.plan, req.host)),
        req.leaseMs,
      ],
    );
    await client.query('commit');
    return { granted: true, holders: holders + 1 };
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

function hostOutcome(
  host: string,
  ok: boolean,
  output: string,
  rebootRequired?: boolean | null,
  jobId?: string | null,
): HostApplyOutcome {
  return {
    host,
    ok,
    outputTail: tail(output),
    ...(rebootRequired !== null && rebootRequired !== undefined ? { rebootRequired } : {}),
    ...(jobId ? { jobId } : {}),
  };
}

/** The executor's apply of one host's plan, heartbeating throughout. */
async function applyWithHeartbeat(
  deps: Deps,
  req: HostApplyRequest,
  executor: PatchExecutor,
  plan: PatchPlan,
): Promise<PatchResult> {
  const ctx = Context.current();
  // Well inside the heartbeat timeout, whatever it is set to.
  const every = Math.max(250, Math.min(5_000, (ctx.info.heartbeatTimeoutMs ?? 15_000) / 3));
  const beat = setInterval(() => ctx.heartbeat(`applying on ${req.host}`), every);
  try {
    ctx.heartbeat(`applying on ${req.host}`);
    return await executor.apply(plan);
  } catch (err) {
    // A permanent failure (bad input, host key changed) ends this host's job here; a transient
    // one is retried by Temporal and the slot stays held.
    if (err instanceof ApplicationFailure && err.nonRetryable)
      await recordHostFailure(deps, { ...req, reason: err.message });
    throw err;
  } finally {
    clearInterval(beat);
  }
}

/** Apply the approved plan on one host, holding its slot; a finished job is returned as recorded. */
async function applyToHost(deps: Deps, req: HostApplyRequest): Promise<HostApplyOutcome> {
  const { pool } = deps;
  const job = (
    await pool.query<{
      status: string;
      plan: PatchPlan;
      scope: string;
      output: string | null;
      reboot_required: boolean | null;
      remote_job_id: string | null;
    }>(
      'select status, plan, scope, output, reboot_required, remote_job_id from patch_jobs where rollout_id = $1 and host = $2',
      [req.rolloutId, req.host],
    )
  ).rows[0];
  if (!job)
    throw ApplicationFailure.nonRetryable(
      `no slot was claimed for ${req.host} in rollout ${req.rolloutId}`,
      'NotClaimed',
    );
  if (job.status !== 'applying')
    return hostOutcome(
      req.host,
      job.status === 'succeeded',
      job.output ?? '',
      job.reboot_required,
      job.remote_job_id,
    );
  const rollout = await readRollout(deps, req.rolloutId);
  if (rollout.status !== 'approved')
    throw ApplicationFailure.nonRetryable(
      `patch rollout ${req.rolloutId} is ${rollout.status}, not approved: nothing may be applied`,
      'NotApproved',
    );
  await pool.query('update patch_jobs set attempts = attempts + 1 where rollout_id = $1 and host = $2', [
    req.rolloutId,
    req.host,
  ]);
  const executor = executorFor(deps, job.scope);
  const result = await applyWithHeartbeat(deps, req, executor, recordedPlan(job.plan));
  const h = result.hosts.find((x) => x.host === req.host) ?? {
    host: req.host,
    ok: false,
    output: 'the executor reported nothing for this host',
  };
  await pool.query(
    `update patch_jobs set status = $3, output = $4, reboot_required = $5, remote_job_id = $6, finished_at = now(), lease_until = null
      where rollout_id = $1 and host = $2 and status = 'applying'`,
    [
      req.rolloutId,
      req.host,
      h.ok ? 'succeeded' : 'failed',
      h.output,
      h.rebootRequired ?? null,
      h.jobId ?? null,
    ],
  );
  const assets = job.plan.targets.map((t) => t.assetId);
  await auditEach(
    deps,
    req.rolloutId,
    rollout.exposure_ids,
    `patch-host-${h.ok ? 'succeeded' : 'failed'}:${req.host}`,
    `${rollout.executor} patch on ${req.host} ${h.ok ? 'succeeded' : 'FAILED'}${h.rebootRequired ? ' (reboot required)' : ''}`,
    {
      host: req.host,
      ok: h.ok,
      rebootRequired: h.rebootRequired,
      jobId: h.jobId,
      evidence: tail(h.output, 16_000),
    },
    'system',
    assets,
  );
  return hostOutcome(req.host, h.ok, h.output, h.rebootRequired, h.jobId);
}

/** Record the end; returns the exposures on the rollout (late joiners included) to tell. */
async function finishRollout(deps: Deps, f: RolloutFinish): Promise<{ exposureIds: string[] }> {
  await deps.pool.query(
    `update patch_rollouts set status = case when $2::text in ('succeeded', 'failed') then $2::text else status end,
            outcome = $3, finished_at = coalesce(finished_at, $4::timestamptz, now()), updated_at = now()
      where id = $1`,
    [f.rolloutId, f.outcome, f.summary, f.finishedAt ?? null],
  );
  const r = await readRollout(deps, f.rolloutId);
  await auditEach(deps, f.rolloutId, r.exposure_ids, `patch-${f.outcome}`, f.summary, {
    outcome: f.outcome,
  });
  return { exposureIds: r.exposure_ids };
}

export function createPatchingActivities(deps: Deps) {
  const failPatchHost = async (f: HostFailureRecord): Promise<void> => await recordHostFailure(deps, f);
  return {
    /** The scope's rollout rules: approval, concurrency, canary, maintenance window. */
    async patchRolloutPolicy(scope: string): Promise<PatchRolloutPolicy> {
      try {
        return readPolicy(deps.config, scope);
      } catch (err) {
        return configFailure(err);
      }
    },

    /** Plan (dry run) once per rollout; a retry returns the recorded plan. */
    planPatchRollout: (req: PlanRolloutRequest): Promise<PlannedRollout> =>
      heartbeating(() => planRollout(deps, req)),

    async recordPatchDecision(d: PatchDecisionRecord): Promise<void> {
      await recordDecision(deps, d);
    },

    /** A slot for one host under the scope's concurrency limit (see claimSlot). */
    async claimPatchSlot(req: SlotRequest): Promise<SlotGrant> {
      return await claimSlot(deps, req);
    },

    /** Apply the approved plan on one host, holding its slot; a finished job is returned as recorded. */
    async applyPatchToHost(req: HostApplyRequest): Promise<HostApplyOutcome> {
      return await applyToHost(deps, req);
    },

    /** A host whose apply could not complete (retries exhausted, refused): failed, slot released. */
    failPatchHost,

    /** Record the end; returns the exposures on the rollout (late joiners included) to tell. */
    async finishPatchRollout(f: RolloutFinish): Promise<{ exposureIds: string[] }> {
      return await finishRollout(deps, f);
    },
  };
}

export type PatchingActivities = ReturnType<typeof createPatchingActivities>;
