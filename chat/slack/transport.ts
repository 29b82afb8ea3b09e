// Sending to Slack through the Web API client (Bolt's app.client), with failures classified for the
// outbox: 429 → wait Retry-After; ok:false errors that cannot succeed on retry → give up with the
// error named; a deleted message → post anew; network and 5xx → retry later. The client is built
// with rejectRateLimitedCalls and no retries of its own, so the outbox alone decides when to resend.
import type { webApi } from '@slack/bolt';
import { MessageGoneError, PermanentSendError, RateLimitedError, type ChatTransport } from '../outbox.ts';
import type { RenderContext } from '../messages.ts';

/** A stored Slack message reference, "<channel>/<ts>". */
export function splitRef(ref: string): { channel: string; ts: string } {
  const slash = ref.lastIndexOf('/');
  return { channel: ref.slice(0, slash), ts: ref.slice(slash + 1) };
}

type WebClient = webApi.WebClient;

export interface SlackPayload {
  text: string;
  blocks?: unknown[];
}

export interface SlackEphemeral {
  user: string;
  text: string;
  blocks?: unknown[];
}

/** Slack errors worth another try later. */
const transientErrors = new Set([
  'ratelimited',
  'internal_error',
  'fatal_error',
  'service_unavailable',
  'request_timeout',
]);
const goneErrors = new Set([
  'message_not_found',
  'cant_update_message',
  'edit_window_closed',
  'thread_not_found',
]);

interface SlackFailure {
  code?: string;
  retryAfter?: number;
  statusCode?: number;
  data?: { error?: string };
  message?: string;
}

function classify(method: string, err: unknown): Error {
  const e = (err ?? {}) as SlackFailure;
  switch (e.code) {
    case 'slack_webapi_rate_limited_error':
      return new RateLimitedError(Math.max(1, e.retryAfter ?? 1) * 1000);
    case 'slack_webapi_platform_error': {
      const code = e.data?.error ?? 'unknown_error';
      if (goneErrors.has(code)) return new MessageGoneError(`slack ${method}: ${code}`);
      if (transientErrors.has(code)) return new Error(`slack ${method}: ${code}`);
      return new PermanentSendError(`slack ${method}: ${code}`);
    }
    case 'slack_webapi_http_error':
      return (e.statusCode ?? 500) >= 500
        ? new Error(`slack ${method}: HTTP ${e.statusCode}`)
        : new PermanentSendError(`slack ${method}: HTTP ${e.statusCode}`);
    default:
      return new Error(`slack ${method}: ${e.message ?? String(err)}`);
  }
}

export class SlackTransport implements ChatTransport {
  readonly name = 'slack' as const;

  constructor(
    private readonly client: WebClient,
    private readonly renderModel: (model: unknown, ctx: RenderContext) => SlackPayload,
  ) {}

  render(model: unknown, ctx: RenderContext): unknown {
    return this.renderModel(model, ctx);
  }

  /** A reply goes to the original's channel (a DM sent to a user id lives in a D… channel) with its ts. */
  async post(conversation: string, payload: unknown, threadRef?: string): Promise<string> {
    const p = payload as SlackPayload;
    const thread = threadRef ? splitRef(threadRef) : undefined;
    try {
      const r = await this.client.chat.postMessage({
        channel: thread?.channel ?? conversation,
        text: p.text,
        ...(p.blocks ? { blocks: p.blocks as never[] } : {}),
        ...(thread ? { thread_ts: thread.ts } : {}),
        unfurl_links: false,
        unfurl_media: false,
      });
      return `${r.channel ?? thread?.channel ?? conversation}/${r.ts ?? ''}`;
    } catch (err) {
      throw classify('chat.postMessage', err);
    }
  }

  async update(_conversation: string, ref: string, payload: unknown): Promise<void> {
    const p = payload as SlackPayload;
    const { channel, ts } = splitRef(ref);
    try {
      await this.client.chat.update({
        channel,
        ts,
        text: p.text,
        ...(p.blocks ? { blocks: p.blocks as never[] } : {}),
      });
    } catch (err) {
      throw classify('chat.update', err);
    }
  }

  async ephemeral(conversation: string, payload: unknown): Promise<void> {
    const p = payload as SlackEphemeral;
    try {
      await this.client.chat.postEphemeral({
        channel: conversation,
        user: p.user,
        text: p.text,
        ...(p.blocks ? { blocks: p.blocks as never[] } : {}),
      });
    } catch (err) {
      throw classify('chat.postEphemeral', err);
    }
  }
}
