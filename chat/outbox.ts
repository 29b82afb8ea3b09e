// The chat send queue. Every message the bots post or edit goes through here so that:
// - sends stay within each platform's pace (Slack about one message per second per channel, Teams
//   seven per second per conversation): the next free slot per conversation lives in PostgreSQL,
//   so the pace holds across every process of a deployment;
// - a 429 is honoured: the conversation's next slot moves to now + Retry-After and the send waits;
// - a message is one row of chat_messages (transport, conversation, notification key) holding what
//   it should show; a send renders that model at send time, posts the message the first time and
//   edits it in place afterwards. Pending sends of the same message coalesce, so a burst of changes
//   (fifty clicks, a retried activity) becomes one edit showing the latest state, never a flood;
// - a message whose notification names a thread (a reminder, an escalation to the owner) is posted
//   as a reply to the message stored under that key in the same conversation, when there is one.
import type { Logger } from 'pino';
import type { Pool } from '../runtime/pool.ts';
import { Batcher } from './batch.ts';
import type { RenderContext } from './messages.ts';

export type Transport = 'slack' | 'teams';

/** The platform side of a send. Implementations classify failures with the errors below. */
export interface ChatTransport {
  readonly name: Transport;
  /** The platform payload (Block Kit, Adaptive Card activity) for a stored message model. */
  render(model: unknown, ctx: RenderContext): unknown;
  /**
   * Post a new message; returns its reference (Slack "<channel>/<ts>", Teams activity id). With
   * `threadRef` (the reference of a message in the same conversation) it is posted as a reply in
   * that message's thread; MessageGoneError when that message no longer exists.
   */
  post(conversation: string, payload: unknown, threadRef?: string): Promise<string>;
  /** Replace a message's content. Throws MessageGoneError when it no longer exists. */
  update(conversation: string, ref: string, payload: unknown): Promise<void>;
  /** A message only one person sees (Slack); the payload names the user. */
  ephemeral(conversation: string, payload: unknown): Promise<void>;
}

/** The platform asked us to slow down. */
export class RateLimitedError extends Error {
  constructor(readonly retryAfterMs: number) {
    super(`rate limited; retry after ${retryAfterMs} ms`);
    this.name = 'RateLimitedError';
  }
}

/** Sending again will not help (channel not found, not in channel, invalid blocks…). */
export class PermanentSendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentSendError';
  }
}

/** The message to update was deleted: post a new one instead. */
export class MessageGoneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MessageGoneError';
  }
}

export interface MessageAddress {
  transport: Transport;
  conversation: string;
  /** The notification key: one message per key per conversation. */
  key: string;
}

export type Delivery =
  { ok: true; ref?: string; posted: boolean } | { ok: false; error: string; permanent: boolean };

export interface OutboxOptions {
  /** Minimum spacing of sends per conversation, per transport. */
  intervalMs?: Partial<Record<Transport, number>>;
  /** Spacing of Slack ephemerals per channel (they are not channel messages). */
  ephemeralIntervalMs?: number;
  /** Transient failures (network, 5xx) tried this many times before a send is marked failed. */
  maxAttempts?: number;
  /** A "sending" row older than this is taken to be abandoned by a process that died. */
  staleAfterMs?: number;
  /** How long a caller waits for a send another caller or process is making. */
  waitTimeoutMs?: number;
  /** How long a reply waits for its original's first send to finish before posting on its own. */
  parentWaitMs?: number;
}

interface OutboxRow {
  id: number;
  transport: Transport;
  conversation: string;
  notification_key: string;
  kind: 'message' | 'ephemeral';
  payload: unknown;
  attempts: number;
  /** The message's stored model and reference (kind "message"), read as the send is claimed. */
  model: unknown;
  message_ref: string | null;
  has_message: boolean;
  /** The original the message was posted under as a reply, once posted. */
  thread_ref: string | null;
  /** The notification key of the original it should be posted under, if any. */
  parent_key: string | null;
  /** That original's reference in this conversation, when it was posted here. */
  parent_ref: string | null;
  /** Whether that original exists in this conversation (posted or still waiting to be). */
  parent_stored: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Outbox {
  private readonly transports = new Map<Transport, ChatTransport>();
  private readonly interval: Record<Transport, number>;
  private readonly ephemeralInterval: number;
  private readonly maxAttempts: number;
  private readonly staleAfterMs: number;
  private readonly waitTimeoutMs: number;
  private readonly parentWaitMs: number;
  private sweeper?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly pool: Pool,
    private readonly log: Logger,
    opts: OutboxOptions = {},
  ) {
    this.interval = {
      slack: opts.intervalMs?.slack ?? 1_000,
      teams: opts.intervalMs?.teams ?? Math.ceil(1_000 / 7),
    };
    this.ephemeralInterval = opts.ephemeralIntervalMs ?? 100;
    this.maxAttempts = opts.maxAttempts ?? 5;
    this.staleAfterMs = opts.staleAfterMs ?? 120_000;
    this.waitTimeoutMs = opts.waitTimeoutMs ?? 120_000;
    this.parentWaitMs = opts.parentWaitMs ?? 10_000;
  }

