// Activities that call outside systems heartbeat while they wait, so a worker that dies mid-call is
// noticed within the heartbeat timeout (seconds) instead of the start-to-close timeout (minutes),
// and the call is retried on another worker.
import { Context } from '@temporalio/activity';

export async function heartbeating<T>(fn: () => Promise<T>): Promise<T> {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return await fn(); // called outside an activity (CLI, tests)
  }
  const timeout = ctx.info.heartbeatTimeoutMs;
  if (ctx.info.isLocal || !timeout) return await fn();
  const beat = setInterval(() => ctx.heartbeat(), Math.max(200, Math.min(10_000, Math.floor(timeout / 3))));
  try {
    return await fn();
  } finally {
    clearInterval(beat);
  }
}
