// Test workflows for the ticket integration, bundled by the ticket tests (with the production
// poller). `ticketDrill` stands in for an exposure workflow: it runs under the exposure's workflow
// id, so inbound ticket changes reach it as `ticketChanged`, and it drives the unit's ticket through
// the real activities on each update the test sends.
import {
  allHandlersFinished,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  proxyActivities,
  setHandler,
} from '@temporalio/workflow';
import type { createItsmActivities } from '../../activities/tickets.ts';
import type { CampaignSummary, TicketRef, TicketStatusCategory } from '../../domain/ports.ts';
import { ticketChangedSignal, type TicketChangedSignal } from '../../contracts/exposure.ts';

export { ticketStatusPoll } from '../../workflows/tickets.ts';

type ItsmActivities = ReturnType<typeof createItsmActivities>;

const itsm = proxyActivities<ItsmActivities>({
  startToCloseTimeout: '60 seconds',
  // Short, so a worker killed mid-call is noticed quickly and the retry runs on the next worker.
  heartbeatTimeout: '3 seconds',
  retry: { initialInterval: '200 milliseconds', maximumInterval: '1 second', maximumAttempts: 20 },
});

export const upsertUpdate = defineUpdate<TicketRef, [CampaignSummary]>('upsert');
export const commentUpdate = defineUpdate<void, [string, string]>('comment');
export const closeUpdate = defineUpdate<void, [string]>('close');
export const reopenUpdate = defineUpdate<void, [string]>('reopen');
export const statusUpdate = defineUpdate<TicketStatusCategory, []>('status');
export const finishSignal = defineSignal('finish');
export const changesQuery = defineQuery<TicketChangedSignal[]>('changes');

export async function ticketDrill(system: string): Promise<TicketChangedSignal[]> {
  const changes: TicketChangedSignal[] = [];
  let ref: TicketRef | undefined;
  let finished = false;
  const known = (): TicketRef => {
    if (!ref) throw new Error('no ticket yet: send upsert first');
    return ref;
  };
  setHandler(ticketChangedSignal, (s) => void changes.push(s));
  setHandler(changesQuery, () => changes);
  setHandler(upsertUpdate, async (unit) => (ref = await itsm.itsmUpsertTicket(system, unit)));
  setHandler(commentUpdate, async (text, key) => await itsm.itsmCommentTicket(known(), text, key));
  setHandler(closeUpdate, async (resolution) => await itsm.itsmCloseTicket(known(), resolution));
  setHandler(reopenUpdate, async (reason) => await itsm.itsmReopenTicket(known(), reason));
  setHandler(statusUpdate, async () => await itsm.itsmTicketStatus(known()));
  setHandler(finishSignal, () => void (finished = true));
  await condition(() => finished && allHandlersFinished());
  return changes;
}
