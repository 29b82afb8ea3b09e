// A ticket changed on the remote side (Jira webhook, ServiceNow outbound REST, GLPI poll): if its
// status category differs from what the ledger knows, signal `ticketChanged` to the campaign
// workflows holding its exposures (each told the exposures it holds: a campaign split over shards,
// or exposures reassigned to another owner's campaign since the ticket was filed). The ledger row
// stays locked until the signals are sent, and is updated only after, so a failed delivery is
// retried by the sender (webhook retry, next poll) and a repeated delivery of the same change
// signals nothing.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { campaignWorkflowId } from '../domain/campaign.ts';
import { inTransaction, type Pool, type PoolClient } from '../runtime/pool.ts';
import type { TicketStatusCategory } from '../domain/ports.ts';
import type { TicketChange } from '../contracts/campaign.ts';
import { moveLockName, moveLockSql, recordTicketEvents } from './exactlyOnce.ts';

/** The campaign workflows holding a ticket's exposures: [campaign id, shard, exposure ids] each. */
const PLACES = `(select coalesce(jsonb_agg(jsonb_build_array(p.campaign_id, p.campaign_shard, p.ids)
                                    order by p.campaign_id, p.campaign_shard), '[]'::jsonb)
                   from (select x.campaign_id, x.campaign_shard, array_agg(x.id order by x.id) as ids
                           from exposures x
                          where x.id = any(tickets.exposure_ids)
                            and x.campaign_id is not null and x.campaign_shard is not null
                          group by x.campaign_id, x.campaign_shard) p) as places`;

/** Signal name the campaign workflow listens on (contracts/campaign.ts, ticketChangedSignal). */
export const ticketChangedSignalName = 'ticketChanged';

/** Payload of the ticketChanged signal: the campaign workflow's contract, plus what the ledger knows. */
export interface TicketChanged extends TicketChange {
  /** The ticket group (the campaign id by default). */
  group: string;
  previous?: TicketStatusCategory;
  /** The system's own status name or number. */
  remoteStatus: string;
  via: 'webhook' | 'poll';
}

export interface InboundTicketChange {
  system: string;
  key: string;
  category: TicketStatusCategory;
  remote: string;
  actor?: string;
  via: 'webhook' | 'poll';
}

/** One campaign workflow to tell, and which of the ticket's exposures it holds. */
export interface TicketChangeDelivery {
  workflowId: string;
  exposureIds: string[];
}

/** Signal each delivery's workflow the change, carrying that workflow's exposures. */
export type DeliverTicketChange = (
  deliveries: TicketChangeDelivery[],
  change: TicketChanged,
) => Promise<void>;

export type InboundOutcome =
  | { outcome: 'unknown-ticket' }
  | { outcome: 'unchanged' }
  | { outcome: 'signalled'; group: string; workflows: number };

export async function applyInboundTicketChange(
  pool: Pool,
  change: InboundTicketChange,
  deliver: DeliverTicketChange,
  now = new Date(),
): Promise<InboundOutcome> {
  return await inTransaction(pool, async (client) => {
    const { rows } = await client.query<LedgerRow>(
      `select group_key, ticket_url, exposure_ids, last_status,
              ${PLACES}
         from tickets where system = $1 and ticket_key = $2 for update`,
      [change.system, change.key],
    );
    const row = rows[0];
    if (!row) return { outcome: 'unknown-ticket' };
    if (row.last_status === change.category) return { outcome: 'unchanged' };
    const pending = pendingChange(row, change, now);
    await deliver(pending.deliveries, pending.signal);
    await recordAcknowledged(client, pending, row.exposure_ids);
    return { outcome: 'signalled', group: row.group_key, workflows: pending.deliveries.length };
  });
}

interface LedgerRow {
  group_key: string;
  ticket_url: string | null;
  exposure_ids: string[];
  last_status: TicketStatusCategory | null;
  /** [campaign id, shard, exposure ids] of the ticket's exposures: the workflows that hold them. */
  places: [string, number, string[]][];
}

/**
 * A change to signal: the campaign workflows of the ticket's exposures and the payload, whose
 * `exposureIds` each delivery replaces with its own (it is empty here).
 */
export interface PendingTicketChange {
  deliveries: TicketChangeDelivery[];
  signal: TicketChanged;
}

