// Chat messages as stored models: publishing a notification or a digest writes its model for each
// conversation and syncs it through the outbox; a decision on a campaign, wherever it was taken
// (a Slack message, a Teams card, a daily queue, the dashboard), re-reads the campaign and updates
// every message showing it in place: the campaign's original in each conversation (its header,
// what is left, only the buttons still valid), its copies in scope channels, and the digests that
// list it. Replies in the original's thread are left as they were said.
import type { Logger } from 'pino';
import type { Pool } from '../runtime/pool.ts';
import type { CampaignSummary, DigestNotification, OwnerNotification } from '../domain/ports.ts';
import type { ExposureState } from '../domain/exposure.ts';
import { campaignSummary } from '../lifecycle/campaigns.ts';
import { campaignMessageKey, decisionRequestText, MESSAGE_EXPOSURES } from '../lifecycle/notify.ts';
import {
  isAlert,
  newModel,
  type AlertModel,
  type ChatAction,
  type ChatMessageModel,
  type DigestModel,
  type StoredModel,
} from './messages.ts';
import type { Delivery, Outbox, Transport } from './outbox.ts';
import { Batcher } from './batch.ts';

/** A campaign's message or a digest, as stored for one conversation. */
export interface StoredMessage<M extends ChatMessageModel | DigestModel = ChatMessageModel | DigestModel> {
  transport: Transport;
  conversation: string;
  key: string;
  ref?: string;
  /** The original it was posted under as a reply. */
  threadRef?: string;
  model: M;
}

interface MessageRow {
  transport: Transport;
  conversation: string;
  notification_key: string;
  message_ref: string | null;
  thread_ref: string | null;
  model: StoredModel;
}

const columns = 'transport, conversation, notification_key, message_ref, thread_ref, model';

function toStored(r: MessageRow & { model: ChatMessageModel | DigestModel }): StoredMessage {
  return {
    transport: r.transport,
    conversation: r.conversation,
    key: r.notification_key,
    ...(r.message_ref ? { ref: r.message_ref } : {}),
    ...(r.thread_ref ? { threadRef: r.thread_ref } : {}),
    model: r.model,
  };
}

const decisive = (r: MessageRow): r is MessageRow & { model: ChatMessageModel | DigestModel } =>
  !isAlert(r.model);

export type UpdatedMessage = Omit<StoredMessage, 'model'> & { model?: ChatMessageModel | DigestModel };

/** Exposures listed under each campaign of a digest. */
const DIGEST_EXPOSURES = 3;

export class ChatDelivery {
  constructor(
    private readonly pool: Pool,
    readonly outbox: Outbox,
    private readonly log: Logger,
  ) {}

  /**
   * Post (or update in place) one campaign notification in one conversation and wait for it. A
   * later call with the same key keeps the decisions already shown on the message.
   */
  async publish(
    transport: Transport,
    conversation: string,
    notification: OwnerNotification,
  ): Promise<Delivery> {
    await this.store(transport, conversation, notification.key, newModel(notification), [
      notification.campaign.id,
    ]);
    return await this.outbox.sync({ transport, conversation, key: notification.key });
  }

  /** Post (or update in place) a digest about many campaigns in one conversation and wait for it. */
  async publishDigest(
    transport: Transport,
    conversation: string,
    digest: DigestNotification,
  ): Promise<Delivery> {
    const model: DigestModel = { type: 'digest', digest, actions: [] };
    await this.store(
      transport,
      conversation,
      digest.key,
      model,
      digest.campaigns.map((c) => c.campaign.id),
    );
    return await this.outbox.sync({ transport, conversation, key: digest.key });
  }

