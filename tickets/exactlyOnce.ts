// The TicketSystem the lifecycle uses: a remote client plus the PostgreSQL ledger (tickets,
// ticket_units, ticket_comments). A ticket group (a campaign by default) has one row, locked while
// its ticket is found, created or updated, so the shards of a campaign, or a retried activity
// racing its first attempt, cannot create two tickets; the external key written on the ticket covers
// the crash between the remote create and the local record.
import { ApplicationFailure } from '@temporalio/activity';
import type { Logger } from 'pino';
import { terminalStates } from '../domain/exposure.ts';
import { inTransaction, type Pool, type PoolClient } from '../runtime/pool.ts';
import type { CampaignSummary, TicketRef, TicketStatusCategory, TicketSystem } from '../domain/ports.ts';
import { commentMarker, externalKeyFor } from './content.ts';
import { mergeParts, splitCampaign, type GroupBy } from './grouping.ts';
import type { RemoteTicketSystem } from './remote.ts';
import { fitText } from './view.ts';

/** Audit events, one per exposure, written once per idempotency key. */
export async function recordTicketEvents(
  client: Pool | PoolClient,
  type: string,
  exposureIds: string[],
  keyPrefix: string,
  data: Record<string, unknown>,
  actor = 'system',
): Promise<void> {
  if (exposureIds.length === 0) return;
  await client.query(
    `insert into events (exposure_id, type, actor, data, idempotency_key)
     select e, $2, $3, $4::jsonb, $5 || ':' || e from unnest($1::text[]) as e
     on conflict (idempotency_key) do nothing`,
    [exposureIds, type, actor, JSON.stringify(data), keyPrefix],
  );
}

/**
 * Our own moves of a ticket (close, reopen) hold this lock while the remote call runs; a poller
 * comparing what it read with the ledger waits for it, so it never compares mid-move.
 */
export const moveLockSql = 'select pg_advisory_xact_lock(hashtextextended($1, 7426013))';
export function moveLockName(system: string, ticketKey: string): string {
  return `ticket-move:${system}:${ticketKey}`;
}

/** Exposure states that mean someone has to work the ticket. */
const needsWork = new Set<string>(['remediating', 'reopened']);

function reopenNote(campaign: CampaignSummary): string {
  const back = campaign.exposures.filter((e) => needsWork.has(e.state));
  return `Reopened: ${back.length === 1 ? 'this exposure needs' : `these ${back.length} exposures need`} fixing again:\n${back
    .map((e) => `${e.weaknessKey} on ${e.asset}`)
    .join('\n')}`;
}

/**
 * What an event records of a move's text: each of a campaign's exposures gets the event, so a text
 * listing a thousand of them is kept to its first lines (the ticket has it whole).
 */
function eventData(data: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(data).map(([k, v]) => [
      k,
      typeof v === 'string' ? fitText(v, (t) => t.length <= EVENT_TEXT_CHARS) : v,
    ]),
  );
}
const EVENT_TEXT_CHARS = 2_000;

interface GroupRow {
  group_key: string;
  external_key: string;
  ticket_key: string | null;
  ticket_url: string | null;
  content_hash: string | null;
  last_status: TicketStatusCategory | null;
  exposure_ids: string[];
}

export class ExactlyOnceTicketSystem implements TicketSystem {
  constructor(
    readonly remote: RemoteTicketSystem,
    private readonly pool: Pool,
    private readonly log: Logger,
    /** scopes[].tickets.groupBy of a scope. */
    private readonly groupByFor: (scope: string) => GroupBy = () => 'campaign',
  ) {}

  get name(): string {
    return this.remote.name;
  }

  /**
   * The ticket of each group the campaign's exposures fall in (one, the campaign's, by default).
   * Returns the ticket of the campaign's first exposure; close, reopen and comment on it reach the
   * campaign's other tickets. The summary lists every exposure: the ledger records them as the ones
   * a change of the ticket is for.
   */
  async upsert(campaign: CampaignSummary): Promise<TicketRef> {
    const first = campaign.exposures[0];
    if (!first)
      throw ApplicationFailure.nonRetryable(
        `campaign ${campaign.id} has no exposures to file a ticket for`,
        'TicketRequestRejected',
      );
    if (campaign.more)
      throw ApplicationFailure.nonRetryable(
        `the summary of campaign ${campaign.id} leaves ${campaign.more} exposure(s) out; a ticket needs them all (campaignSummary without a limit)`,
        'TicketRequestRejected',
      );
    const groupBy = this.groupByFor(campaign.scope);
    const parts = splitCampaign(campaign, groupBy);
    const refs = new Map<string, TicketRef>();
    // Groups are locked in key order, so campaigns sharing groups cannot deadlock each other.
    for (const key of [...parts.keys()].sort())
      refs.set(key, await this.upsertGroup(key, groupBy, { campaignId: campaign.id, part: parts.get(key)! }));
    await this.leaveStaleGroups(campaign.id, [...parts.keys()], groupBy);
    return refs.get([...parts.keys()][0]!)!;
  }