  register(transport: ChatTransport): this {
    this.transports.set(transport.name, transport);
    return this;
  }

  transport(name: Transport): ChatTransport | undefined {
    return this.transports.get(name);
  }

  /** Make the message show its current model (chat_messages) and wait until it does. */
  async sync(address: MessageAddress): Promise<Delivery> {
    return await this.deliver(
      await this.enqueue(address.transport, address.conversation, address.key, 'message', {}),
    );
  }

  /** Queue a sync without waiting for it (the click path: the ack is long gone, the sweeper retries). */
  syncLater(address: MessageAddress): void {
    this.sync(address).catch((err: unknown) =>
      this.log.warn({ err, key: address.key }, 'message sync failed'),
    );
  }

  /** A message only `payload`'s user sees; not coalesced with anything. */
  async ephemeral(
    transport: Transport,
    conversation: string,
    payload: unknown,
    key: string,
  ): Promise<Delivery> {
    return await this.deliver(await this.enqueue(transport, conversation, key, 'ephemeral', payload));
  }

  private async enqueue(
    transport: Transport,
    conversation: string,
    key: string,
    kind: 'message' | 'ephemeral',
    payload: unknown,
  ): Promise<number> {
    return await this.enqueues.call({ transport, conversation, key, kind, payload });
  }

  /** Sends queued in one statement per burst (bots/batch.ts). */
  private readonly enqueues = new Batcher<
    {
      transport: Transport;
      conversation: string;
      key: string;
      kind: 'message' | 'ephemeral';
      payload: unknown;
    },
    number
  >(async (items) => {
    // One pending row per message: copies in the same burst fold into one (the last payload wins,
    // as it would have one statement later), since a statement may touch a row only once.
    const address = (i: (typeof items)[number]) => JSON.stringify([i.transport, i.conversation, i.key]);
    const last = new Map(items.map((i) => [address(i), i]));
    const unique = [...last.values()];
    const { rows } = await this.pool.query<{
      id: number;
      transport: Transport;
      conversation: string;
      notification_key: string;
    }>(
      `insert into chat_outbox (transport, conversation, notification_key, kind, payload)
       select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[])
       on conflict (transport, conversation, notification_key) where status = 'pending'
       do update set payload = excluded.payload
       returning id, transport, conversation, notification_key`,
      [
        unique.map((i) => i.transport),
        unique.map((i) => i.conversation),
        unique.map((i) => i.key),
        unique.map((i) => i.kind),
        unique.map((i) => JSON.stringify(i.payload)),
      ],
    );
    const ids = new Map(
      rows.map((r) => [JSON.stringify([r.transport, r.conversation, r.notification_key]), r.id]),
    );
    return items.map((i) => ids.get(address(i))!);
  });

