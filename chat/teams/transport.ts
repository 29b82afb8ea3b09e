// Sending to Teams through the Bot Connector API (POST /v3/conversations/{id}/activities to post,
// PUT …/activities/{activityId} to update a card in place), with the Teams library's API client and
// our bot token. Failures are classified for the outbox: 429 → wait Retry-After; 404 on update →
// the message is gone; other 4xx → give up with the status named; 5xx and network → retry later.
import { Client as ConnectorClient } from '@microsoft/teams.api';
import { MessageGoneError, PermanentSendError, RateLimitedError, type ChatTransport } from '../outbox.ts';
import type { TeamsConversations, ConversationReference } from './conversations.ts';
import type { BotTokenProvider } from './token.ts';
import type { RenderContext } from '../messages.ts';

export interface TeamsActivityPayload {
  type: 'message';
  summary?: string;
  text?: string;
  attachments: { contentType: string; content: unknown }[];
}

interface AxiosLikeError {
  response?: { status?: number; headers?: Record<string, unknown>; data?: unknown };
  message?: string;
  code?: string;
}

function classify(what: string, err: unknown, updating: boolean): Error {
  const e = (err ?? {}) as AxiosLikeError;
  const status = e.response?.status;
  if (status === 429) {
    const header = e.response?.headers?.['retry-after'];
    const seconds = Number(Array.isArray(header) ? header[0] : header);
    return new RateLimitedError(Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 1000);
  }
  if (status === 404 && updating) return new MessageGoneError(`teams ${what}: HTTP 404`);
  if (status !== undefined && status >= 400 && status < 500)
    return new PermanentSendError(`teams ${what}: HTTP ${status}${detail(e.response?.data)}`);
  return new Error(
    `teams ${what}: ${status !== undefined ? `HTTP ${status}` : (e.code ?? e.message ?? String(err))}`,
  );
}

function detail(data: unknown): string {
  const message =
    (data as { error?: { message?: unknown }; message?: unknown } | undefined)?.error?.message ??
    (data as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? ` (${message.slice(0, 200)})` : '';
}

export class TeamsTransport implements ChatTransport {
  readonly name = 'teams' as const;
  /** Options for the Teams library's HTTP client: our token on every call, a bounded wait. */
  private readonly http = { token: () => this.tokens.token(), timeout: 10_000 };

  constructor(
    private readonly tokens: BotTokenProvider,
    private readonly conversations: TeamsConversations,
    private readonly renderModel: (model: unknown, ctx: RenderContext) => TeamsActivityPayload,
  ) {}

  render(model: unknown, ctx: RenderContext): unknown {
    return this.renderModel(model, ctx);
  }

  private async connector(conversation: string): Promise<ConnectorClient> {
    return new ConnectorClient(await this.conversations.serviceUrlFor(conversation), this.http);
  }

  /**
   * A new activity; with `threadRef`, a reply to that activity (Bot Connector ReplyToActivity, POST
   * /v3/conversations/{id}/activities/{activityId}): in a channel it lands in the original's reply
   * chain, in a personal chat it quotes the original. An original that is gone answers 404.
   */
  async post(conversation: string, payload: unknown, threadRef?: string): Promise<string> {
    try {
      const api = await this.connector(conversation);
      if (threadRef) {
        const base = await this.conversations.serviceUrlFor(conversation);
        const res = await api.http.post<{ id?: string }>(
          `${base}/v3/conversations/${encodeURIComponent(conversation)}/activities/${encodeURIComponent(threadRef)}`,
          { ...(payload as TeamsActivityPayload), replyToId: threadRef },
        );
        if (!res.data?.id) throw new Error('the Bot Connector answered without an activity id');
        return res.data.id;
      }
      const res = await api.conversations.activities(conversation).create(payload as TeamsActivityPayload);
      if (!res?.id) throw new Error('the Bot Connector answered without an activity id');
      return res.id;
    } catch (err) {
      throw classify(threadRef ? 'reply' : 'post', err, threadRef !== undefined);
    }
  }

  async update(conversation: string, ref: string, payload: unknown): Promise<void> {
    try {
      const api = await this.connector(conversation);
      await api.conversations
        .activities(conversation)
        .update(ref, { ...(payload as TeamsActivityPayload), id: ref } as TeamsActivityPayload);
    } catch (err) {
      throw classify('update', err, true);
    }
  }

  async ephemeral(): Promise<void> {
    // Teams shows a refusal on the card itself (the invoke response), so nothing is queued here.
    throw new PermanentSendError('Teams has no ephemeral messages; refusals are shown on the card');
  }

  /**
   * Open the personal chat with someone the bot has not heard from (the app must be installed for
   * them): POST /v3/conversations with the person as the only member.
   */
  async openPersonalChat(
    userId: string,
    tenantId: string,
    botAppId: string,
    serviceUrl: string,
  ): Promise<ConversationReference> {
    try {
      const api = new ConnectorClient(serviceUrl.replace(/\/+$/, ''), this.http);
      const res = await api.conversations.create({
        isGroup: false,
        bot: { id: `28:${botAppId}`, name: 'ctem', role: 'bot' },
        members: [{ id: userId, name: userId, role: 'user' }],
        tenantId,
        channelData: { tenant: { id: tenantId } },
      });
      return { conversationId: res.id, serviceUrl, tenantId, userId };
    } catch (err) {
      throw classify('open personal chat', err, false);
    }
  }
}
