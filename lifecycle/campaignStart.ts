// Handing exposures to their campaign workflows: start a campaign's workflow with them, or tell the
// running one (the `admit` signal). Grouped per workflow, so a scan's 100,000 new exposures in 5,000
// campaigns are 5,000 starts, not 100,000; started eagerly when the client shares a worker's
// connection (the new workflow's first task comes back in the start response).
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  type Client,
} from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { authorizationContext } from '../domain/authorization.ts';
import type { Config } from '../domain/config.ts';
import type { Deps } from '../runtime/deps.ts';
import {
  admitSignal,
  campaignWorkflowId,
  campaignWorkflowType,
  type Admission,
  type CampaignWorkflowInput,
} from '../contracts/campaign.ts';
import type { CampaignPlace } from './campaigns.ts';
import { lifecycleRulesFor } from './settings.ts';

export interface CampaignStartOptions {
  taskQueue: string;
  /** Temporal requests in flight at once (default 64). */
  concurrency?: number;
  /** Passed to every started workflow (tests lower it to exercise continue-as-new). */
  historyLimit?: number;
  /** Passed to every started workflow (tests lower it to see a killed worker sooner). */
  heartbeatTimeoutMs?: number;
}

export interface AdmitResult {
  started: number;
  eagerlyStarted: number;
  signalled: number;
}

export async function inParallel<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(runners);
}

/** What a campaign workflow is started with; per-scope parts are memoized by the caller's map. */
export function campaignInput(
  config: Config,
  place: Pick<CampaignPlace, 'campaignId' | 'shard' | 'scope' | 'owner'>,
  admissions: Admission[],
  opts: Pick<CampaignStartOptions, 'historyLimit' | 'heartbeatTimeoutMs'>,
  /** No workflow of this shard ever ran (CampaignPlace.fresh). */
  fresh = false,
): CampaignWorkflowInput {
  return {
    campaignId: place.campaignId,
    shard: place.shard,
    scope: place.scope,
    ...(place.owner ? { owner: place.owner } : {}),
    authorization: authorizationContext(config, place.scope),
    rules: lifecycleRulesFor(config, place.scope),
    admissions,
    ...(opts.historyLimit ? { historyLimit: opts.historyLimit } : {}),
    ...(opts.heartbeatTimeoutMs ? { heartbeatTimeoutMs: opts.heartbeatTimeoutMs } : {}),
    ...(fresh ? {} : { laterGeneration: true }),
  };
}

/**
 * Admit each exposure into its campaign's workflow: one start (or one signal) per workflow. A shard
 * that held exposures before is signalled (signal-with-start, in case it has just ended); a new one
 * is started with its admissions, and told instead if it turns out to be running already.
 */
export async function admitToCampaigns(
  deps: Pick<Deps, 'config'>,
  client: Client,
  items: { place: CampaignPlace; admission: Admission }[],
  opts: CampaignStartOptions,
  /** Called once per workflow as soon as it holds its admissions (the dispatcher asks owners then). */
  onAdmitted?: (workflowId: string, place: CampaignPlace, admissions: Admission[]) => Promise<void>,
): Promise<AdmitResult> {
  const result: AdmitResult = { started: 0, eagerlyStarted: 0, signalled: 0 };
  const groups = new Map<
    string,
    { place: CampaignPlace; admissions: Admission[]; occupied: boolean; fresh: boolean }
  >();
  for (const { place, admission } of items) {
    const id = campaignWorkflowId(place.campaignId, place.shard);
    const g = groups.get(id) ?? { place, admissions: [], occupied: false, fresh: true };
    g.admissions.push(admission);
    g.occupied ||= place.occupied;
    g.fresh &&= place.fresh;
    groups.set(id, g);
  }
  // A client on a worker's own connection (an activity's, or a process that runs the worker) asks
  // for eager start; any other client starts workflows as usual.
  const eager = client.connection instanceof NativeConnection;
  const tell = async (workflowId: string, place: CampaignPlace, admissions: Admission[]) => {
    await client.workflow.signalWithStart(campaignWorkflowType, {
      workflowId,
      taskQueue: opts.taskQueue,
      args: [campaignInput(deps.config, place, [], opts)],
      signal: admitSignal,
      signalArgs: [admissions],
    });
    result.signalled++;
  };
  await inParallel([...groups], opts.concurrency ?? 64, async ([workflowId, g]) => {
    if (g.occupied) await tell(workflowId, g.place, g.admissions);
    else {
      try {
        const handle = await client.workflow.start(campaignWorkflowType, {
          workflowId,
          taskQueue: opts.taskQueue,
          args: [campaignInput(deps.config, g.place, g.admissions, opts, g.fresh)],
          workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
          ...(eager ? { requestEagerStart: true } : {}),
        });
        result.started++;
        if (handle.eagerlyStarted) result.eagerlyStarted++;
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        await tell(workflowId, g.place, g.admissions);
      }
    }
    await onAdmitted?.(workflowId, g.place, g.admissions);
  });
  return result;
}
