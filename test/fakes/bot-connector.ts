// A local stand-in for the Microsoft side of a Teams bot, speaking the real wire protocols:
// - the Entra ID token endpoint (OAuth 2.0 client credentials, POST /{tenant}/oauth2/v2.0/token);
// - the Bot Connector API the bot sends through (POST /v3/conversations/{id}/activities, PUT
//   /v3/conversations/{id}/activities/{activityId}, and ReplyToActivity: POST
//   /v3/conversations/{id}/activities/{activityId}, or a channel thread's conversation id
//   "<channel>;messageid=<root id>"), bearer token required, 404 for unknown activities, 429 with
//   Retry-After on demand; each activity records the one it replies to (replyToId);
// - the Bot Framework's OpenID metadata and signing keys (/v1/.well-known/…), and a signer for the
//   RS256 service tokens Teams puts on the requests it sends to the bot, so the bot's JWT validation
//   runs for real.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPrivateKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { parse as parseQuery } from 'node:querystring';

export interface ConnectorCall {
  method: 'POST' | 'PUT';
  conversationId: string;
  /** PUT: the activity updated; POST: the activity replied to (ReplyToActivity). */
  activityId?: string;
  /** A reply: the activity it replies to (from the path, the ;messageid= suffix or replyToId). */
  replyToId?: string;
  activity: Record<string, unknown>;
  authorization?: string;
  at: number;
}

type Scripted = { status: 429; retryAfterSeconds: number } | { status: number };

export interface FakeBotConnectorOptions {
  appId: string;
  appSecret: string;
  tenantId: string;
  /** The issuer Teams service tokens carry. */
  issuer?: string;
}

export class FakeBotConnector {
  readonly calls: ConnectorCall[] = [];
  readonly tokenRequests: Record<string, string>[] = [];
  /** POST /v3/conversations calls (opening a personal chat). */
  readonly createdConversations: { member: string; tenantId: string }[] = [];
  /** Users the app is installed for: opening a personal chat with anyone else is refused (403). */
  readonly installedFor = new Set<string>();
  /** conversationId → activityId → the activity as last written. */
  readonly activities = new Map<string, Map<string, Record<string, unknown>>>();
  private readonly scripted: Scripted[] = [];
  private readonly issuedTokens = new Set<string>();
  private readonly privateKey: KeyObject;
  private readonly jwk: Record<string, unknown>;
  private readonly kid = randomUUID();
  private server?: http.Server;
  private started = Date.now();
  private seq = 0;
  /** Base URL: the login endpoint, the service URL and the OpenID host all live here. */
  url = '';

