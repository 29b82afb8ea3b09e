// Chat messages as stored models: publishing a notification writes its model for each conversation
// and syncs it through the outbox; a decision taken from any message (Slack, Teams, dashboard)
// updates the model of every copy of that notification and syncs them all, so the owner's DM, the
// scope channel and a Teams card all show the new state and who acted.
import type { Logger } from 'pino';
import type { Pool } from '../db/pool.ts';
import type { OwnerNotification } from '../activities/ports.ts';
import type { ExposureState } from '../domain/exposure.ts';
import { isAlert, newModel, type AlertModel, type ChatAction, type ChatMessageModel } from './messages.ts';
import type { Delivery, Outbox, Transport } from './outbox.ts';

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

  /** The stored message a Slack click came from ("<channel>/<ts>"). */
  async bySlackRef(ref: string): Promise<StoredMessage | undefined> {
    const { rows } = await this.pool.query<MessageRow>(
      `select transport, conversation, notification_key, message_ref, model from chat_messages
        where transport = 'slack' and message_ref = $1`,
      [ref],
    );
    return rows[0] && !isAlert(rows[0].model) ? toStored(rows[0]) : undefined;
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
   * Record a decision on every copy of the notification and sync them all. One statement per call:
   * the action is appended and the states merged inside PostgreSQL, so concurrent clicks on one
   * message all show, without reading the model out and writing it back. Returns the updated
   * copies (their models only when `withModels`: the Teams invoke answers with the card).
   */
  async recordDecision(
    key: string,
    action: ChatAction,
    outcomes: { exposureId: string; state: ExposureState }[],
    withModels = false,
  ): Promise<(Omit<StoredMessage, 'model'> & { model?: ChatMessageModel })[]> {
    const states = Object.fromEntries(outcomes.map((o) => [o.exposureId, o.state]));
    const { rows } = await this.pool.query<MessageRow>(
      `update chat_messages
          set model = jsonb_set(jsonb_set(model, '{actions}', coalesce(model -> 'actions', '[]'::jsonb) || jsonb_build_array($2::jsonb)),
                                '{states}', coalesce(model -> 'states', '{}'::jsonb) || $3::jsonb),
              updated_at = now()
        where notification_key = $1
        returning transport, conversation, notification_key, message_ref, case when $4 then model end as model`,
      [key, JSON.stringify(action), JSON.stringify(states), withModels],
    );
    const updated = rows.map((r) => ({ ...toStored(r), model: r.model ?? undefined }));
    for (const m of updated)
      if (this.outbox.transport(m.transport))
        this.outbox.syncLater({ transport: m.transport, conversation: m.conversation, key });
      else this.log.debug({ transport: m.transport }, 'no transport configured; message left as is');
    return updated;
  }
}
