// Where the Teams bot may write proactively. Teams gives a bot a conversation (and the regional
// service URL to reach it) only through the activities it sends: installation, messages, card
// actions. Each one is remembered here (teams_conversations), per person for personal chats and
// per conversation for channels, so notifications and escalations can be sent later.
import type { Pool } from '../../runtime/pool.ts';
import type { TeamsConfig } from './config.ts';

export interface ConversationReference {
  conversationId: string;
  serviceUrl: string;
  tenantId?: string;
  botId?: string;
  userId?: string;
}

/** The fields of an inbound activity a reference is built from. */
export interface InboundActivityRef {
  serviceUrl?: string;
  conversation?: { id?: string; conversationType?: unknown; tenantId?: string };
  from?: { id?: string; aadObjectId?: string };
  recipient?: { id?: string };
  channelData?: { tenant?: { id?: string } };
}

export class TeamsConversations {
  constructor(
    private readonly pool: Pool,
    private readonly config: TeamsConfig,
  ) {}

  /** Remember the conversation an activity came from (and whose personal chat it is). */
  async remember(activity: InboundActivityRef, personId: string | undefined): Promise<void> {
    const conversationId = activity.conversation?.id;
    const serviceUrl = activity.serviceUrl;
    if (!conversationId || !serviceUrl) return;
    const tenantId = activity.conversation?.tenantId ?? activity.channelData?.tenant?.id ?? null;
    // Only the configured tenant's conversations are ever written to (the bot refuses the others first).
    if (tenantId !== this.config.tenantId) return;
    const userId = activity.from?.aadObjectId ?? activity.from?.id ?? null;
    const subjects = [`conversation:${conversationId}`];
    if (activity.conversation?.conversationType === 'personal' && personId)
      subjects.push(`person:${personId}`);
    for (const subject of subjects)
      await this.pool.query(
        `insert into teams_conversations (subject, conversation_id, service_url, tenant_id, bot_id, user_id)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (subject) do update set conversation_id = excluded.conversation_id, service_url = excluded.service_url,
           tenant_id = excluded.tenant_id, bot_id = excluded.bot_id, user_id = excluded.user_id, updated_at = now()`,
        [subject, conversationId, serviceUrl, tenantId, activity.recipient?.id ?? null, userId],
      );
  }

  async forPerson(personId: string): Promise<ConversationReference | undefined> {
    return await this.lookup(`person:${personId}`);
  }

  async recordPersonal(personId: string, ref: ConversationReference): Promise<void> {
    await this.pool.query(
      `insert into teams_conversations (subject, conversation_id, service_url, tenant_id, bot_id, user_id)
       values ($1, $2, $3, $4, $5, $6)
       on conflict (subject) do update set conversation_id = excluded.conversation_id, service_url = excluded.service_url,
         updated_at = now()`,
      [
        `person:${personId}`,
        ref.conversationId,
        ref.serviceUrl,
        ref.tenantId ?? null,
        ref.botId ?? null,
        ref.userId ?? null,
      ],
    );
  }

  /** The service URL for a conversation: as Teams last gave it, else the configured default. */
  async serviceUrlFor(conversationId: string): Promise<string> {
    const ref = await this.lookup(`conversation:${conversationId}`);
    return (ref?.serviceUrl ?? this.config.serviceUrl).replace(/\/+$/, '');
  }

  private async lookup(subject: string): Promise<ConversationReference | undefined> {
    const { rows } = await this.pool.query<{
      conversation_id: string;
      service_url: string;
      tenant_id: string | null;
      bot_id: string | null;
      user_id: string | null;
    }>(
      'select conversation_id, service_url, tenant_id, bot_id, user_id from teams_conversations where subject = $1',
      [subject],
    );
    const r = rows[0];
    if (!r) return undefined;
    return {
      conversationId: r.conversation_id,
      serviceUrl: r.service_url,
      ...(r.tenant_id ? { tenantId: r.tenant_id } : {}),
      ...(r.bot_id ? { botId: r.bot_id } : {}),
      ...(r.user_id ? { userId: r.user_id } : {}),
    };
  }
}
