// Reading ticket systems that cannot call us (GLPI; ServiceNow as a safety net): one long-running
// workflow per system polls for changed tickets, signals `ticketChanged` to the campaign workflows
// of each changed ticket, then records the change. A crash between the two repeats the signal, never
// loses it; the campaign treats a repeated status as no news.
import { continueAsNew, getExternalWorkflowHandle, log, proxyActivities, sleep } from '@temporalio/workflow';
import type { createItsmActivities } from '../activities/tickets.ts';
import { ticketChangedSignal } from '../contracts/campaign.ts';
import type { TicketStatusPollInput } from '../contracts/tickets.ts';
import type { PendingTicketChange, TicketChangeDelivery } from '../tickets/inbound.ts';

type ItsmActivities = ReturnType<typeof createItsmActivities>;

/**
 * A change as the read activity returned it. Before campaigns it named the workflows only, each told
 * every exposure of the ticket: histories of that time replay through the same signals.
 */
type ReadChange = PendingTicketChange | { workflowIds: string[]; signal: PendingTicketChange['signal'] };

function deliveriesOf(change: ReadChange): TicketChangeDelivery[] {
  return 'deliveries' in change
    ? change.deliveries
    : change.workflowIds.map((workflowId) => ({ workflowId, exposureIds: change.signal.exposureIds }));
}

const { itsmReadTicketChanges, itsmAcknowledgeTicketChanges } = proxyActivities<
  Pick<ItsmActivities, 'itsmReadTicketChanges' | 'itsmAcknowledgeTicketChanges'>
>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', maximumInterval: '5 minutes', backoffCoefficient: 2 },
});

export async function ticketStatusPoll(input: TicketStatusPollInput): Promise<never> {
  const rounds = input.roundsPerRun ?? 200;
  for (let round = 0; round < rounds; round++) {
    const read = await itsmReadTicketChanges(input.system);
    for (const change of read.pending as ReadChange[]) {
      for (const { workflowId, exposureIds } of deliveriesOf(change)) {
        try {
          await getExternalWorkflowHandle(workflowId).signal(ticketChangedSignal, {
            ...change.signal,
            exposureIds,
          });
        } catch (err) {
          // The campaign has ended (every exposure closed): nobody is waiting for this ticket.
          log.warn('ticket change not delivered', {
            workflowId,
            ticket: change.signal.ticket.key,
            error: String(err),
          });
        }
      }
    }
    await itsmAcknowledgeTicketChanges(input.system, read);
    await sleep(input.intervalMs);
  }
  return await continueAsNew<typeof ticketStatusPoll>(input);
}