  private async store(
    transport: Transport,
    conversation: string,
    key: string,
    model: ChatMessageModel | DigestModel,
    campaignIds: string[],
  ): Promise<void> {
    await this.pool.query(
      `insert into chat_messages (transport, conversation, notification_key, model, campaign_ids)
       values ($1, $2, $3, $4::jsonb, $5::text[])
       on conflict (transport, conversation, notification_key) do update
         set model = jsonb_set(excluded.model, '{actions}', coalesce(chat_messages.model -> 'actions', '[]'::jsonb)),
             campaign_ids = excluded.campaign_ids, updated_at = now()`,
      [transport, conversation, key, JSON.stringify(model), campaignIds],
    );
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
      `select ${columns} from chat_messages where transport = 'slack' and message_ref = any($1::text[])`,
      [[...new Set(refs)]],
    );
    const byRef = new Map(rows.map((r) => [r.message_ref, r]));
    return refs.map((ref) => {
      const r = byRef.get(ref);
      return r && decisive(r) ? toStored(r) : undefined;
    });
  });

  /** The stored message a Slack click came from ("<channel>/<ts>"). */
  async bySlackRef(ref: string): Promise<StoredMessage | undefined> {
    return await this.slackLookups.call(ref);
  }

  async byKey(transport: Transport, conversation: string, key: string): Promise<StoredMessage | undefined> {
    const { rows } = await this.pool.query<MessageRow>(
      `select ${columns} from chat_messages where transport = $1 and conversation = $2 and notification_key = $3`,
      [transport, conversation, key],
    );
    return rows[0] && decisive(rows[0]) ? toStored(rows[0]) : undefined;
  }

  /**
   * A decision taken elsewhere (the dashboard, the CLI) on some exposures: every message showing
   * their campaigns is brought up to date, as if it had been taken on the message.
   */
  async recordDecisionOn(action: ChatAction, exposureIds: string[]): Promise<void> {
    if (exposureIds.length === 0) return;
    const { rows } = await this.pool.query<{ campaign_id: string; ids: string[] }>(
      `select campaign_id, array_agg(id) as ids from exposures
        where id = any($1::text[]) and campaign_id is not null group by campaign_id`,
      [exposureIds],
    );
    for (const { campaign_id, ids } of rows)
      await this.recordCampaignDecision(campaign_id, {
        ...action,
        exposureIds: ids,
        campaignId: campaign_id,
      });
  }

  /**
   * A decision on (some exposures of) a campaign was taken: re-read the campaign and update, in
   * place, every message that shows it, recording who acted. One statement writes every copy: the
   * campaign's original and its copies (what is left, the decided exposures), the digests listing it
   * (their entry for it); replies in its thread and patch approval requests keep what they said, an
   * alert is not about it. Of two decisions at once, the summary read last wins (each message keeps
   * when its summary of the campaign was read), and both decisions' lines are shown. Returns the
   * updated copies (their models only when `withModels`: the Teams invoke answers with the card).
   */
  async recordCampaignDecision(
    campaignId: string,
    action: ChatAction,
    withModels = false,
  ): Promise<UpdatedMessage[]> {
    const readAt = Date.now();
    const summary = await campaignSummary(this.pool, campaignId, { limit: MESSAGE_EXPOSURES });
    if (!summary) return [];
    const shown = cut(summary, MESSAGE_EXPOSURES);
    const { rows } = await this.pool.query<MessageRow>(
      `update chat_messages m
          set model = jsonb_set(jsonb_set(
                case
                  when coalesce((m.model -> 'readAt' ->> $1)::float8, 0) > $2 then m.model
                  when m.model ->> 'type' = 'digest' then jsonb_set(m.model, '{digest,campaigns}', (
                    select coalesce(jsonb_agg(case when e -> 'campaign' ->> 'id' = $1
                                                   then jsonb_set(e, '{campaign}', jsonb_strip_nulls(jsonb_build_object('url', e -> 'campaign' -> 'url')) || $4::jsonb)
                                                   else e end order by i), '[]'::jsonb)
                      from jsonb_array_elements(m.model -> 'digest' -> 'campaigns') with ordinality as x(e, i)))
                  else jsonb_set(jsonb_set(jsonb_set(m.model,
                         '{notification,campaign}', jsonb_strip_nulls(jsonb_build_object('url', m.model -> 'notification' -> 'campaign' -> 'url')) || $3::jsonb),
                         '{states}', $5::jsonb),
                         '{notification,text}',
                         case when m.notification_key = $8 and m.model -> 'notification' ->> 'kind' = 'decision-request'
                              then to_jsonb($6::text) else m.model -> 'notification' -> 'text' end)
                end,
                '{actions}', coalesce(m.model -> 'actions', '[]'::jsonb) || jsonb_build_array($7::jsonb)),
                '{readAt}', coalesce(m.model -> 'readAt', '{}'::jsonb)
                  || jsonb_build_object($1::text, greatest($2, coalesce((m.model -> 'readAt' ->> $1)::float8, 0)))),
              updated_at = now()
        where m.campaign_ids @> array[$1::text]
          and coalesce(m.model ->> 'type', '') <> 'alert'
          and (m.model ->> 'type' = 'digest'
               or (m.thread_ref is null and m.model -> 'notification' -> 'campaign' ->> 'id' = $1
                   and not (m.model -> 'notification' ? 'patchRolloutId')
                   and m.notification_key not like '%:patch-approval:%'))
        returning m.transport, m.conversation, m.notification_key, m.message_ref, m.thread_ref, m.model`,
      [
        campaignId,
        readAt,
        JSON.stringify(shown),
        JSON.stringify(cut(summary, DIGEST_EXPOSURES)),
        JSON.stringify(Object.fromEntries(shown.exposures.map((e) => [e.id, e.state]))),
        decisionRequestText(shown, 'updated'),
        JSON.stringify({ ...action, campaignId }),
        campaignMessageKey(campaignId),
      ],
    );
    const updated = rows
      .filter(decisive)
      .map((r) => ({ ...toStored(r), model: withModels ? r.model : undefined }));
    for (const m of updated) this.syncLater(m);
    return updated;
  }

  private syncLater(m: { transport: Transport; conversation: string; key: string }): void {
    if (this.outbox.transport(m.transport))
      this.outbox.syncLater({ transport: m.transport, conversation: m.conversation, key: m.key });
    else this.log.debug({ transport: m.transport }, 'no transport configured; message left as is');
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
   * Record a decision on every copy of one notification and sync them all (a patch plan's answer).
   * The action is appended and the states merged inside PostgreSQL, so concurrent clicks on one
   * message all show, without reading the model out and writing it back; the decisions of a burst
   * of clicks share one statement. Returns the updated copies (their models only when `withModels`).
   */
  async recordDecision(
    key: string,
    action: ChatAction,
    outcomes: { exposureId: string; state: ExposureState }[],
    withModels = false,
  ): Promise<UpdatedMessage[]> {
    const states = Object.fromEntries(outcomes.map((o) => [o.exposureId, o.state]));
    const rows = await this.decisionWrites.call({ key, action, states });
    const updated = rows
      .filter(decisive)
      .map((r) => ({ ...toStored(r), model: withModels ? r.model : undefined }));
    for (const m of updated) this.syncLater(m);
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
        returning m.transport, m.conversation, m.notification_key, m.message_ref, m.thread_ref, m.model`,
      [JSON.stringify([...byKey].map(([key, k]) => ({ key, actions: k.actions, states: k.states })))],
    );
    return items.map((it) => rows.filter((r) => r.notification_key === it.key));
  });
}

/** The summary with at most `limit` exposures listed (the rest counted in `more`). */
function cut(summary: CampaignSummary, limit: number): CampaignSummary {
  const listed = summary.exposures.slice(0, limit);
  const more = (summary.more ?? 0) + summary.exposures.length - listed.length;
  const { more: _more, ...rest } = summary;
  return { ...rest, exposures: listed, ...(more > 0 ? { more } : {}) };
}
