// The ticket activities: drive a scope's ticket system (through its exactly-once ledger) and read
// remote changes for the pollers (workflows/tickets.ts).
import { ApplicationFailure } from '@temporalio/activity';
import type { Deps } from '../runtime/deps.ts';
import type { CampaignSummary, TicketRef, TicketStatusCategory, TicketSystem } from '../domain/ports.ts';
import type { ExactlyOnceTicketSystem } from '../tickets/exactlyOnce.ts';
import {
  acknowledgeTicketChanges,
  pendingTicketChanges,
  type PendingTicketChange,
} from '../tickets/inbound.ts';
import { ticketSystemFor } from '../tickets/systems.ts';

export interface TicketChangesRead {
  pending: PendingTicketChange[];
  /** Poll position after this read, saved by the acknowledgement. */
  position: string;
}

export function createItsmActivities(deps: Deps) {
  // Built on first use, one system at a time: a worker without ticket systems never parses their
  // config, and a mistake in one system's section does not stop the others.
  const systems = new Map<string, ExactlyOnceTicketSystem>();
  const systemNamed = (name: string): ExactlyOnceTicketSystem => {
    let system = systems.get(name);
    if (!system) {
      system = ticketSystemFor(name, deps);
      systems.set(name, system);
    }
    return system;
  };
  const ticketSystem = (name: string): TicketSystem => systemNamed(name);

  return {
    async itsmUpsertTicket(system: string, campaign: CampaignSummary): Promise<TicketRef> {
      return await ticketSystem(system).upsert(campaign);
    },
    async itsmCommentTicket(ref: TicketRef, text: string, idempotencyKey: string): Promise<void> {
      await ticketSystem(ref.system).comment(ref, text, idempotencyKey);
    },
    async itsmCloseTicket(ref: TicketRef, resolution: string): Promise<void> {
      await ticketSystem(ref.system).close(ref, resolution);
    },
    async itsmReopenTicket(ref: TicketRef, reason: string): Promise<void> {
      await ticketSystem(ref.system).reopen(ref, reason);
    },
    async itsmTicketStatus(ref: TicketRef): Promise<TicketStatusCategory> {
      return await ticketSystem(ref.system).status(ref);
    },
    /** Changes of our tickets since the saved poll position that the ledger does not know yet. */
    async itsmReadTicketChanges(system: string): Promise<TicketChangesRead> {
      const remote = systemNamed(system).remote;
      if (!remote.changedSince)
        throw ApplicationFailure.nonRetryable(
          `${system} is not read by polling; it sends webhooks`,
          'TicketPollUnsupported',
        );
      const { rows } = await deps.pool.query<{ position: string }>(
        'select position from ticket_poll_cursors where system = $1',
        [system],
      );
      const started = await deps.pool.query<{ at: Date }>('select clock_timestamp() as at');
      const read = await remote.session(() => remote.changedSince!(rows[0]?.position));
      const pending = await pendingTicketChanges(
        deps.pool,
        read.changes.map((c) => ({
          system,
          key: c.key,
          category: c.category,
          remote: c.remote,
          via: 'poll' as const,
        })),
        new Date(deps.clock()),
        started.rows[0]!.at,
      );
      return { pending, position: read.position };
    },
    /** Record signalled changes and the new poll position. */
    async itsmAcknowledgeTicketChanges(system: string, read: TicketChangesRead): Promise<void> {
      await acknowledgeTicketChanges(deps.pool, read.pending);
      if (read.position)
        await deps.pool.query(
          `insert into ticket_poll_cursors (system, position) values ($1, $2)
           on conflict (system) do update set position = excluded.position, updated_at = now()`,
          [system, read.position],
        );
    },
  };
}