  /**
   * Resume sends a dead process left behind (pending with nobody delivering, or "sending" for too
   * long), every `everyMs`. Started with the bots; stopped with them.
   */
  startSweeper(everyMs = 10_000): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => {
      this.sweep().catch((err: unknown) => this.log.warn({ err }, 'outbox sweep failed'));
    }, everyMs);
    this.sweeper.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /** Deliver what was left pending or abandoned; returns how many sends it finished. */
  async sweep(olderThanMs = 10_000): Promise<number> {
    // An abandoned send is closed and queued again; a newer pending send of the same message, if
    // any, already stands for it.
    const { rows: stale } = await this.pool.query<{ id: number }>(
      `update chat_outbox set status = 'failed', last_error = 'abandoned by a stopped process', finished_at = clock_timestamp()
        where status = 'sending' and claimed_at < clock_timestamp() - make_interval(secs => $1::float8 / 1000)
       returning id`,
      [this.staleAfterMs],
    );
    for (const { id } of stale) await this.requeue(id);
    const { rows: pending } = await this.pool.query<{ id: number }>(
      `select id from chat_outbox
        where status = 'pending' and created_at < clock_timestamp() - make_interval(secs => $1::float8 / 1000)
        order by id limit 500`,
      [olderThanMs],
    );
    let done = 0;
    for (const { id } of pending) {
      if (this.stopped) break;
      const d = await this.deliver(id);
      if (d.ok) done++;
    }
    return done;
  }

  private async requeue(id: number): Promise<void> {
    await this.pool.query(
      `insert into chat_outbox (transport, conversation, notification_key, kind, payload)
       select transport, conversation, notification_key, kind, payload from chat_outbox where id = $1
       on conflict (transport, conversation, notification_key) where status = 'pending' do nothing`,
      [id],
    );
  }

  private async deliver(id: number): Promise<Delivery> {
    const deadline = Date.now() + this.waitTimeoutMs;
    for (let polls = 0; ; polls++) {
      const row = await this.claim(id);
      if (row) return await this.sendClaimed(row);
      const { rows } = await this.pool.query<{
        status: string;
        message_ref: string | null;
        last_error: string | null;
      }>('select status, message_ref, last_error from chat_outbox where id = $1', [id]);
      const s = rows[0];
      if (!s) return { ok: false, error: `outbox row ${id} vanished`, permanent: true };
      if (s.status === 'sent') return { ok: true, ref: s.message_ref ?? undefined, posted: false };
      if (s.status === 'failed') return { ok: false, error: s.last_error ?? 'send failed', permanent: true };
      // Another caller is sending this row, or an earlier send of the same message is in flight.
      if (Date.now() > deadline)
        return {
          ok: false,
          error: `send ${id} still in progress after ${this.waitTimeoutMs} ms`,
          permanent: false,
        };
      await sleep(Math.min(200, 10 * 2 ** Math.min(polls, 4)));
    }
  }

  /**
   * Take a pending row, unless an earlier send of the same message is still in flight: that one
   * must record the message reference first, or this one would post a second message.
   */
  private async claim(id: number): Promise<OutboxRow | undefined> {
    const { rows } = await this.pool.query<OutboxRow>(
      `with claimed as (
         update chat_outbox o set status = 'sending', claimed_at = clock_timestamp(), attempts = attempts + 1
          where o.id = $1 and o.status = 'pending'
            and not exists (
              select 1 from chat_outbox s
               where s.transport = o.transport and s.conversation = o.conversation
                 and s.notification_key = o.notification_key and s.status = 'sending' and s.id <> o.id
                 and s.claimed_at > clock_timestamp() - make_interval(secs => $2::float8 / 1000))
         returning o.id, o.transport, o.conversation, o.notification_key, o.kind, o.payload, o.attempts)
       select c.*, m.model, m.message_ref, m.notification_key is not null as has_message, m.thread_ref,
              m.model -> 'notification' ->> 'thread' as parent_key, p.message_ref as parent_ref,
              p.notification_key is not null as parent_stored
         from claimed c
         left join chat_messages m
           on c.kind = 'message' and m.transport = c.transport and m.conversation = c.conversation
          and m.notification_key = c.notification_key
         left join chat_messages p
           on p.transport = c.transport and p.conversation = c.conversation
          and p.notification_key = m.model -> 'notification' ->> 'thread' and p.notification_key <> c.notification_key`,
      [id, this.staleAfterMs],
    );
    return rows[0];
  }

  private async sendClaimed(row: OutboxRow): Promise<Delivery> {
    const transport = this.transports.get(row.transport);
    if (!transport) return await this.fail(row, `no ${row.transport} transport is configured`);
    let transientFailures = 0;
    for (;;) {
      if (this.stopped) {
        await this.release(row, 'the outbox stopped before sending');
        return { ok: false, error: 'the outbox is stopping', permanent: false };
      }
      await this.waitForSlot(row);
      try {
        if (row.kind === 'ephemeral') {
          await transport.ephemeral(row.conversation, row.payload);
          await this.finish(row, undefined);
          return { ok: true, posted: true };
        }
        // The model as it was when the send was claimed: a change after that queues the next send.
        if (!row.has_message)
          return await this.fail(row, 'no message model stored for this key and conversation');
        if (row.message_ref) {
          try {
            const payload = transport.render(row.model, { inThread: row.thread_ref !== null });
            await transport.update(row.conversation, row.message_ref, payload);
            await this.finish(row, row.message_ref);
            return { ok: true, ref: row.message_ref, posted: false };
          } catch (err) {
            if (!(err instanceof MessageGoneError)) throw err;
            this.log.info(
              { conversation: row.conversation, key: row.notification_key },
              'message gone; posting anew',
            );
          }
        }
        const threadRef = await this.threadOf(row);
        if (threadRef) {
          try {
            const payload = transport.render(row.model, { inThread: true });
            const ref = await transport.post(row.conversation, payload, threadRef);
            await this.finish(row, ref, true, threadRef);
            return { ok: true, ref, posted: true };
          } catch (err) {
            if (!(err instanceof MessageGoneError)) throw err;
            this.log.info(
              { conversation: row.conversation, key: row.notification_key },
              'original gone; posting on its own',
            );
          }
        }
        const ref = await transport.post(row.conversation, transport.render(row.model, { inThread: false }));
        await this.finish(row, ref, true);
        return { ok: true, ref, posted: true };
      } catch (err) {
        if (err instanceof RateLimitedError) {
          await this.pushSlot(row, err.retryAfterMs);
          this.log.info(
            { transport: row.transport, conversation: row.conversation, retryAfterMs: err.retryAfterMs },
            'rate limited; waiting',
          );
          continue;
        }
        const message = err instanceof Error ? err.message : String(err);
        if (err instanceof PermanentSendError) return await this.fail(row, message);
        transientFailures++;
        if (row.attempts + transientFailures - 1 >= this.maxAttempts)
          return await this.fail(row, `gave up after ${this.maxAttempts} attempts: ${message}`);
        this.log.warn({ err: message, conversation: row.conversation }, 'send failed; retrying');
        await sleep(Math.min(30_000, 250 * 2 ** transientFailures));
      }
    }
  }

  /**
   * The reference of the original a new message should reply to: the message stored under its
   * notification's `thread` key in the same conversation. An original still waiting for its own
   * send (the lifecycle sends it just before) is waited for a little; none at all: no thread.
   */
  private async threadOf(row: OutboxRow): Promise<string | undefined> {
    if (!row.parent_key || !row.parent_stored) return undefined;
    if (row.parent_ref) return row.parent_ref;
    const deadline = Date.now() + this.parentWaitMs;
    for (let polls = 0; Date.now() < deadline && !this.stopped; polls++) {
      await sleep(Math.min(500, 20 * 2 ** polls));
      const { rows } = await this.pool.query<{ message_ref: string | null }>(
        `select message_ref from chat_messages where transport = $1 and conversation = $2 and notification_key = $3`,
        [row.transport, row.conversation, row.parent_key],
      );
      if (rows[0]?.message_ref) return rows[0].message_ref;
      if (!rows[0]) return undefined;
    }
    return undefined;
  }

  private lane(row: OutboxRow): { lane: string; spacingMs: number } {
    return row.kind === 'ephemeral'
      ? { lane: `ephemeral:${row.conversation}`, spacingMs: this.ephemeralInterval }
      : { lane: row.conversation, spacingMs: this.interval[row.transport] };
  }

  /** Reserve this conversation's next free slot (shared by every process) and wait for it. */
  private async waitForSlot(row: OutboxRow): Promise<void> {
    const { lane, spacingMs } = this.lane(row);
    if (spacingMs <= 0) return;
    const { rows } = await this.pool.query<{ wait_ms: number }>(
      `insert into chat_send_slots as s (transport, conversation, next_at)
       values ($1, $2, clock_timestamp() + make_interval(secs => $3::float8 / 1000))
       on conflict (transport, conversation) do update
         set next_at = greatest(s.next_at, clock_timestamp()) + make_interval(secs => $3::float8 / 1000)
       returning greatest(0, extract(epoch from (s.next_at - clock_timestamp())) * 1000 - $3::float8)::float8 as wait_ms`,
      [row.transport, lane, spacingMs],
    );
    const waitMs = rows[0]?.wait_ms ?? 0;
    if (waitMs > 0) await sleep(waitMs);
  }

  private async pushSlot(row: OutboxRow, retryAfterMs: number): Promise<void> {
    const { lane } = this.lane(row);
    await this.pool.query(
      `update chat_send_slots set next_at = greatest(next_at, clock_timestamp() + make_interval(secs => $3::float8 / 1000))
        where transport = $1 and conversation = $2`,
      [row.transport, lane, retryAfterMs],
    );
  }

  /**
   * Mark the send done; a new post's reference (and the original it replied to) goes on its message
   * in the same statement.
   */
  private async finish(
    row: OutboxRow,
    ref: string | undefined,
    posted = false,
    threadRef?: string,
  ): Promise<void> {
    await this.pool.query(
      `with done as (
         update chat_outbox set status = 'sent', message_ref = $2, finished_at = clock_timestamp(), last_error = null
          where id = $1 returning transport, conversation, notification_key)
       update chat_messages m set message_ref = $2, thread_ref = $4, posted_at = now(), updated_at = now()
         from done d
        where $3 and m.transport = d.transport and m.conversation = d.conversation and m.notification_key = d.notification_key`,
      [row.id, ref ?? null, posted, threadRef ?? null],
    );
  }

  private async fail(row: OutboxRow, error: string): Promise<Delivery> {
    this.log.warn(
      { transport: row.transport, conversation: row.conversation, key: row.notification_key, error },
      'send failed',
    );
    await this.pool.query(
      `update chat_outbox set status = 'failed', last_error = $2, finished_at = clock_timestamp() where id = $1`,
      [row.id, error],
    );
    return { ok: false, error, permanent: true };
  }

  private async release(row: OutboxRow, why: string): Promise<void> {
    await this.pool.query(
      `update chat_outbox set status = 'failed', last_error = $2, finished_at = clock_timestamp() where id = $1`,
      [row.id, why],
    );
    await this.requeue(row.id);
  }
}
