// The work behind the Temporal Schedules: a scope's scan cycle, the daily feed sync, the weekly
// digest (each runs the job its family registered, app/integrations.ts → jobs, then hands what
// changed to the campaigns), and the built-in owners' daily queues and gathered escalations. When nothing is installed for a job, the run
// is recorded as skipped, with the reason.
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Deps } from '../runtime/deps.ts';
import { dispatchScan } from './dispatch.ts';
import type { JobOutcome } from '../domain/ports.ts';
import { dispatchRescored } from './rescored.ts';
import { sendDailyQueues } from './queue.ts';
import { sendEscalationDigests } from './escalations.ts';

export type ScheduledJob =
  | { kind: 'scanCycle'; scope: string }
  | { kind: 'feedSync' }
  | { kind: 'digest' }
  | { kind: 'ownerQueues' }
  | { kind: 'escalations' };

export interface ScheduledJobResult extends JobOutcome {
  ran: boolean;
  dispatched: { scans: number; started: number; signalled: number; rescored: number };
}

async function runJob(deps: Deps, job: ScheduledJob): Promise<JobOutcome | undefined> {
  const { config } = deps;
  if (job.kind === 'scanCycle') {
    const scope = config.scopes.find((s) => s.name === job.scope);
    if (!scope)
      return {
        detail: `scope ${job.scope} is no longer in ctem.yaml; its schedule is removed at the next ctem up`,
      };
    const { jobs } = deps.integrations;
    if (jobs.scanCycle) return await jobs.scanCycle(scope);
    const { scanner } = deps.integrations.forScope(job.scope);
    if (!scanner) return undefined;
    const { rows } = await deps.pool.query<{ id: number }>(
      'select id from assets where scope = $1 and retired_at is null',
      [job.scope],
    );
    const workflowId = Context.current().info.workflowExecution?.workflowId ?? 'standalone';
    const ticket = await scanner.rescan({
      requestId: `cycle:${job.scope}:${workflowId}`,
      scope: job.scope,
      assetIds: rows.map((r) => r.id),
      weaknessKeys: [],
      notBefore: new Date(deps.clock()).toISOString(),
    });
    return {
      detail: `${scanner.name} scan of ${rows.length} asset(s) in ${job.scope}: ${ticket.status}${ticket.detail ? ` (${ticket.detail})` : ''}`,
      ...(ticket.scanId ? { scanIds: [ticket.scanId] } : {}),
    };
  }
  if (job.kind === 'ownerQueues') {
    const r = await sendDailyQueues(deps);
    return {
      detail: `daily queues sent to ${r.sent.length} person(s)${r.sent.length ? `: ${r.sent.join(', ')}` : ''}; ${r.waiting} not due`,
    };
  }
  if (job.kind === 'escalations') {
    const r = await sendEscalationDigests(deps);
    return { detail: `${r.messages} escalation message(s) carrying ${r.items} item(s)` };
  }
  const hook = deps.integrations.jobs[job.kind];
  return hook ? await hook() : undefined;
}

const notInstalled: Record<ScheduledJob['kind'], string> = {
  scanCycle: 'no scan cycle runner or scan connector configured (scopes[].scan.connector)',
  feedSync: 'no feed sync job is installed',
  digest: 'no digest job is installed',
  ownerQueues: 'built in',
  escalations: 'built in',
};

export async function runScheduledJob(
  deps: Deps,
  client: Client,
  taskQueue: string,
  job: ScheduledJob,
): Promise<ScheduledJobResult> {
  const run = Context.current().info.workflowExecution ?? {
    workflowId: 'standalone',
    runId: String(Date.now()),
  };
  const outcome = await runJob(deps, job);
  const dispatched = { scans: 0, started: 0, signalled: 0, rescored: 0 };
  for (const scanId of outcome?.scanIds ?? []) {
    const r = await dispatchScan(deps, client, scanId, {
      taskQueue,
      onProgress: (done, total) => Context.current().heartbeat({ done, total }),
    });
    dispatched.scans++;
    dispatched.started += r.started;
    dispatched.signalled += r.signalled;
  }
  if (outcome?.rescoredExposureIds?.length)
    dispatched.rescored = (await dispatchRescored(deps, client, outcome.rescoredExposureIds)).signalled;
  const what = {
    scanCycle: `scan cycle of ${job.kind === 'scanCycle' ? job.scope : ''}`,
    feedSync: 'feed sync',
    digest: 'weekly digest',
    ownerQueues: 'daily queues',
    escalations: 'escalation messages',
  }[job.kind];
  const detail = outcome ? outcome.detail : `${what} skipped: ${notInstalled[job.kind]}`;
  await deps.pool.query(
    `insert into events (exposure_id, type, actor, reason, data, idempotency_key)
     values (null, $1, 'schedule', $2, $3, $4) on conflict (idempotency_key) do nothing`,
    [
      outcome ? 'schedule-ran' : 'schedule-skipped',
      detail,
      JSON.stringify({ job, dispatched, workflowId: run.workflowId }),
      `schedule:${run.workflowId}:${run.runId}`,
    ],
  );
  return { ...(outcome ?? { detail }), ran: outcome !== undefined, dispatched };
}
