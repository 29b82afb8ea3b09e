// The patch rollout of one campaign over all its hosts: plan (dry run) → approval → maintenance
// window → canary host(s) → the rest, a few at a time → evidence → verifying re-scan. A failed step
// stops the rollout and escalates; a plan whose dry run shows the fix cannot be reached is escalated
// without asking anyone to approve it. One workflow per campaign shard and approval round
// (patchRolloutWorkflowId); rollouts started by the previous release name a unit instead.
//
// Approval is a Temporal update (approvePatch / rejectPatch) validated against the scope's approvers
// (roles approver, securityLead, ciso), unless the scope's patch.autoApprove says the policy approves.
// The campaign workflow runs this as a child and hears how it ended (input.reportTo); the chat bots
// answer approval requests through the updates; the query shows where the rollout is.
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  getExternalWorkflowHandle,
  log,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { PatchingActivities } from '../activities/patching.ts';
import type { CampaignActivities } from '../activities/campaign.ts';
import type { PatchRolloutPolicy } from '../patching/config.ts';
import type { HostApplyOutcome, PlannedRollout } from '../contracts/patching.ts';
import type { PatchPlan, RescanTicket } from '../domain/ports.ts';
import { exposureWorkflowId } from '../domain/exposure.ts';
import { describeMaintenanceWindow, maintenanceWindowAt } from '../domain/maintenance.ts';
import { patchRolloutFinishedSignal, type PatchRolloutFinished } from '../contracts/campaign.ts';
import {
  approvePatchUpdate,
  patchRolloutQuery,
  rejectPatchUpdate,
  type PatchApproval,
  type PatchRolloutInput,
  type PatchRolloutResult,
  type PatchRolloutView,
} from '../contracts/patch.ts';

// ---- activities ----------------------------------------------------------------------------------

const records = proxyActivities<
  Pick<
    PatchingActivities,
    'patchRolloutPolicy' | 'recordPatchDecision' | 'claimPatchSlot' | 'failPatchHost' | 'finishPatchRollout'
  >
>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2 },
});

// Planning talks to hosts and Satellite: transient faults are retried a few times, then escalated.
// It heartbeats, so a worker that dies mid-plan is noticed within the heartbeat timeout, not after
// the start-to-close timeout (a rollout would otherwise sit half an hour before it is retried).
function planning(heartbeatTimeoutMs = 120_000) {
  return proxyActivities<Pick<PatchingActivities, 'planPatchRollout'>>({
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: heartbeatTimeoutMs,
    retry: {
      initialInterval: '10 seconds',
      maximumInterval: '5 minutes',
      backoffCoefficient: 2,
      maximumAttempts: 5,
    },
  });
}

const lifecycle = proxyActivities<Pick<CampaignActivities, 'notifyAudience' | 'requestRescan'>>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '2 seconds', maximumInterval: '5 minutes', backoffCoefficient: 2 },
});

function applying(hostTimeoutMs: number, heartbeatTimeoutMs = 120_000) {
  return proxyActivities<Pick<PatchingActivities, 'applyPatchToHost'>>({
    startToCloseTimeout: hostTimeoutMs,
    // A dead worker is noticed by the missing heartbeat; the apply is retried on another.
    heartbeatTimeout: heartbeatTimeoutMs,
    // An apply is safe to repeat (it re-checks what is installed), but a host that keeps failing
    // to connect is a failed step, not something to retry all night.
    retry: {
      initialInterval: '30 seconds',
      maximumInterval: '5 minutes',
      backoffCoefficient: 2,
      maximumAttempts: 3,
    },
  });
}

// ---- the workflow --------------------------------------------------------------------------------

function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

/** A canary only makes sense with hosts left to protect: at most all but one. */
function canaryCount(hosts: number, canary: number): number {
  return hosts > 1 ? Math.min(canary, hosts - 1) : 0;
}

/** Canary hosts first, alone; then the rest in batches of the concurrency limit. */
export function rolloutBatches(hosts: string[], canary: number, concurrency: number): string[][] {
  const first = canaryCount(hosts.length, canary);
  const batches: string[][] = first > 0 ? [hosts.slice(0, first)] : [];
  for (let i = first; i < hosts.length; i += concurrency) batches.push(hosts.slice(i, i + concurrency));
  return batches;
}

/** One rollout as its phases and handlers share it. */
interface Rollout {
  rolloutId: string;
  input: PatchRolloutInput;
  /** What the query shows. */
  view: PatchRolloutView;
  /** An approval or rejection has been accepted (or the scope's policy approved). */
  decided: boolean;
}

type Audience = 'owner' | 'channel' | 'approver' | 'securityLead' | 'ciso';

