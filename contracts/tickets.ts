// The ticket pollers' contract (workflows/tickets.ts): one long-running workflow per ticket system
// that cannot call us, started by the stack (tickets/pollers.ts).

export const ticketStatusPollWorkflowType = 'ticketStatusPoll';

export interface TicketStatusPollInput {
  system: string;
  /** Pause between polls, in ms. */
  intervalMs: number;
  /** Polls per run before continuing as new (keeps the history small). */
  roundsPerRun?: number;
}

export function ticketPollWorkflowId(system: string): string {
  return `ticket-poll-${system}`;
}