  constructor(readonly opts: FakeBotConnectorOptions) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = createPrivateKey(privateKey.export({ type: 'pkcs8', format: 'pem' }));
    this.jwk = {
      ...publicKey.export({ format: 'jwk' }),
      kid: this.kid,
      use: 'sig',
      alg: 'RS256',
      endorsements: ['msteams'],
    };
  }

  get serviceUrl(): string {
    return `${this.url}teams/`;
  }

  get issuer(): string {
    return this.opts.issuer ?? 'https://api.botframework.com';
  }

  get openIdMetadataUrl(): string {
    return `${this.url}v1/.well-known/openidconfiguration`;
  }

  get loginEndpoint(): string {
    return this.url.replace(/\/$/, '');
  }

  async start(): Promise<this> {
    this.started = Date.now();
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(err));
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/`;
    return this;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    await new Promise<void>((r) => {
      this.server!.close(() => r());
      this.server!.closeAllConnections();
    });
  }

  /** The next connector call(s) answer with this status instead of succeeding. */
  failNext(...answers: Scripted[]): void {
    this.scripted.push(...answers);
  }

  async waitForCalls(count: number, timeoutMs = 10_000): Promise<ConnectorCall[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.calls.length < count) {
      if (Date.now() > deadline)
        throw new Error(`expected ${count} connector call(s), saw ${this.calls.length}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.calls;
  }

  /**
   * A service token as the Bot Framework signs it for requests to the bot. Overrides make it wrong
   * in one way (another audience, expired, another key…) for the rejection tests.
   */
  serviceToken(
    serviceUrl: string,
    overrides: {
      aud?: string;
      iss?: string;
      expiresInSeconds?: number;
      serviceurl?: string;
      signWith?: KeyObject;
    } = {},
  ): string {
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', kid: this.kid };
    const payload = {
      iss: overrides.iss ?? this.issuer,
      aud: overrides.aud ?? this.opts.appId,
      serviceurl: overrides.serviceurl ?? serviceUrl,
      nbf: now - 60,
      iat: now - 60,
      exp: now + (overrides.expiresInSeconds ?? 3600),
    };
    const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const input = `${enc(header)}.${enc(payload)}`;
    const signature = sign('RSA-SHA256', Buffer.from(input), overrides.signWith ?? this.privateKey).toString(
      'base64url',
    );
    return `${input}.${signature}`;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://localhost');
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(JSON.stringify(body));
    };

    if (req.method === 'GET' && url.pathname === '/v1/.well-known/openidconfiguration')
      return reply(200, {
        issuer: this.issuer,
        jwks_uri: `${this.url}v1/.well-known/keys`,
        id_token_signing_alg_values_supported: ['RS256'],
      });
    if (req.method === 'GET' && url.pathname === '/v1/.well-known/keys')
      return reply(200, { keys: [this.jwk] });

    const tokenPath = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
    if (req.method === 'POST' && tokenPath) {
      const form = Object.fromEntries(
        Object.entries(parseQuery(raw)).map(([k, v]) => [k, Array.isArray(v) ? (v[0] ?? '') : (v ?? '')]),
      );
      this.tokenRequests.push({
        ...form,
        tenant: tokenPath[1]!,
        client_secret: form.client_secret ? '[given]' : '',
      });
      if (form.grant_type !== 'client_credentials')
        return reply(400, { error: 'unsupported_grant_type', error_description: 'AADSTS70003' });
      if (form.client_id !== this.opts.appId || form.client_secret !== this.opts.appSecret)
        return reply(401, {
          error: 'invalid_client',
          error_description: 'AADSTS7000215: Invalid client secret provided.',
        });
      if (tokenPath[1] !== this.opts.tenantId && tokenPath[1] !== 'botframework.com')
        return reply(400, { error: 'invalid_request', error_description: 'AADSTS90002: Tenant not found.' });
      // Entra access tokens are JWTs (the Teams library decodes them); this one is shaped like one.
      const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
      const now = Math.floor(Date.now() / 1000);
      const token = `${enc({ alg: 'RS256', typ: 'JWT' })}.${enc({
        aud: 'https://api.botframework.com',
        appid: this.opts.appId,
        tid: tokenPath[1],
        iat: now,
        exp: now + 3599,
        jti: randomUUID(),
      })}.${randomUUID().replace(/-/g, '')}`;
      this.issuedTokens.add(token);
      return reply(200, {
        token_type: 'Bearer',
        expires_in: 3599,
        ext_expires_in: 3599,
        access_token: token,
      });
    }

    if (req.method === 'POST' && url.pathname === '/teams/v3/conversations') {
      const bearer = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      if (!this.issuedTokens.has(bearer))
        return reply(401, { message: 'Authorization has been denied for this request.' });
      const params = JSON.parse(raw || '{}') as { members?: { id?: string }[]; tenantId?: string };
      const member = params.members?.[0]?.id;
      this.createdConversations.push({ member: member ?? '', tenantId: params.tenantId ?? '' });
      if (!member || !this.installedFor.has(member))
        return reply(403, {
          error: { code: 'Forbidden', message: 'The bot is not part of the conversation roster.' },
        });
      return reply(201, { id: `a:personal-${member}`, activityId: '', serviceUrl: this.serviceUrl });
    }

    const conv = /^\/teams\/v3\/conversations\/([^/]+)\/activities(?:\/([^/]+))?$/.exec(url.pathname);
    if (conv && (req.method === 'POST' || req.method === 'PUT')) {
      // A channel thread is addressed as "<channel id>;messageid=<root activity id>".
      const [conversationId, threadRoot] = decodeURIComponent(conv[1]!).split(';messageid=') as [
        string,
        string | undefined,
      ];
      const activityId = conv[2] ? decodeURIComponent(conv[2]) : undefined;
      const activity = JSON.parse(raw || '{}') as Record<string, unknown>;
      const replyToId =
        req.method === 'POST'
          ? (activityId ??
            threadRoot ??
            (typeof activity.replyToId === 'string' ? activity.replyToId : undefined))
          : undefined;
      this.calls.push({
        method: req.method,
        conversationId,
        activityId,
        ...(replyToId ? { replyToId } : {}),
        activity,
        authorization: req.headers.authorization,
        at: Date.now() - this.started,
      });
      const scripted = this.scripted.shift();
      if (scripted) {
        if (scripted.status === 429 && 'retryAfterSeconds' in scripted)
          return reply(
            429,
            { error: { code: 'TooManyRequests', message: 'Too many requests' } },
            {
              'retry-after': String(scripted.retryAfterSeconds),
            },
          );
        return reply(scripted.status, { error: { code: 'ServiceError', message: 'scripted failure' } });
      }
      const bearer = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      if (!this.issuedTokens.has(bearer))
        return reply(401, { message: 'Authorization has been denied for this request.' });
      const conversation = this.activities.get(conversationId) ?? new Map<string, Record<string, unknown>>();
      this.activities.set(conversationId, conversation);
      if (req.method === 'POST') {
        if (replyToId && !conversation.has(replyToId))
          return reply(404, {
            error: { code: 'ActivityNotFoundInConversation', message: 'Unknown activity' },
          });
        const id = `1${String(++this.seq).padStart(12, '0')}`;
        conversation.set(id, { ...activity, ...(replyToId ? { replyToId } : {}) });
        return reply(201, { id });
      }
      if (!activityId || !conversation.has(activityId))
        return reply(404, { error: { code: 'ActivityNotFoundInConversation', message: 'Unknown activity' } });
      // An update changes the content; the activity stays where it was (in its reply chain).
      const before = conversation.get(activityId)!;
      conversation.set(activityId, {
        ...activity,
        ...(before.replyToId ? { replyToId: before.replyToId } : {}),
      });
      return reply(200, { id: activityId });
    }
    return reply(404, { error: { code: 'NotFound', message: `${req.method} ${url.pathname}` } });
  }
}
