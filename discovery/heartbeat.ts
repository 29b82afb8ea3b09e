import { Context } from '@temporalio/activity';

/**
 * Tell Temporal a long scan is still alive, when running inside an activity (a scan cycle, a
 * re-scan); a no-op elsewhere (the CLI, tests).
 */
export function heartbeat(details: unknown): void {
  let ctx: Context | undefined;
  try {
    ctx = Context.current();
  } catch {
    return;
  }
  ctx.heartbeat(details);
}
