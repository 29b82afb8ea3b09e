// Correlation ids on every log line written while an activity runs: workflow id, run id, activity
// type and id, attempt, the campaign id when the workflow is a campaign's (or its rollout's), and
// the exposure id when the activity works for one exposure. An activity
// interceptor runs each attempt inside an AsyncLocalStorage scope; the pino mixin of createLogger
// (runtime/log.ts) copies the scope's fields into each line, so activity code keeps calling
// deps.log as it always did and its lines can be joined to the workflow's history and audit events.
// (Workflow code logs through the SDK's workflow logger, whose lines already carry workflowId,
// runId and workflowType into the Runtime logger: worker/worker.ts installWorkerRuntime.)
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, Next } from '@temporalio/worker';
import type { Logger } from 'pino';

export interface LogFields {
  workflowId?: string;
  runId?: string;
  workflowType?: string;
  activityType?: string;
  activityId?: string;
  attempt?: number;
  campaignId?: string;
  exposureId?: string;
}

const scope = new AsyncLocalStorage<LogFields>();

/** The correlation fields of the code running now (empty outside an activity). */
export function currentLogFields(): LogFields {
  return scope.getStore() ?? {};
}

/** Run fn with these fields added to every log line it writes. */
export function withLogFields<T>(fields: LogFields, fn: () => T): T {
  return scope.run({ ...currentLogFields(), ...fields }, fn);
}

const EXPOSURE_WORKFLOW = /^exposure-(.+)$/;
/** campaign-<id>[~shard], and its rollouts patch-<id>[~shard]-r<round>. */
const CAMPAIGN_WORKFLOW = /^(?:campaign-(cmp:[^~]+)(?:~\d+)?|patch-(cmp:[^~]+?)(?:~\d+)?-r\d+)$/;

/** The campaign an activity works for: its workflow's, or the campaignId of its first argument. */
function campaignOf(workflowId: string | undefined, args: readonly unknown[]): string | undefined {
  const m = workflowId ? CAMPAIGN_WORKFLOW.exec(workflowId) : null;
  if (m) return m[1] ?? m[2];
  const first = args[0];
  if (first && typeof first === 'object' && 'campaignId' in first) {
    const id = (first as { campaignId?: unknown }).campaignId;
    if (typeof id === 'string') return id;
  }
  return undefined;
}

/** The exposure an activity works for: its workflow's, or the exposureId of its first argument. */
function exposureOf(workflowId: string | undefined, args: readonly unknown[]): string | undefined {
  const m = workflowId ? EXPOSURE_WORKFLOW.exec(workflowId) : null;
  if (m) return m[1];
  const first = args[0];
  if (first && typeof first === 'object' && 'exposureId' in first) {
    const id = (first as { exposureId?: unknown }).exposureId;
    if (typeof id === 'string') return id;
  }
  return undefined;
}

/**
 * A worker interceptor factory: each activity attempt runs with its correlation fields, and a failed
 * attempt is logged once here with them (Temporal retries it; the log says which run it was).
 */
export function correlationInterceptor(
  log: Logger,
): (ctx: Context) => { inbound: ActivityInboundCallsInterceptor } {
  return (ctx) => ({
    inbound: {
      async execute(
        input: ActivityExecuteInput,
        next: Next<ActivityInboundCallsInterceptor, 'execute'>,
      ): Promise<unknown> {
        const info = ctx.info;
        const exposureId = exposureOf(info.workflowExecution?.workflowId, input.args);
        const campaignId = campaignOf(info.workflowExecution?.workflowId, input.args);
        const fields: LogFields = {
          workflowId: info.workflowExecution?.workflowId,
          runId: info.workflowExecution?.runId,
          workflowType: info.workflowType,
          activityType: info.activityType,
          activityId: info.activityId,
          attempt: info.attempt,
          ...(campaignId ? { campaignId } : {}),
          ...(exposureId ? { exposureId } : {}),
        };
        return await withLogFields(fields, async () => {
          const started = Date.now();
          try {
            const result = await next(input);
            log.debug({ ...fields, ms: Date.now() - started }, 'activity completed');
            return result;
          } catch (err) {
            const nonRetryable = (err as { nonRetryable?: boolean }).nonRetryable === true;
            log.warn({ ...fields, err, nonRetryable, ms: Date.now() - started }, 'activity attempt failed');
            throw err;
          }
        });
      },
    },
  });
}