/** The query, and the approve / reject updates validated against the scope's approvers. */
function handleApprovals(r: Rollout): void {
  const { rolloutId, input, view } = r;
  setHandler(patchRolloutQuery, () => view);
  const decide = (approved: boolean) => (a: PatchApproval) => {
    r.decided = true;
    view.decision = {
      by: a.actor.personId,
      via: a.actor.via,
      at: new Date().toISOString(),
      approved,
      ...(a.comment ? { comment: a.comment } : {}),
    };
    return view;
  };
  const validator = (a: PatchApproval) => {
    if (view.status !== 'awaiting-approval' || r.decided)
      throw new Error(
        `the patch rollout ${rolloutId} is ${view.status}${r.decided ? ' and already decided' : ''}: nothing to approve now`,
      );
    if (!a?.actor?.personId) throw new Error('an approval names its actor (actor.personId)');
    if (!view.approvers.includes(a.actor.personId))
      throw new Error(
        `${a.actor.personId} may not approve patches in scope ${input.scope}; approvers: ${view.approvers.join(', ') || 'none configured'}`,
      );
  };
  setHandler(approvePatchUpdate, decide(true), { validator });
  setHandler(rejectPatchUpdate, decide(false), { validator });
}

async function notify(
  r: Rollout,
  kind: 'decision-request' | 'escalation',
  key: string,
  audiences: Audience[],
  text: string,
  level?: number,
) {
  const { rolloutId, input } = r;
  const first = input.exposures[0]!;
  return await lifecycle.notifyAudience({
    key: `${subjectOf(r)}:${key}:${rolloutId}`,
    kind,
    exposureId: first.exposureId,
    scope: input.scope,
    ...(input.campaignId ? { campaignId: input.campaignId } : { unitId: subjectOf(r) }),
    ...(input.owner ? { owner: input.owner } : {}),
    ...(level !== undefined ? { level } : {}),
    audiences,
    text,
    eventKey: `${rolloutId}:notify:${key}`,
    patchRolloutId: rolloutId,
    exposureIds: input.exposures.map((e) => e.exposureId),
  });
}

/** What the rollout patches: its campaign, or the remediation unit of a rollout of the previous release. */
function subjectOf(r: Rollout): string {
  return r.input.campaignId ?? r.input.unitId ?? r.rolloutId;
}

/**
 * The campaign that started the rollout hears how it ended. A rollout of the previous release tells
 * every exposure of its unit instead (their workflows are gone once migrated: nobody hears it then).
 * Added after the first rollouts ran, hence the patch guard.
 */
async function tellExposures(r: Rollout, end: PatchRolloutFinished, joined: string[] = []): Promise<void> {
  if (!patched('rollout-tells-exposures')) return;
  if (r.input.reportTo) {
    try {
      await getExternalWorkflowHandle(r.input.reportTo).signal(patchRolloutFinishedSignal, end);
    } catch (err) {
      // The campaign has ended meanwhile (every exposure closed by a scan, marked false positive…).
      log.info('patch rollout end not delivered', { campaign: r.input.reportTo, error: String(err) });
    }
    return;
  }
  const ids = [...new Set([...r.input.exposures.map((e) => e.exposureId), ...joined])];
  await Promise.all(
    ids.map(async (exposureId) => {
      try {
        await getExternalWorkflowHandle(exposureWorkflowId(exposureId)).signal(
          patchRolloutFinishedSignal,
          end,
        );
      } catch (err) {
        // Its lifecycle has closed (resolved by a scan meanwhile, marked false positive…).
        log.info('patch rollout end not delivered', { exposureId, error: String(err) });
      }
    }),
  );
}

/** Records the end, escalates if asked, tells the exposures and, after a success, asks for re-scans. */
async function finish(
  r: Rollout,
  status: PatchRolloutResult['status'],
  summary: string,
  hosts: HostApplyOutcome[],
  escalate: boolean,
  finishedAt?: string,
): Promise<PatchRolloutResult> {
  const { rolloutId, input, view } = r;
  view.status = status;
  if (status !== 'succeeded') view.failure = summary;
  const recorded = await records.finishPatchRollout({
    rolloutId,
    outcome: status,
    summary,
    ...(finishedAt ? { finishedAt } : {}),
  });
  if (escalate)
    await notify(r, 'escalation', `patch-${status}`, ['owner', 'channel', 'securityLead'], summary, 1);
  await tellExposures(
    r,
    { rolloutId, status, summary, ...(finishedAt ? { finishedAt } : {}) },
    recorded?.exposureIds ?? [],
  );
  let rescans: RescanTicket[] = [];
  if (status === 'succeeded' && input.requestRescan !== false) {
    rescans = await Promise.all(
      input.exposures.map((e) =>
        lifecycle.requestRescan({
          requestId: `${rolloutId}:verify:${e.exposureId}`,
          exposureId: e.exposureId,
          ...(input.campaignId ? { campaignId: input.campaignId } : {}),
          scope: input.scope,
          assetId: e.assetId,
          weaknessKey: e.weaknessKey,
          notBefore: finishedAt!,
          eventKey: `${rolloutId}:rescan:${e.exposureId}`,
        }),
      ),
    );
  }
  return { status, summary, hosts, rescans, escalated: escalate, ...(finishedAt ? { finishedAt } : {}) };
}

