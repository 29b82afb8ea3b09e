// A local server speaking the Slack Web API's wire protocol for the methods the bots use: POST
// /api/<method>, bearer token, form-encoded (or JSON) arguments with JSON-encoded fields, `ok:false`
// errors with HTTP 200, and HTTP 429 with Retry-After. `@slack/web-api` is pointed at it through
// `slackApiUrl`. It records every call so tests assert on what the bots actually sent.
// It also plays Socket Mode: apps.connections.open (app-level token) hands out a ws:// URL on the
// same server, which greets with "hello", delivers envelopes and collects their acks (RFC 6455
// framing written out here: text frames, client masking, ping/pong, close).
// Threads: chat.postMessage with thread_ts posts a reply under that message of the channel (a reply
// to a reply joins the same thread, as Slack does); a thread_ts naming no message answers
// thread_not_found. Each message records the thread it is in.
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { parse as parseQuery } from 'node:querystring';

export interface SlackCall {
  method: string;
  args: Record<string, unknown>;
  /** Milliseconds since the server started. */
  at: number;
}

export interface SlackMessage {
  channel: string;
  ts: string;
  text?: string;
  blocks?: unknown[];
  updates: number;
  /** The ts of the thread's parent, for a reply. */
  threadTs?: string;
}

type Scripted = { error: string } | { status: 429; retryAfterSeconds: number } | { status: number };

export interface FakeSlackOptions {
  token: string;
  /** App-level token (xapp-…) for Socket Mode. */
  appToken?: string;
  teamId?: string;
  botUserId?: string;
}

export class FakeSlackApi {
  readonly calls: SlackCall[] = [];
  readonly messages = new Map<string, SlackMessage>();
  private readonly scripted = new Map<string, Scripted[]>();
  private readonly unknownChannels = new Set<string>();
  private readonly lateAnswers = new Map<string, number>();
  private server?: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly acks = new Map<string, (ack: Record<string, unknown>) => void>();
  /** Socket Mode acks received, by envelope id. */
  readonly socketAcks: Record<string, unknown>[] = [];
  private started = Date.now();
  private seq = 0;
  url = '';

  constructor(private readonly opts: FakeSlackOptions) {}