  private async upsertGroup(
    groupKey: string,
    groupBy: GroupBy,
    member: { campaignId: string; part: CampaignSummary } | undefined,
  ): Promise<TicketRef> {
    const { ref, reopen } = await this.writeGroup(groupKey, groupBy, member);
    // Work is back on a ticket that was closed (a regression, a new exposure): reopen it, after the
    // commit, as our own move (the ledger first), so a poll does not take it for a person's. A
    // crash before it leaves the ledger at done, and the retried upsert reopens.
    if (reopen) await this.moveTo(ref, 'open', () => this.remote.reopen(ref, reopen), { reason: reopen });
    return ref;
  }

  private async writeGroup(
    groupKey: string,
    groupBy: GroupBy,
    member: { campaignId: string; part: CampaignSummary } | undefined,
  ): Promise<{ ref: TicketRef; reopen?: string }> {
    const system = this.remote.name;
    return await inTransaction(this.pool, async (client) => {
      // A concurrent upsert of the same group waits here until this one commits.
      await client.query(
        `insert into tickets (system, group_key, group_by, external_key, scope) values ($1, $2, $3, $4, $5)
         on conflict (system, group_key) do nothing`,
        [system, groupKey, groupBy, externalKeyFor(groupKey), member?.part.scope ?? null],
      );
      const row = (
        await client.query<GroupRow>(
          `select group_key, external_key, ticket_key, ticket_url, content_hash, last_status, exposure_ids
             from tickets where system = $1 and group_key = $2 for update`,
          [system, groupKey],
        )
      ).rows[0]!;
      if (member)
        await client.query(
          `insert into ticket_units (system, group_key, campaign_id, summary) values ($1, $2, $3, $4)
           on conflict (system, group_key, campaign_id) do update set summary = excluded.summary, updated_at = now()`,
          [system, groupKey, member.campaignId, JSON.stringify(member.part)],
        );
      const members = (
        await client.query<{ summary: CampaignSummary }>(
          `select summary from ticket_units where system = $1 and group_key = $2 order by campaign_id`,
          [system, groupKey],
        )
      ).rows.map((r) => r.summary);
      const merged = mergeParts(groupKey, members);
      // The key the ticket was filed under: a ticket of an earlier release keeps its "ctem-ru-" key.
      const view = this.remote.view(merged, row.external_key);
      const hash = this.remote.contentHash(view);

      const outcome = await this.remote.session(async () => {
        if (row.ticket_key) {
          const known: TicketRef = { system, key: row.ticket_key, url: row.ticket_url ?? undefined };
          if (row.content_hash === hash) return { ref: known, action: 'unchanged' as const };
          await this.remote.update(known, view, merged);
          return { ref: known, action: 'updated' as const };
        }
        // No key on record: an earlier attempt may have created the ticket and died before recording it.
        const attempted = await this.pool.query<{ attempts: number }>(
          'select attempts from ticket_create_attempts where system = $1 and group_key = $2',
          [system, groupKey],
        );
        const found = await this.remote.find(view.externalKey, {
          afterUnrecordedCreate: (attempted.rowCount ?? 0) > 0,
        });
        if (found) {
          await this.remote.update(found, view, merged);
          return { ref: found, action: 'found' as const };
        }
        // Committed before the create is sent (outside this transaction), so a retry after a crash
        // knows a ticket may exist that the search does not show yet.
        await this.pool.query(
          `insert into ticket_create_attempts (system, group_key) values ($1, $2)
           on conflict (system, group_key) do update set attempted_at = now(),
             attempts = ticket_create_attempts.attempts + 1`,
          [system, groupKey],
        );
        let created: Awaited<ReturnType<RemoteTicketSystem['create']>>;
        try {
          created = await this.remote.create(view, merged);
        } catch (err) {
          // Refused (validation, auth): nothing was created, so a later try need not wait for a search.
          if (err instanceof ApplicationFailure && err.nonRetryable)
            await this.pool.query('delete from ticket_create_attempts where system = $1 and group_key = $2', [
              system,
              groupKey,
            ]);
          throw err;
        }
        const { number, ...ref } = created;
        return { ref, number, action: 'created' as const };
      });
      await client.query('delete from ticket_create_attempts where system = $1 and group_key = $2', [
        system,
        groupKey,
      ]);

      const exposureIds = merged.exposures.map((e) => e.id);
      await client.query(
        `update tickets set ticket_key = $3, ticket_url = $4, ticket_number = coalesce($5, ticket_number),
           content_hash = $6, scope = coalesce($7, scope), last_status = coalesce(last_status, 'open'),
           exposure_ids = $8, updated_at = now()
         where system = $1 and group_key = $2`,
        [
          system,
          groupKey,
          outcome.ref.key,
          outcome.ref.url ?? null,
          'number' in outcome ? (outcome.number ?? null) : null,
          hash,
          merged.scope,
          exposureIds,
        ],
      );
      if (outcome.action === 'created' || outcome.action === 'found')
        await recordTicketEvents(
          client,
          'ticket.created',
          exposureIds,
          `ticket.created:${system}:${groupKey}`,
          {
            group: groupKey,
            system,
            key: outcome.ref.key,
            url: outcome.ref.url,
            recoveredAfterCrash: outcome.action === 'found',
          },
        );
      this.log.info(
        { system, group: groupKey, key: outcome.ref.key, action: outcome.action },
        'ticket upserted',
      );
      const reopen =
        row.last_status === 'done' && merged.exposures.some((e) => needsWork.has(e.state))
          ? reopenNote(merged)
          : undefined;
      return { ref: outcome.ref, ...(reopen ? { reopen } : {}) };
    });
  }

