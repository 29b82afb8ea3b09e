// The bot's access token for the Bot Connector API: OAuth 2.0 client credentials against the app's
// Entra tenant. Done here rather than through the Teams library's MSAL path because MSAL only
// accepts https authorities, and the token endpoint must be configurable (sovereign clouds, a local
// endpoint in tests). Cached until five minutes before expiry; concurrent callers share one request.
import type { TeamsConfig } from './config.ts';

const DEFAULT_LOGIN = 'https://login.microsoftonline.com';
const DEFAULT_BOT_SCOPE = 'https://api.botframework.com/.default';

export class BotTokenProvider {
  private cached?: { token: string; refreshAtMs: number };
  private inflight?: Promise<string>;
  readonly tokenUrl: string;
  readonly scope: string;

  constructor(
    private readonly config: TeamsConfig,
    private readonly clientSecret: string,
    private readonly now: () => number = Date.now,
  ) {
    this.tokenUrl = `${(config.endpoints.login ?? DEFAULT_LOGIN).replace(/\/+$/, '')}/${encodeURIComponent(config.tenantId)}/oauth2/v2.0/token`;
    this.scope = config.endpoints.botScope ?? DEFAULT_BOT_SCOPE;
  }

  async token(): Promise<string> {
    if (this.cached && this.now() < this.cached.refreshAtMs) return this.cached.token;
    this.inflight ??= this.fetchToken().finally(() => {
      this.inflight = undefined;
    });
    return await this.inflight;
  }

  private async fetchToken(): Promise<string> {
    const res = await fetch(this.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: this.config.appId,
        client_secret: this.clientSecret,
        scope: this.scope,
      }).toString(),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json().catch(() => ({}))) as {
      access_token?: string;
      expires_in?: number;
      error?: string;
      error_description?: string;
    };
    if (!res.ok || !body.access_token)
      throw new Error(
        `the Teams bot could not get a token from ${this.tokenUrl} (HTTP ${res.status}${body.error ? `, ${body.error}: ${(body.error_description ?? '').split('\n')[0]}` : ''}); check integrations.teams.appId, tenantId and clientSecret`,
      );
    const lifetimeMs = Math.max(60, body.expires_in ?? 3600) * 1000;
    this.cached = {
      token: body.access_token,
      refreshAtMs: this.now() + lifetimeMs - Math.min(300_000, lifetimeMs / 2),
    };
    return body.access_token;
  }
}
