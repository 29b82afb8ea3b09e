// What the three ticket-system fakes (jira.ts, servicenow.ts, glpi.ts) share: an HTTP server on
// 127.0.0.1, a log of every request, scripted 429 answers with Retry-After, and "hold": apply the
// next create, tell the test, and never answer — the client dies without learning the new key.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  status?: number;
  /** Date.now() when it arrived. */
  at: number;
}

export interface FakeRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  raw: string;
}

export interface FakeAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Thrown by handlers to answer with an error. */
export class Answer extends Error {
  constructor(readonly answer: FakeAnswer) {
    super(`HTTP ${answer.status}`);
  }
}

export abstract class FakeTicketServer {
  readonly requests: RecordedRequest[] = [];
  private server?: http.Server;
  private readonly rateLimits: { match: (r: FakeRequest) => boolean; retryAfter: string }[] = [];
  private holdNext?: { match: (r: FakeRequest) => boolean; resolve: () => void };
  private readonly scripted: { match: (r: FakeRequest) => boolean; answer?: FakeAnswer; delayMs?: number }[] =
    [];
  /** Connections of held requests, destroyed at close. */
  private readonly held = new Set<ServerResponse>();
  url = '';

  protected abstract handle(req: FakeRequest): FakeAnswer | Promise<FakeAnswer>;

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      void this.dispatch(req, res);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const res of this.held) res.destroy();
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  /** The next matching request is answered 429 with this Retry-After (seconds or an HTTP date). */
  rateLimitOnce(match: (r: FakeRequest) => boolean, retryAfter = '1'): void {
    this.rateLimits.push({ match, retryAfter });
  }

  /** The next matching request gets this answer instead of being carried out. */
  failOnce(match: (r: FakeRequest) => boolean, answer: FakeAnswer): void {
    this.scripted.push({ match, answer });
  }

  /** The next matching request is answered only after a delay (for client timeouts). */
  delayOnce(match: (r: FakeRequest) => boolean, delayMs: number): void {
    this.scripted.push({ match, delayMs });
  }

  /**
   * The next matching request is carried out, then left unanswered. Resolves once it was carried out,
   * so the test can kill the client between the remote effect and the client learning of it.
   */
  holdNextMatching(match: (r: FakeRequest) => boolean): Promise<void> {
    return new Promise((resolve) => {
      this.holdNext = { match, resolve };
    });
  }

  count(method: string, path: RegExp): number {
    return this.requests.filter((r) => r.method === method && path.test(r.path) && r.status !== 429).length;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://fake');
    let body: unknown = undefined;
    if (raw) {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
    }
    const fr: FakeRequest = {
      method: req.method ?? 'GET',
      path: decodeURIComponent(url.pathname),
      query: url.searchParams,
      headers: req.headers,
      body,
      raw,
    };
    const record: RecordedRequest = {
      method: fr.method,
      path: fr.path,
      query: fr.query,
      headers: fr.headers,
      body,
      at: Date.now(),
    };
    this.requests.push(record);

    const limit = this.rateLimits.findIndex((l) => l.match(fr));
    if (limit >= 0) {
      const { retryAfter } = this.rateLimits.splice(limit, 1)[0]!;
      record.status = 429;
      this.send(res, { status: 429, headers: { 'retry-after': retryAfter }, body: this.rateLimitBody() });
      return;
    }

    const scriptedIndex = this.scripted.findIndex((x) => x.match(fr));
    const script = scriptedIndex >= 0 ? this.scripted.splice(scriptedIndex, 1)[0] : undefined;
    if (script?.delayMs) await new Promise((r) => setTimeout(r, script.delayMs));
    if (script?.answer) {
      record.status = script.answer.status;
      this.send(res, script.answer);
      return;
    }
    let answer: FakeAnswer;
    try {
      answer = await this.handle(fr);
    } catch (err) {
      if (!(err instanceof Answer)) throw err;
      answer = err.answer;
    }
    record.status = answer.status;
    if (this.holdNext?.match(fr) && answer.status < 300) {
      const { resolve } = this.holdNext;
      this.holdNext = undefined;
      this.held.add(res);
      resolve();
      return;
    }
    this.send(res, answer);
  }

  protected rateLimitBody(): unknown {
    return { message: 'Too many requests' };
  }

  private send(res: ServerResponse, answer: FakeAnswer): void {
    if (res.destroyed) return;
    const text = answer.body === undefined ? '' : JSON.stringify(answer.body);
    res.writeHead(answer.status, {
      ...(text ? { 'content-type': 'application/json;charset=UTF-8' } : {}),
      ...answer.headers,
    });
    res.end(text);
  }
}

/** "Basic base64(user:password)" → [user, password]. */
export function basicCredentials(header: string | undefined): [string, string] | undefined {
  const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header ?? '');
  if (!m) return undefined;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = text.indexOf(':');
  return i < 0 ? undefined : [text.slice(0, i), text.slice(i + 1)];
}