  /** An exposure moved out of the campaign's group: its old group's ticket is re-rendered without it. */
  private async leaveStaleGroups(campaignId: string, current: string[], groupBy: GroupBy): Promise<void> {
    const { rows } = await this.pool.query<{ group_key: string }>(
      `delete from ticket_units where system = $1 and campaign_id = $2 and not (group_key = any($3::text[]))
       returning group_key`,
      [this.remote.name, campaignId, current],
    );
    for (const { group_key } of rows) {
      const left = await this.pool.query(
        'select 1 from ticket_units where system = $1 and group_key = $2 limit 1',
        [this.remote.name, group_key],
      );
      if (left.rowCount) await this.upsertGroup(group_key, groupBy, undefined);
    }
  }

  /** The ref's group and every group sharing a campaign with it (the campaign's other tickets when split). */
  private async relatedGroups(ref: TicketRef): Promise<(GroupRow & { ticket_key: string; self: boolean })[]> {
    const { rows } = await this.pool.query<GroupRow & { ticket_key: string; self: boolean }>(
      `select distinct t2.group_key, t2.external_key, t2.ticket_key, t2.ticket_url, t2.content_hash,
              t2.last_status, t2.exposure_ids, t2.ticket_key = $2 as self
         from tickets t
         join ticket_units u on u.system = t.system and u.group_key = t.group_key
         join ticket_units u2 on u2.system = u.system and u2.campaign_id = u.campaign_id
         join tickets t2 on t2.system = u2.system and t2.group_key = u2.group_key
        where t.system = $1 and t.ticket_key = $2 and t2.ticket_key is not null
        order by t2.group_key`,
      [ref.system, ref.key],
    );
    return rows;
  }

  /** Exposures of a group that are not closed yet, per the lifecycle's exposure rows. */
  private async openExposures(ids: string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.pool.query<{ id: string }>(
      `select id from exposures where id = any($1::text[]) and not (state = any($2::text[]))`,
      [ids, terminalStates],
    );
    return rows.map((r) => r.id);
  }

  private refOf(ref: TicketRef, row: { ticket_key: string; ticket_url: string | null }): TicketRef {
    return { system: ref.system, key: row.ticket_key, ...(row.ticket_url ? { url: row.ticket_url } : {}) };
  }

  async comment(ref: TicketRef, text: string, idempotencyKey: string): Promise<void> {
    const related = await this.relatedGroups(ref);
    const targets = related.filter((g) => g.self || g.last_status !== 'done');
    for (const target of targets.length ? targets.map((g) => this.refOf(ref, g)) : [ref])
      await this.commentOnce(target, text, idempotencyKey);
  }

