// A Bolt receiver fed from a route of the project's one HTTP server (bots/http.ts), instead of a
// server of its own. Before Bolt sees a request it is checked here: body size and the v0 signature
// within five minutes either way (verify.ts). Clicks and events, whose ack is an empty 200, are
// answered right there, before Bolt runs; a modal submission is answered by Bolt's HTTPResponseAck
// the moment its listener calls ack() (its ack may carry field errors). Listeners carry on after.
//
// Whether a request was already handled (Slack re-sends an event it did not see acknowledged in
// 3 s, with X-Slack-Retry-Num; a captured request could be replayed inside the signature window)
// is decided by the listeners right after their ack(), with SeenRequests: the id travels in the
// Bolt context (context.requestId). Checking after the ack keeps the database out of the 3-second
// path; seen ids are kept in PostgreSQL, so a retry that lands on another replica is caught too.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import type { App, Logger as SlackLogger, Receiver } from '@slack/bolt';
import { HTTPResponseAck } from '@slack/bolt';
import type { Logger } from 'pino';
import type { Pool } from '../../runtime/pool.ts';
import { Batcher } from '../../chat/batch.ts';
import { RefusalAudit } from '../audit.ts';
import { readBody, sendJson } from '../http.ts';
import { verifySlackSignature } from './verify.ts';

export interface SlackRouteReceiverOptions {
  signingSecret: string;
  pool: Pool;
  log: Logger;
  slackLogger: SlackLogger;
  now?: () => number;
  /** Where refused requests are recorded (default: the audit log through `pool`). */
  audit?: RefusalAudit;
}

type Body = Record<string, unknown>;

/**
 * Payload types whose acknowledgement is always an empty 200: button clicks and menu choices
 * (block_actions) and Events API deliveries. A modal submission's ack may carry field errors, and
 * an options request's ack carries the options, so those go through Bolt's ack.
 */
const emptyAck = new Set(['block_actions', 'event_callback']);

export class SlackRouteReceiver implements Receiver {
  private app?: App;
  private readonly now: () => number;
  readonly audit: RefusalAudit;

  constructor(private readonly opts: SlackRouteReceiverOptions) {
    this.now = opts.now ?? Date.now;
    this.audit = opts.audit ?? new RefusalAudit(opts.pool, opts.log);
  }

  init(app: App): void {
    this.app = app;
  }

  // The HTTP server is shared and started by the stack; nothing to start or stop here.
  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  /** The route handler: POST {integrations.slack.path}. */
  readonly handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const received = this.now();
    let raw: Buffer;
    try {
      raw = await readBody(req, 512 * 1024);
    } catch {
      return sendJson(res, 413, { error: 'request body too large' });
    }
    const contentType = String(req.headers['content-type'] ?? '')
      .split(';')[0]!
      .trim();
    // Slack's SSL check carries no signature and must not carry anything we act on.
    if (
      contentType === 'application/x-www-form-urlencoded' &&
      parseQuery(raw.toString('utf8')).ssl_check === '1'
    )
      return sendJson(res, 200, {});

    const check = verifySlackSignature({
      signingSecret: this.opts.signingSecret,
      timestamp: header(req, 'x-slack-request-timestamp'),
      signature: header(req, 'x-slack-signature'),
      rawBody: raw,
      nowMs: received,
    });
    if (!check.ok) {
      sendJson(res, 401, { error: 'invalid request signature' });
      await this.audit.record({
        channel: 'slack',
        route: req.url ?? '/slack/events',
        status: 401,
        reason: `signature check failed: ${check.reason}`,
        remote: req.socket.remoteAddress,
        body: raw,
      });
      return;
    }

    let body: Body;
    try {
      body = parseBody(raw, contentType);
    } catch {
      return sendJson(res, 400, { error: 'unparseable body' });
    }
    if (body.type === 'url_verification' && typeof body.challenge === 'string')
      return sendJson(res, 200, { challenge: body.challenge });

