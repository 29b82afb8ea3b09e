// The lifecycle's activities: recording what campaigns do, reaching people, remediating, verifying,
// moving exposures between campaigns, dispatching scan changes to campaigns, and the scheduled jobs'
// slots. Thin: each is a capability function with this process's dependencies.
import { Context } from '@temporalio/activity';
import type { Deps } from '../runtime/deps.ts';
import type {
  AskOwnerRequest,
  CampaignNotifyRequest,
  CampaignRescanRequest,
  CampaignTicketRequest,
  LifecycleRecord,
  MoveRequest,
  RemediateRequest,
} from '../contracts/lifecycle.ts';
import type { RolloutNotifyRequest, RolloutRescanRequest } from '../contracts/patching.ts';
import {
  dispatchChanges,
  dispatchScan,
  type DispatchResult,
  type ExposureChange,
} from '../lifecycle/dispatch.ts';
import { heartbeating } from '../lifecycle/heartbeat.ts';
import { askOwner, notifyCampaign, notifyRollout } from '../lifecycle/notify.ts';
import { createLifecycleRecorder } from '../lifecycle/records.ts';
import {
  activityClient,
  moveExposures,
  remediateCampaign,
  requestCampaignRescan,
  updateCampaignTicket,
} from '../lifecycle/remediate.ts';
import { runScheduledJob, type ScheduledJob } from '../lifecycle/jobs.ts';

export function createCampaignActivities(deps: Deps) {
  const recorder = createLifecycleRecorder(deps.pool);
  const dispatchOptions = () => {
    const ctx = Context.current();
    return {
      taskQueue: ctx.info.taskQueue,
      onProgress: (done: number, total: number) => ctx.heartbeat({ done, total }),
    };
  };
  return {
    async recordLifecycle(records: LifecycleRecord[]): Promise<void> {
      await recorder.record(records);
    },
    askOwner: (req: AskOwnerRequest) => heartbeating(() => askOwner(deps, req)),
    notifyCampaign: (req: CampaignNotifyRequest) => heartbeating(() => notifyCampaign(deps, req)),
    remediateCampaign: (req: RemediateRequest) => heartbeating(() => remediateCampaign(deps, req)),
    updateCampaignTicket: (req: CampaignTicketRequest) => heartbeating(() => updateCampaignTicket(deps, req)),
    requestCampaignRescan: (req: CampaignRescanRequest) =>
      heartbeating(() => {
        const { client, taskQueue } = activityClient();
        return requestCampaignRescan(deps, req, client, taskQueue);
      }),
    moveExposures: (req: MoveRequest) =>
      heartbeating(() => {
        const { client, taskQueue } = activityClient();
        return moveExposures(deps, client, req, { taskQueue });
      }),
    /** A patch rollout's approval request or escalation (workflows/patch.ts). */
    notifyAudience: (req: RolloutNotifyRequest) => heartbeating(() => notifyRollout(deps, req)),
    /** A patch rollout's verifying re-scan, when its starter does not ask for it itself. */
    requestRescan: (req: RolloutRescanRequest) =>
      heartbeating(() => {
        const { client, taskQueue } = activityClient();
        return requestCampaignRescan(
          deps,
          {
            requestId: req.requestId,
            campaignId: req.campaignId ?? req.exposureId,
            shard: 1,
            scope: req.scope,
            key: req.eventKey,
            exposureIds: [req.exposureId],
            assetIds: [req.assetId],
            weaknessKeys: [req.weaknessKey],
            notBefore: req.notBefore,
          },
          client,
          taskQueue,
        );
      }),
    /** Start or signal the campaign workflows one ingested scan changed. */
    async dispatchScanChanges(scanId: number): Promise<DispatchResult & { changes: number }> {
      return await dispatchScan(deps, Context.current().client, scanId, dispatchOptions());
    },
    async dispatchExposureChanges(changes: ExposureChange[]): Promise<DispatchResult> {
      return await dispatchChanges(deps, Context.current().client, changes, dispatchOptions());
    },
    runScheduledJob: (job: ScheduledJob) =>
      runScheduledJob(deps, Context.current().client, Context.current().info.taskQueue, job),
  };
}

export type CampaignActivities = ReturnType<typeof createCampaignActivities>;