  private async commentOnce(ref: TicketRef, text: string, idempotencyKey: string): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      await client.query(
        `insert into ticket_comments (system, ticket_key, idempotency_key, marker) values ($1, $2, $3, $4)
         on conflict do nothing`,
        [ref.system, ref.key, idempotencyKey, commentMarker(idempotencyKey)],
      );
      const { rows } = await client.query<{ posted_at: Date | null }>(
        `select posted_at from ticket_comments where system = $1 and ticket_key = $2 and idempotency_key = $3 for update`,
        [ref.system, ref.key, idempotencyKey],
      );
      if (rows[0]?.posted_at) return;
      // The remote side looks for the marker first, in case a crash came after an earlier post.
      await this.remote.comment(ref, text, idempotencyKey);
      await client.query(
        `update ticket_comments set posted_at = now() where system = $1 and ticket_key = $2 and idempotency_key = $3`,
        [ref.system, ref.key, idempotencyKey],
      );
    });
  }

  /**
   * Close every ticket of the campaign whose exposures are all closed. A ticket shared with other
   * campaigns (asset or fix grouping) stays open while any of its exposures is not, and says how far
   * it got.
   */
  async close(ref: TicketRef, resolution: string): Promise<void> {
    const related = await this.relatedGroups(ref);
    if (related.length === 0) {
      await this.moveTo(ref, 'done', () => this.remote.close(ref, resolution), { resolution });
      return;
    }
    for (const group of related) {
      const target = this.refOf(ref, group);
      const open = await this.openExposures(group.exposure_ids);
      if (open.length === 0)
        await this.moveTo(target, 'done', () => this.remote.close(target, resolution), { resolution });
      else if (group.self)
        await this.commentOnce(
          target,
          `${resolution}\n\n${group.exposure_ids.length - open.length} of ${group.exposure_ids.length} exposures of this ticket are closed; it stays open until ${open.length === 1 ? 'the other one is' : `the other ${open.length} are`}:\n${open.join('\n')}`,
          // Hashed: the resolution and the list can be long, the ledger's key is not.
          `progress:${commentMarker(`${resolution}\n${open.join(',')}`)}`,
        );
    }
  }

  /** Reopen the ref's ticket, and the campaign's other tickets that have an exposure open again. */
  async reopen(ref: TicketRef, reason: string): Promise<void> {
    const related = await this.relatedGroups(ref);
    const targets: TicketRef[] = [];
    for (const group of related)
      if (
        group.self ||
        (group.last_status === 'done' && (await this.openExposures(group.exposure_ids)).length > 0)
      )
        targets.push(this.refOf(ref, group));
    for (const target of targets.length ? targets : [ref])
      await this.moveTo(target, 'open', () => this.remote.reopen(target, reason), { reason });
  }

  async status(ref: TicketRef): Promise<TicketStatusCategory> {
    return await this.remote.status(ref);
  }

  /**
   * Our own close/reopen: the ledger's status is set first (committed), so the webhook or poll that
   * echoes the change back is not taken for a human's; restored if the remote call fails. Moves of
   * one ticket take turns (the shards of a campaign close it together), so the second one sees the
   * first one's result instead of asking for a transition the ticket no longer offers.
   */
  private async moveTo(
    ref: TicketRef,
    to: TicketStatusCategory,
    act: () => Promise<void>,
    data: Record<string, unknown>,
  ): Promise<void> {
    await inTransaction(this.pool, async (lock) => {
      await lock.query(moveLockSql, [moveLockName(ref.system, ref.key)]);
      await this.moveNow(ref, to, act, data);
    });
  }

  private async moveNow(
    ref: TicketRef,
    to: TicketStatusCategory,
    act: () => Promise<void>,
    data: Record<string, unknown>,
  ): Promise<void> {
    // Where the move lands per the status mapping (a reopen may land "in progress").
    const landing = this.remote.landingCategory(to === 'done' ? 'done' : 'open');
    const { rows } = await this.pool.query<{
      previous: TicketStatusCategory | null;
      exposure_ids: string[];
      group_key: string;
    }>(
      `update tickets t set last_status = $3, status_changed_at = now()
         from (select system, group_key, last_status as previous from tickets
                where system = $1 and ticket_key = $2 for update) p
        where t.system = p.system and t.group_key = p.group_key
        returning p.previous, t.exposure_ids, t.group_key`,
      [ref.system, ref.key, landing],
    );
    try {
      await act();
      // The move's time is when it is done remotely: a poll that read the ticket before is stale.
      await this.pool.query(
        'update tickets set status_changed_at = now() where system = $1 and ticket_key = $2',
        [ref.system, ref.key],
      );
    } catch (err) {
      if (rows[0] && rows[0].previous !== landing)
        await this.pool.query(`update tickets set last_status = $3 where system = $1 and ticket_key = $2`, [
          ref.system,
          ref.key,
          rows[0].previous,
        ]);
      throw err;
    }
    const row = rows[0];
    if (row) {
      const type = to === 'done' ? 'ticket.closed' : 'ticket.reopened';
      await recordTicketEvents(
        this.pool,
        type,
        row.exposure_ids,
        `${type}:${ref.system}:${ref.key}:${commentMarker(JSON.stringify(data))}`,
        { group: row.group_key, system: ref.system, key: ref.key, ...eventData(data) },
      );
    }
  }
}