    const retryNum = numberHeader(req, 'x-slack-retry-num');
    if (!this.app) return sendJson(res, 503, { error: 'slack app not initialised' });
    const customProperties = { receivedAt: received, requestId: requestId(body, raw) };
    if (typeof body.type === 'string' && emptyAck.has(body.type)) {
      // Slack wants nothing but a 200 for these: answer now, before Bolt's middleware and the
      // listener run, so the ack never waits behind them (or behind other clicks' work).
      res.writeHead(200, { 'content-length': '0' });
      res.end();
      setImmediate(() => {
        this.app!.processEvent({
          body,
          ack: async () => undefined,
          retryNum,
          retryReason: header(req, 'x-slack-retry-reason'),
          customProperties,
        }).catch((err: unknown) => this.opts.log.error({ err }, 'slack listener failed'));
      });
      return;
    }
    const ack = new HTTPResponseAck({
      logger: this.opts.slackLogger,
      processBeforeResponse: false,
      unhandledRequestTimeoutMillis: 3_001,
      httpRequest: req,
      httpRequestBody: body,
      httpResponse: res,
    });
    try {
      await this.app.processEvent({
        body,
        ack: ack.bind(),
        retryNum,
        retryReason: header(req, 'x-slack-retry-reason'),
        customProperties,
      });
    } catch (err) {
      this.opts.log.error({ err }, 'slack listener failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'listener failed' });
    }
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function numberHeader(req: IncomingMessage, name: string): number | undefined {
  const v = header(req, name);
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  return Number(v);
}

function parseBody(raw: Buffer, contentType: string): Body {
  const text = raw.toString('utf8');
  if (contentType === 'application/x-www-form-urlencoded') {
    const form = parseQuery(text);
    if (typeof form.payload === 'string') return JSON.parse(form.payload) as Body;
    return Object.fromEntries(Object.entries(form).map(([k, v]) => [k, Array.isArray(v) ? v[0] : v]));
  }
  const parsed: unknown = JSON.parse(text);
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
  return parsed as Body;
}

/**
 * What makes a request "the same one again": the event id of an Events API delivery (constant across
 * Slack's retries), the trigger id of an interaction (one per click or submission), or else the
 * exact bytes of the body.
 */
export function requestId(body: Body, raw: Buffer): string {
  if (typeof body.event_id === 'string') return `event:${body.event_id}`;
  if (typeof body.trigger_id === 'string') {
    const actions = Array.isArray(body.actions) ? (body.actions as { action_ts?: unknown }[]) : [];
    const ts = typeof actions[0]?.action_ts === 'string' ? `:${actions[0].action_ts}` : '';
    return `${String(body.type ?? 'interaction')}:${body.trigger_id}${ts}`;
  }
  return `body:${createHash('sha256').update(raw).digest('hex')}`;
}

/** Slack request ids already handled, shared by every replica through PostgreSQL. */
export class SeenRequests {
  private lastPrune = 0;
  /** Ids recorded in one statement per burst of requests (bots/batch.ts). */
  private readonly inserts = new Batcher<string, boolean>(async (ids) => {
    const { rows } = await this.pool.query<{ request_id: string }>(
      `insert into slack_seen_requests (request_id)
       select distinct unnest($1::text[]) on conflict do nothing returning request_id`,
      [ids],
    );
    // The first of several copies in one burst is the first time; the others are not.
    const fresh = new Set(rows.map((r) => r.request_id));
    return ids.map((id) => fresh.delete(id));
  });

  constructor(
    private readonly pool: Pool,
    private readonly log: Logger,
    /** Ids are kept this long: well past the signature window and Slack's retries. */
    private readonly retentionMs = 3_600_000,
  ) {}

  /** Record the id; false when it was seen before (a retry or a replay). */
  async firstTime(id: unknown): Promise<boolean> {
    if (typeof id !== 'string') return true;
    const first = await this.inserts.call(id);
    const now = Date.now();
    if (now - this.lastPrune > 60_000) {
      this.lastPrune = now;
      this.pool
        .query(
          `delete from slack_seen_requests where seen_at < now() - make_interval(secs => $1::float8 / 1000)`,
          [this.retentionMs],
        )
        .catch((err: unknown) => this.log.warn({ err }, 'pruning seen slack requests failed'));
    }
    if (!first) this.log.info({ id }, 'slack request already handled; acknowledged without acting');
    return first;
  }
}