  async start(): Promise<this> {
    this.started = Date.now();
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(err));
      });
    });
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Socket) => this.upgrade(req, socket));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/api/`;
    return this;
  }

  /** When the server started (epoch ms): call times (`at`) count from here. */
  get startedAtMs(): number {
    return this.started;
  }

  /** Socket connections open now. */
  get socketCount(): number {
    return this.sockets.size;
  }

  /** Deliver a Socket Mode envelope to every connected client; resolves with the first ack. */
  async sendEnvelope(
    type: 'interactive' | 'events_api',
    payload: unknown,
    extra: Record<string, unknown> = {},
  ): Promise<Record<string, unknown>> {
    const envelopeId = randomUUID();
    const acked = new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ack for envelope ${envelopeId}`)), 10_000);
      this.acks.set(envelopeId, (ack) => {
        clearTimeout(timer);
        resolve(ack);
      });
    });
    for (const socket of this.sockets)
      writeFrame(
        socket,
        0x1,
        Buffer.from(
          JSON.stringify({
            envelope_id: envelopeId,
            type,
            payload,
            accepts_response_payload: type === 'interactive',
            ...extra,
          }),
        ),
      );
    return await acked;
  }

  private upgrade(req: http.IncomingMessage, socket: Socket): void {
    const key = req.headers['sec-websocket-key'];
    if (!req.url?.startsWith('/socket') || typeof key !== 'string') {
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => this.sockets.delete(socket));
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        const frame = readFrame(buffered);
        if (!frame) break;
        buffered = buffered.subarray(frame.size);
        if (frame.opcode === 0x8) {
          writeFrame(socket, 0x8, Buffer.alloc(0));
          socket.end();
          return;
        }
        if (frame.opcode === 0x9) writeFrame(socket, 0xa, frame.payload);
        if (frame.opcode !== 0x1) continue;
        const message = JSON.parse(frame.payload.toString('utf8')) as Record<string, unknown>;
        this.socketAcks.push(message);
        const id = typeof message.envelope_id === 'string' ? message.envelope_id : '';
        this.acks.get(id)?.(message);
        this.acks.delete(id);
      }
    });
    writeFrame(
      socket,
      0x1,
      Buffer.from(
        JSON.stringify({ type: 'hello', num_connections: 1, connection_info: { app_id: 'A0CTEM' } }),
      ),
    );
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((r) => {
      this.server!.close(() => r());
      this.server!.closeAllConnections();
    });
  }

  /** The next call(s) to `method` answer with this instead of succeeding. */
  failNext(method: string, ...answers: Scripted[]): void {
    this.scripted.set(method, [...(this.scripted.get(method) ?? []), ...answers]);
  }

  /**
   * Calls to `method` do what they do at once (a posted message is in the channel, for people to
   * see and click) but answer `ms` later, as a slow network or a busy Slack does; 0 ends it.
   */
  answerLate(method: string, ms: number): void {
    if (ms > 0) this.lateAnswers.set(method, ms);
    else this.lateAnswers.delete(method);
  }

  /** Posting to this channel answers channel_not_found. */
  forgetChannel(channel: string): void {
    this.unknownChannels.add(channel);
  }

  /** The replies in a message's thread, oldest first. */
  repliesTo(channel: string, ts: string): SlackMessage[] {
    return [...this.messages.values()].filter((m) => m.channel === channel && m.threadTs === ts);
  }

  callsTo(method: string): SlackCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** Resolves once `count` calls to `method` have been made (or rejects after timeoutMs). */
  async waitForCalls(method: string, count: number, timeoutMs = 10_000): Promise<SlackCall[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.callsTo(method).length < count) {
      if (Date.now() > deadline)
        throw new Error(`expected ${count} call(s) to ${method}, saw ${this.callsTo(method).length}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.callsTo(method);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = url.pathname.replace(/^\/api\//, '');
    const args = decodeArgs(raw, req.headers['content-type'] ?? '');
    this.calls.push({ method, args, at: Date.now() - this.started });

    const late = this.lateAnswers.get(method) ?? 0;
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      const text = JSON.stringify(body);
      const send = () => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
        res.end(text);
      };
      if (late > 0) setTimeout(send, late);
      else send();
    };

    const scripted = this.scripted.get(method)?.shift();
    if (scripted) {
      if ('error' in scripted) return reply(200, { ok: false, error: scripted.error });
      if (scripted.status === 429 && 'retryAfterSeconds' in scripted)
        return reply(
          429,
          { ok: false, error: 'ratelimited' },
          { 'retry-after': String(scripted.retryAfterSeconds) },
        );
      return reply(scripted.status, { ok: false, error: 'fatal_error' });
    }

    if (method === 'apps.connections.open') {
      if (!this.opts.appToken || req.headers.authorization !== `Bearer ${this.opts.appToken}`)
        return reply(200, { ok: false, error: 'invalid_auth' });
      const base = this.url.replace(/^http/, 'ws').replace(/\/api\/$/, '');
      return reply(200, { ok: true, url: `${base}/socket?ticket=${randomUUID()}` });
    }
    if (req.headers.authorization !== `Bearer ${this.opts.token}`)
      return reply(200, { ok: false, error: 'invalid_auth' });

    const channel = typeof args.channel === 'string' ? args.channel : undefined;
    switch (method) {
      case 'auth.test':
        return reply(200, {
          ok: true,
          url: 'https://ctem-test.slack.com/',
          team: 'ctem-test',
          user: 'ctem',
          team_id: this.opts.teamId ?? 'T0CTEM',
          user_id: this.opts.botUserId ?? 'U0CTEMBOT',
          bot_id: 'B0CTEMBOT',
          is_enterprise_install: false,
        });
      case 'chat.postMessage': {
        if (!channel) return reply(200, { ok: false, error: 'channel_not_found' });
        if (this.unknownChannels.has(channel)) return reply(200, { ok: false, error: 'channel_not_found' });
        // Posting to a user id lands in the app's DM with them, which has a D… channel id.
        const target = /^[UW]/.test(channel) ? `D${channel.slice(1)}` : channel;
        if (args.text === undefined && args.blocks === undefined)
          return reply(200, { ok: false, error: 'no_text' });
        let threadTs: string | undefined;
        if (args.thread_ts !== undefined && args.thread_ts !== '') {
          const parent = this.messages.get(`${target}/${String(args.thread_ts)}`);
          if (!parent) return reply(200, { ok: false, error: 'thread_not_found' });
          threadTs = parent.threadTs ?? parent.ts;
        }
        const ts = this.nextTs();
        const message: SlackMessage = {
          channel: target,
          ts,
          text: args.text as string | undefined,
          blocks: args.blocks as unknown[] | undefined,
          updates: 0,
          ...(threadTs ? { threadTs } : {}),
        };
        this.messages.set(`${target}/${ts}`, message);
        return reply(200, {
          ok: true,
          channel: target,
          ts,
          message: { type: 'message', text: message.text, ts, ...(threadTs ? { thread_ts: threadTs } : {}) },
        });
      }
      case 'chat.update': {
        const ts = String(args.ts ?? '');
        const message = channel ? this.messages.get(`${channel}/${ts}`) : undefined;
        if (!message) return reply(200, { ok: false, error: 'message_not_found' });
        message.text = args.text as string | undefined;
        message.blocks = args.blocks as unknown[] | undefined;
        message.updates++;
        return reply(200, { ok: true, channel, ts, text: message.text });
      }
      case 'chat.postEphemeral':
        if (!channel || this.unknownChannels.has(channel))
          return reply(200, { ok: false, error: 'channel_not_found' });
        if (typeof args.user !== 'string') return reply(200, { ok: false, error: 'user_not_in_channel' });
        return reply(200, { ok: true, message_ts: this.nextTs() });
      case 'views.open':
        if (typeof args.trigger_id !== 'string')
          return reply(200, { ok: false, error: 'invalid_trigger_id' });
        if (typeof args.view !== 'object' || args.view === null)
          return reply(200, { ok: false, error: 'invalid_arguments' });
        return reply(200, { ok: true, view: { ...(args.view as object), id: `V${++this.seq}` } });
      default:
        return reply(200, { ok: false, error: 'unknown_method' });
    }
  }

  private nextTs(): string {
    return `${Math.floor(Date.now() / 1000)}.${String(++this.seq).padStart(6, '0')}`;
  }
}

/** Form fields arrive as strings; Block Kit structures inside them are JSON. */
function decodeArgs(raw: string, contentType: string): Record<string, unknown> {
  if (contentType.includes('application/json')) return JSON.parse(raw || '{}') as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(parseQuery(raw))) {
    const value = Array.isArray(v) ? v[0] : v;
    if (value === undefined) continue;
    if (/^[[{]/.test(value)) {
      try {
        out[k] = JSON.parse(value) as unknown;
        continue;
      } catch {
        // not JSON: keep the text
      }
    }
    out[k] = value;
  }
  return out;
}

function writeFrame(socket: Socket, opcode: number, payload: Buffer): void {
  const len = payload.length;
  const head =
    len < 126
      ? Buffer.from([0x80 | opcode, len])
      : len < 65_536
        ? Buffer.from([0x80 | opcode, 126, len >> 8, len & 0xff])
        : Buffer.concat([Buffer.from([0x80 | opcode, 127]), bigLength(len)]);
  socket.write(Buffer.concat([head, payload]));
}

function bigLength(len: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(len));
  return b;
}

/** One complete frame from the start of the buffer (client frames are masked), or undefined. */
function readFrame(buf: Buffer): { opcode: number; payload: Buffer; size: number } | undefined {
  if (buf.length < 2) return undefined;
  const opcode = buf[0]! & 0x0f;
  const masked = (buf[1]! & 0x80) !== 0;
  let len = buf[1]! & 0x7f;
  let offset = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    offset = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    len = Number(buf.readBigUInt64BE(2));
    offset = 10;
  }
  const maskLen = masked ? 4 : 0;
  if (buf.length < offset + maskLen + len) return undefined;
  const mask = masked ? buf.subarray(offset, offset + 4) : undefined;
  const payload = Buffer.from(buf.subarray(offset + maskLen, offset + maskLen + len));
  if (mask) for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i % 4]!;
  return { opcode, payload, size: offset + maskLen + len };
}
