// The crash test's workflow, bundled with the production poller: it files a campaign's ticket
// through the real ticket activity, with a short heartbeat, so a worker killed mid-create is noticed
// quickly and the retry runs on the next worker.
import { proxyActivities } from '@temporalio/workflow';
import type { createItsmActivities } from '../../activities/tickets.ts';
import type { CampaignSummary, TicketRef } from '../../domain/ports.ts';

export { ticketStatusPoll } from '../../workflows/tickets.ts';

type ItsmActivities = ReturnType<typeof createItsmActivities>;

const itsm = proxyActivities<Pick<ItsmActivities, 'itsmUpsertTicket'>>({
  startToCloseTimeout: '60 seconds',
  heartbeatTimeout: '3 seconds',
  retry: { initialInterval: '200 milliseconds', maximumInterval: '1 second', maximumAttempts: 20 },
});

export async function ticketUpsert(system: string, campaign: CampaignSummary): Promise<TicketRef> {
  return await itsm.itsmUpsertTicket(system, campaign);
}
