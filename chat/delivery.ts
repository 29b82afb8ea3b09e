// Chat messages as stored models: publishing a notification writes its model for each conversation
// and syncs it through the outbox; a decision taken from any message (Slack, Teams, dashboard)
// updates the model of every copy of that notification and syncs them all, so the owner's DM, the
// scope channel and a Teams card all show the new state and who acted.
import type { Logger } from 'pino';
import type { Pool } from '../runtime/pool.ts';
import type { OwnerNotification } from '../domain/ports.ts';
import type { ExposureState } from '../domain/exposure.ts';
import { isAlert, newModel, type AlertModel, type ChatAction, type ChatMessageModel } from './messages.ts';
import type { Delivery, Outbox, Transport } from './outbox.ts';
import { Batcher } from './batch.ts';

export interface StoredMessage {
  transport: Transport;
  conversation: string;
  key: string;
  ref?: string;
  model: ChatMessageModel;
}

interface MessageRow {
  transport: Transport;
  conversation: string;
  notification_key: string;
  message_ref: string | null;
  model: ChatMessageModel;
}

const toStored = (r: MessageRow): StoredMessage => ({
  transport: r.transport,
  conversation: r.conversation,
  key: r.notification_key,
  ref: r.message_ref ?? undefined,
  model: r.model,
});

export class ChatDelivery {
  constructor(
    private readonly pool: Pool,
    readonly outbox: Outbox,
    private readonly log: Logger,
  ) {}

  /**
   * Post (or update in place) one notification in one conversation and wait for it. A later call
   * with the same key keeps the decisions already shown on the message.
   */
  async publish(
    transport: Transport,
    conversation: string,
    notification: OwnerNotification,
  ): Promise<Delivery> {
    const model = newModel(notification);
    await this.pool.query(
      `insert into chat_messages (transport, conversation, notification_key, model)
       values ($1, $2, $3, $4::jsonb)
       on conflict (transport, conversation, notification_key) do update
         set model = jsonb_set(excluded.model, '{actions}', coalesce(chat_messages.model -> 'actions', '[]'::jsonb)),
             updated_at = now()`,
      [transport, conversation, notification.key, JSON.stringify(model)],
    );
    return await this.outbox.sync({ transport, conversation, key: notification.key });
  }

  /** Post (or update in place) a scope alert in one conversation and wait for it. */
  async publishAlert(
    transport: Transport,
    conversation: string,
    key: string,
    model: AlertModel,
  ): Promise<Delivery> {
    await this.pool.query(
      `insert into chat_messages (transport, conversation, notification_key, model)
       values ($1, $2, $3, $4::jsonb)
       on conflict (transport, conversation, notification_key) do update set model = excluded.model, updated_at = now()`,
      [transport, conversation, key, JSON.stringify(model)],
    );
    return await this.outbox.sync({ transport, conversation, key });
  }

  /** Messages looked up by Slack reference, one statement per burst of clicks. */
  private readonly slackLookups = new Batcher<string, StoredMessage | undefined>(async (refs) => {
    const { rows } = await this.pool.query<MessageRow>(
      `select transport, conversation, notification_key, message_ref, model from chat_messages
        where transport = 'slack' and message_ref = any($1::text[])`,
      [[...new Set(refs)]],
    );
    const byRef = new Map(rows.map((r) => [r.message_ref, r]));
    return refs.map((ref) => {
      const r = byRef.get(ref);
      return r && !isAlert(r.model) ? toStored(r) : undefined;
    });
  });

  /** The stored message a Slack click came from ("<channel>/<ts>"). */
  async bySlackRef(ref: string): Promise<StoredMessage | undefined> {
    return await this.slackLookups.call(ref);
  }

  async byKey(transport: Transport, conversation: string, key: string): Promise<StoredMessage | undefined> {
    const { rows } = await this.pool.query<MessageRow>(
      `select transport, conversation, notification_key, message_ref, model from chat_messages
        where transport = $1 and conversation = $2 and notification_key = $3`,
      [transport, conversation, key],
    );
    return rows[0] && !isAlert(rows[0].model) ? toStored(rows[0]) : undefined;
  }