/** The plan (dry run); a planning failure is escalated and told to the exposures, then rethrown. */
async function planRollout(r: Rollout): Promise<PlannedRollout> {
  const { rolloutId, input, view } = r;
  try {
    return await planning(input.heartbeatTimeoutMs).planPatchRollout({
      rolloutId,
      campaignId: subjectOf(r),
      scope: input.scope,
      targets: input.targets,
      exposureIds: input.exposures.map((e) => e.exposureId),
    });
  } catch (err) {
    view.status = 'failed';
    view.failure = `planning failed: ${failureMessage(err)}`;
    await notify(
      r,
      'escalation',
      'patch-plan-failed',
      ['owner', 'channel', 'securityLead'],
      `Patch of ${subjectOf(r)} could not be planned: ${failureMessage(err)}`,
      1,
    );
    await tellExposures(r, {
      rolloutId,
      status: 'failed',
      summary: `Patch of ${subjectOf(r)} could not be planned: ${failureMessage(err)}`,
    });
    throw err;
  }
}

/** Returns once decided: by the scope's policy, or by an approver, asked and escalated while silent. */
async function awaitDecision(r: Rollout, policy: PatchRolloutPolicy, plan: PatchPlan): Promise<void> {
  const { input, view } = r;
  if (policy.autoApprove) {
    r.decided = true;
    view.decision = {
      by: 'policy',
      at: new Date().toISOString(),
      approved: true,
      comment: `scope ${input.scope} auto-approves patches`,
    };
    return;
  }
  view.status = 'awaiting-approval';
  await notify(
    r,
    'decision-request',
    'patch-approval',
    ['approver', 'securityLead'],
    `Approve this patch? (window: ${view.window})\n${plan.summary}\n\nSteps:\n${plan.steps.map((s) => `- ${s.host}: ${s.description}`).join('\n')}`,
  );
  if (patched('patch-approval-timeout')) {
    // Unanswered for the scope's approval timeout: escalated, then again after each further period.
    const periodMs = policy.approvalTimeoutMs ?? 86_400_000;
    for (let level = 1; !(await condition(() => r.decided, periodMs)); level++) {
      view.approvalEscalations = level;
      await notify(
        r,
        'escalation',
        `patch-approval-timeout-${level}`,
        level === 1 ? ['approver', 'securityLead', 'channel'] : ['securityLead', 'ciso', 'channel'],
        `No decision on the patch of ${subjectOf(r)} after ${Math.round((level * periodMs) / 60_000)} minutes: approve or reject it (approvers: ${view.approvers.join(', ')})\n${plan.summary}`,
        Math.min(level, 2),
      );
    }
  } else await condition(() => r.decided);
}

function hostView(view: PatchRolloutView, host: string): PatchRolloutView['hosts'][number] {
  return view.hosts.find((h) => h.host === host)!;
}

/** Returns once the maintenance window is open, sleeping until it opens. */
async function waitForWindow(view: PatchRolloutView, policy: PatchRolloutPolicy): Promise<void> {
  for (;;) {
    const state = maintenanceWindowAt(policy.maintenanceWindow, new Date(Date.now()));
    if (state.open) {
      view.windowOpensAt = undefined;
      return;
    }
    view.status = 'waiting-for-window';
    view.windowOpensAt = state.opensAt.toISOString();
    await sleep(state.opensAt.getTime() - Date.now());
  }
}

/** One host: a slot under the scope's concurrency limit (waited for), then the apply. */
async function applyHost(
  r: Rollout,
  policy: PatchRolloutPolicy,
  apply: ReturnType<typeof applying>,
  host: string,
): Promise<HostApplyOutcome> {
  const { rolloutId, input, view } = r;
  // Backing off to a minute at most: a slot freed by another rollout is taken within a minute.
  for (let wait = 5_000; ; wait = Math.min(wait * 2, 60_000)) {
    const slot = await records.claimPatchSlot({
      rolloutId,
      scope: input.scope,
      host,
      limit: policy.concurrency,
      leaseMs: policy.hostTimeoutMs,
    });
    if (slot.granted) break;
    view.status = 'waiting-for-slot';
    await sleep(wait);
  }
  view.status = 'applying';
  hostView(view, host).status = 'applying';
  let outcome: HostApplyOutcome;
  try {
    outcome = await apply.applyPatchToHost({ rolloutId, host });
  } catch (err) {
    const reason = failureMessage(err);
    await records.failPatchHost({ rolloutId, host, reason });
    outcome = { host, ok: false, outputTail: reason };
  }
  Object.assign(hostView(view, host), {
    status: outcome.ok ? 'succeeded' : 'failed',
    ...(outcome.rebootRequired !== undefined ? { rebootRequired: outcome.rebootRequired } : {}),
    ...(outcome.jobId ? { jobId: outcome.jobId } : {}),
  });
  return outcome;
}