function pendingChange(row: LedgerRow, change: InboundTicketChange, now: Date): PendingTicketChange {
  return {
    deliveries: row.places.map(([campaign, shard, exposureIds]) => ({
      workflowId: campaignWorkflowId(campaign, shard),
      exposureIds,
    })),
    signal: {
      exposureIds: [],
      ticket: { system: change.system, key: change.key, ...(row.ticket_url ? { url: row.ticket_url } : {}) },
      status: change.category,
      at: now.toISOString(),
      ...(change.actor ? { by: change.actor } : {}),
      group: row.group_key,
      ...(row.last_status ? { previous: row.last_status } : {}),
      remoteStatus: change.remote,
      via: change.via,
    },
  };
}

/** Record a delivered change, unless the ledger moved meanwhile (our own close/reopen wins). */
async function recordAcknowledged(client: PoolClient, pending: PendingTicketChange, exposureIds: string[]) {
  const s = pending.signal;
  const { rowCount } = await client.query(
    `update tickets set last_status = $3, remote_status = $4, status_changed_at = $5, updated_at = now()
     where system = $1 and ticket_key = $2 and last_status is not distinct from $6`,
    [s.ticket.system, s.ticket.key, s.status, s.remoteStatus, s.at, s.previous ?? null],
  );
  if (!rowCount) return;
  await recordTicketEvents(
    client,
    'ticket.changed',
    exposureIds,
    `ticket.changed:${s.ticket.system}:${s.ticket.key}:${s.at}`,
    { ...s },
    s.by ? `${s.ticket.system}:${s.by}` : s.ticket.system,
  );
}

/**
 * For pollers, whose signals are sent by a workflow: the changes that differ from the ledger. Nothing
 * is written; acknowledgeTicketChanges records them once the workflow has signalled.
 */
export async function pendingTicketChanges(
  pool: Pool,
  changes: InboundTicketChange[],
  now = new Date(),
  /**
   * When the remote read began (database time). A ticket we moved ourselves since then was read
   * before our move: comparing that stale read with the moved ledger would make our own close look
   * like a person's reopen. It is left to the next poll, which sees it again.
   */
  readStartedAt?: Date,
): Promise<PendingTicketChange[]> {
  if (changes.length === 0) return [];
  const system = changes[0]!.system;
  const select = (db: Pool | PoolClient, keys: string[]) =>
    db.query<LedgerRow & { ticket_key: string; moved_since_read: boolean }>(
      `select ticket_key, group_key, ticket_url, exposure_ids, last_status, ${PLACES},
              coalesce(status_changed_at >= $3, false) as moved_since_read
         from tickets where system = $1 and ticket_key = any($2::text[])`,
      [system, keys, readStartedAt ?? null],
    );
  const first = await select(
    pool,
    changes.map((c) => c.key),
  );
  const differing = first.rows
    .filter((r) => changes.some((c) => c.key === r.ticket_key && c.category !== r.last_status))
    .map((r) => r.ticket_key)
    .sort();
  // Only tickets that look changed are looked at again, after any move of ours in flight is done.
  const rows =
    differing.length === 0
      ? []
      : await inTransaction(pool, async (client) => {
          for (const key of differing) await client.query(moveLockSql, [moveLockName(system, key)]);
          return (await select(client, differing)).rows;
        });
  const byKey = new Map(rows.map((r) => [r.ticket_key, r]));
  const pending: PendingTicketChange[] = [];
  for (const change of changes) {
    const row = byKey.get(change.key);
    if (row && !row.moved_since_read && row.last_status !== change.category)
      pending.push(pendingChange(row, change, now));
  }
  return pending;
}

export async function acknowledgeTicketChanges(pool: Pool, pending: PendingTicketChange[]): Promise<void> {
  for (const p of pending) {
    await inTransaction(pool, async (client) => {
      const { rows } = await client.query<{ exposure_ids: string[] }>(
        `select exposure_ids from tickets where system = $1 and ticket_key = $2 for update`,
        [p.signal.ticket.system, p.signal.ticket.key],
      );
      if (rows[0]) await recordAcknowledged(client, p, rows[0].exposure_ids);
    });
  }
}

/** Deliver through a Temporal client; a campaign whose workflow has ended is skipped. */
export function signalThroughClient(client: Client): DeliverTicketChange {
  return async (deliveries, change) => {
    for (const { workflowId, exposureIds } of deliveries) {
      try {
        await client.workflow
          .getHandle(workflowId)
          .signal(ticketChangedSignalName, { ...change, exposureIds } satisfies TicketChanged);
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) continue;
        throw err;
      }
    }
  };
}