  /**
   * A decision taken elsewhere (the dashboard, the CLI) on exposures some chat messages show: each
   * such message records it, as if it had been taken on the message.
   */
  async recordDecisionOn(
    action: ChatAction,
    outcomes: { exposureId: string; state: ExposureState }[],
  ): Promise<void> {
    if (outcomes.length === 0) return;
    const { rows } = await this.pool.query<{ notification_key: string; ids: string[] }>(
      `select m.notification_key, array_agg(distinct e ->> 'id') as ids
         from chat_messages m, jsonb_array_elements(m.model -> 'notification' -> 'unit' -> 'exposures') e
        where e ->> 'id' = any($1::text[])
        group by m.notification_key`,
      [outcomes.map((o) => o.exposureId)],
    );
    for (const { notification_key, ids } of rows) {
      const shown = outcomes.filter((o) => ids.includes(o.exposureId));
      await this.recordDecision(
        notification_key,
        { ...action, exposureIds: shown.map((o) => o.exposureId) },
        shown,
      );
    }
  }

  /**
   * A patch plan answered elsewhere (the dashboard): every chat copy of its approval request records
   * the answer, as if it had been given on the message.
   */
  async recordPatchDecisionOn(rolloutId: string, action: ChatAction): Promise<void> {
    const { rows } = await this.pool.query<{ notification_key: string }>(
      `select distinct notification_key from chat_messages
        where model -> 'notification' ->> 'patchRolloutId' = $1 or notification_key like '%:patch-approval:' || $1`,
      [rolloutId],
    );
    for (const { notification_key } of rows) await this.recordDecision(notification_key, action, []);
  }

  /**
   * Record a decision on every copy of the notification and sync them all. The action is appended
   * and the states merged inside PostgreSQL, so concurrent clicks on one message all show, without
   * reading the model out and writing it back; the decisions of a burst of clicks share one
   * statement. Returns the updated copies (their models only when `withModels`: the Teams invoke
   * answers with the card).
   */
  async recordDecision(
    key: string,
    action: ChatAction,
    outcomes: { exposureId: string; state: ExposureState }[],
    withModels = false,
  ): Promise<(Omit<StoredMessage, 'model'> & { model?: ChatMessageModel })[]> {
    const states = Object.fromEntries(outcomes.map((o) => [o.exposureId, o.state]));
    const rows = await this.decisionWrites.call({ key, action, states });
    const updated = rows.map((r) => ({ ...toStored(r), model: withModels ? r.model : undefined }));
    for (const m of updated)
      if (this.outbox.transport(m.transport))
        this.outbox.syncLater({ transport: m.transport, conversation: m.conversation, key });
      else this.log.debug({ transport: m.transport }, 'no transport configured; message left as is');
    return updated;
  }

  private readonly decisionWrites = new Batcher<
    { key: string; action: ChatAction; states: Record<string, ExposureState> },
    MessageRow[]
  >(async (items) => {
    // A row is updated once per statement: decisions on the same message are folded first, in order.
    const byKey = new Map<string, { actions: ChatAction[]; states: Record<string, ExposureState> }>();
    for (const it of items) {
      const k = byKey.get(it.key) ?? { actions: [], states: {} };
      k.actions.push(it.action);
      Object.assign(k.states, it.states);
      byKey.set(it.key, k);
    }
    const { rows } = await this.pool.query<MessageRow>(
      `update chat_messages m
          set model = jsonb_set(jsonb_set(m.model, '{actions}', coalesce(m.model -> 'actions', '[]'::jsonb) || b.actions),
                                '{states}', coalesce(m.model -> 'states', '{}'::jsonb) || b.states),
              updated_at = now()
         from jsonb_to_recordset($1::jsonb) as b(key text, actions jsonb, states jsonb)
        where m.notification_key = b.key
        returning m.transport, m.conversation, m.notification_key, m.message_ref, m.model`,
      [JSON.stringify([...byKey].map(([key, k]) => ({ key, actions: k.actions, states: k.states })))],
    );
    return items.map((it) => rows.filter((r) => r.notification_key === it.key));
  });
}
