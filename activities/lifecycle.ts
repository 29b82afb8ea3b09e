// The lifecycle's activities: recording, notifying, remediating, verifying, dispatching scan
// changes to exposure workflows, and the scheduled jobs' slots.
import { Context } from '@temporalio/activity';
import type { Deps } from '../runtime/deps.ts';
import type {
  LifecycleRecord,
  MoveToOwnerRequest,
  NotifyRequest,
  PatchRolloutJoinRequest,
  RemediationRequest,
  RemediationRouteRequest,
  RescanRequestInput,
  TicketUpdateRequest,
} from '../contracts/lifecycle.ts';
import {
  dispatchChanges,
  dispatchScan,
  type DispatchResult,
  type ExposureChange,
} from '../lifecycle/dispatch.ts';
import { heartbeating } from '../lifecycle/heartbeat.ts';
import { notifyAudience } from '../lifecycle/notify.ts';
import { createLifecycleRecorder } from '../lifecycle/records.ts';
import {
  applyPatch,
  joinPatchRollout,
  moveToOwner,
  openTicket,
  remediationRoute,
  requestRescan,
  updateTicket,
} from '../lifecycle/remediate.ts';
import { runScheduledJob, type ScheduledJob } from '../lifecycle/jobs.ts';

export function createLifecycleActivities(deps: Deps) {
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
    notifyAudience: (req: NotifyRequest) => heartbeating(() => notifyAudience(deps, req)),
    moveToOwner: (req: MoveToOwnerRequest) => moveToOwner(deps, req),
    remediationRoute: (req: RemediationRouteRequest) => remediationRoute(deps, req),
    openTicket: (req: RemediationRequest) => heartbeating(() => openTicket(deps, req)),
    applyPatch: (req: RemediationRequest) => heartbeating(() => applyPatch(deps, req)),
    joinPatchRollout: (req: PatchRolloutJoinRequest) => joinPatchRollout(deps, req),
    updateTicket: (req: TicketUpdateRequest) => heartbeating(() => updateTicket(deps, req)),
    requestRescan: (req: RescanRequestInput) => heartbeating(() => requestRescan(deps, req)),
    /** Start or signal the exposure workflows one ingested scan changed. */
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

export type LifecycleActivities = ReturnType<typeof createLifecycleActivities>;
