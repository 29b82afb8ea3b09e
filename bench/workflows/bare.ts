// The bare-engine anchor of the onboarding benchmark: the least a durable per-entity process can be
// on Temporal — a workflow that arms one timer (its SLA, say) and waits. Started eagerly on the same
// server as ctem's campaigns, it measures what the engine itself allows on this machine.
import { condition, defineUpdate, setHandler, sleep } from '@temporalio/workflow';

export async function bareTimer(days: number): Promise<void> {
  await sleep(days * 86_400_000);
}

export const touchUpdate = defineUpdate<number, [number]>('touch');

/** The anchor of a decision's latency: an entity whose update does nothing but count. */
export async function bareUpdatable(): Promise<void> {
  let touched = 0;
  setHandler(touchUpdate, (n: number) => (touched += n));
  await condition(() => touched < 0);
}
