// Start (or find running) the polling workflow of each ticket system that needs one. Called once by
// the process that runs the stack; starting twice is harmless (conflict policy USE_EXISTING).
import type { Client } from '@temporalio/client';
import { durationMs, type Config } from '../domain/config.ts';
import { polledTicketSystems } from './systems.ts';
import {
  ticketPollWorkflowId,
  ticketStatusPollWorkflowType,
  type TicketStatusPollInput,
} from '../contracts/tickets.ts';

export async function startTicketPollers(
  client: Client,
  config: Config,
  taskQueue: string,
): Promise<string[]> {
  const started: string[] = [];
  for (const { system, interval } of polledTicketSystems(config)) {
    const input: TicketStatusPollInput = { system, intervalMs: durationMs(interval) };
    const handle = await client.workflow.start(ticketStatusPollWorkflowType, {
      taskQueue,
      workflowId: ticketPollWorkflowId(system),
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    started.push(handle.workflowId);
  }
  return started;
}