/**
 * Canary, then the rest: each batch starts inside the maintenance window, each host in a slot. The
 * first batch with a failed host stops the rollout.
 */
async function applyBatches(
  r: Rollout,
  policy: PatchRolloutPolicy,
  batches: string[][],
  canaries: Set<string>,
): Promise<PatchRolloutResult> {
  const { input, view } = r;
  const apply = applying(policy.hostTimeoutMs, input.heartbeatTimeoutMs);
  const outcomes: HostApplyOutcome[] = [];
  for (const [i, batch] of batches.entries()) {
    await waitForWindow(view, policy);
    const results = await Promise.all(batch.map((host) => applyHost(r, policy, apply, host)));
    outcomes.push(...results);
    const failed = results.filter((o) => !o.ok);
    if (failed.length) {
      for (const rest of batches.slice(i + 1).flat()) hostView(view, rest).status = 'skipped';
      const stage = canaries.size > 0 && i === 0 ? 'the canary' : `batch ${i + 1} of ${batches.length}`;
      return await finish(
        r,
        'failed',
        `Patch of ${subjectOf(r)} failed on ${failed.map((f) => f.host).join(', ')} (${stage}); the rollout stopped, ${batches.slice(i + 1).flat().length} host(s) left untouched.\n${failed.map((f) => `${f.host}: ${f.outputTail.split('\n').slice(-5).join('\n')}`).join('\n')}`,
        outcomes,
        true,
      );
    }
  }
  const reboot = outcomes.filter((o) => o.rebootRequired).map((o) => o.host);
  return await finish(
    r,
    'succeeded',
    `Patch of ${subjectOf(r)} applied on ${outcomes.map((o) => o.host).join(', ')}${reboot.length ? `; reboot required on ${reboot.join(', ')}` : ''}`,
    outcomes,
    false,
    new Date(Date.now()).toISOString(),
  );
}

export async function patchRollout(input: PatchRolloutInput): Promise<PatchRolloutResult> {
  const rolloutId = workflowInfo().workflowId;
  if (input.exposures.length === 0)
    throw ApplicationFailure.nonRetryable(
      'a patch rollout needs the exposures it closes (input.exposures)',
      'BadInput',
    );
  const view: PatchRolloutView = {
    rolloutId,
    campaignId: input.campaignId ?? input.unitId ?? rolloutId,
    scope: input.scope,
    status: 'planning',
    approvers: [],
    window: '',
    hosts: [],
  };
  const r: Rollout = { rolloutId, input, view, decided: false };
  handleApprovals(r);

  // 1. The scope's rules and the plan.
  const policy: PatchRolloutPolicy = await records.patchRolloutPolicy(input.scope);
  view.approvers = policy.approvers;
  view.window = describeMaintenanceWindow(policy.maintenanceWindow);
  const planned = await planRollout(r);
  const plan = planned.plan;
  view.plan = plan;
  const hostNames = [...new Set(plan.targets.map((t) => t.host))];
  const batches = rolloutBatches(hostNames, policy.canary, policy.concurrency);
  const canaries = new Set(hostNames.slice(0, canaryCount(hostNames.length, policy.canary)));
  view.hosts = hostNames.map((host) => ({ host, status: 'pending', canary: canaries.has(host) }));
  if (planned.blocked)
    return await finish(
      r,
      'blocked',
      `Patch of ${subjectOf(r)} is blocked by its dry run:\n${(plan.problems ?? []).map((p) => `${p.host}: ${p.message}`).join('\n')}`,
      [],
      true,
    );

  // 2. Approval: a person named in the scope's roles, or the scope's policy.
  await awaitDecision(r, policy, plan);
  const d = view.decision!;
  await records.recordPatchDecision({
    rolloutId,
    decision: d.approved ? 'approved' : 'rejected',
    by: d.by,
    ...(d.via ? { via: d.via } : {}),
    ...(d.comment ? { comment: d.comment } : {}),
  });
  if (!d.approved)
    return await finish(
      r,
      'rejected',
      `Patch of ${subjectOf(r)} rejected by ${d.by}${d.comment ? `: ${d.comment}` : ''}`,
      [],
      false,
    );

  // 3. Canary, then the rest: each batch starts inside the maintenance window, each host in a slot.
  return await applyBatches(r, policy, batches, canaries);
}
