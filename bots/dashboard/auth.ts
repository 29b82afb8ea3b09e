// Who is using the dashboard: local accounts (scrypt password hashes), API tokens from secrets, and
// the session cookie that follows a login. Sessions are HMAC-signed (no session table): the cookie
// carries the person, an expiry and a random id; logging out revokes the id in this process. Every
// state-changing form carries a CSRF token derived from the session id, checked in constant time,
// and the cookie is HttpOnly, SameSite=Strict and Secure.
import { createHmac, randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { resolveSecret } from '../../runtime/config.ts';
import type { DashboardSettings } from './config.ts';
import { memorySessionStore, type SessionStore } from './sessions.ts';
import { hashPassword, verifyPassword } from '../../runtime/passwords.ts';

export const SESSION_COOKIE = 'ctem_session';

function sameText(a: string, b: string): boolean {
  // Hash both so the comparison takes the same time whatever the lengths.
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

export interface Session {
  personId: string;
  id: string;
  expires: number;
}

export class DashboardAuth {
  private key?: Buffer;
  private readonly failures = new Map<string, { count: number; until: number }>();
  /** A hash to verify against when the account does not exist, so timing does not tell. */
  private decoy?: string;

  constructor(
    private readonly settings: DashboardSettings,
    private readonly secrets: { env?: NodeJS.ProcessEnv; baseDir: string },
    private readonly now: () => number = Date.now,
    /** Shared by every process behind the address (PostgreSQL), or this process's own. */
    private readonly store: SessionStore = memorySessionStore(now),
  ) {
    if (settings.sessionSecret)
      this.key = createHash('sha256')
        .update(resolveSecret(settings.sessionSecret, secrets.env, secrets.baseDir))
        .digest();
  }

  /** Load the shared signing key (once) before any cookie is read or issued. */
  async ready(): Promise<void> {
    this.key ??= await this.store.key();
  }

  get enabled(): boolean {
    return this.settings.accounts.length > 0 || this.settings.tokens.length > 0;
  }

  private secret(ref: string): string {
    return resolveSecret(ref, this.secrets.env, this.secrets.baseDir).trim();
  }

  /** The person whose password this is, or a refusal (wrong password, unknown account, locked). */
  async login(
    user: string,
    password: string,
  ): Promise<{ ok: true; personId: string } | { ok: false; reason: string }> {
    const now = this.now();
    const locked = this.failures.get(user);
    if (locked && locked.until > now)
      return { ok: false, reason: 'Too many failed attempts; wait a minute and try again.' };
    const account = this.settings.accounts.find((a) => a.person === user);
    const stored = account
      ? account.passwordHash.startsWith('scrypt$')
        ? account.passwordHash
        : this.secret(account.passwordHash)
      : (this.decoy ??= await hashPassword(randomBytes(16).toString('hex')));
    const ok = (await verifyPassword(password, stored)) && account !== undefined;
    if (ok) {
      this.failures.delete(user);
      return { ok: true, personId: account.person };
    }
    const f = this.failures.get(user) ?? { count: 0, until: 0 };
    f.count++;
    if (f.count >= 5) {
      f.until = now + 60_000;
      f.count = 0;
    }
    this.failures.set(user, f);
    return { ok: false, reason: 'Unknown user or wrong password.' };
  }

  /** The person behind an API token (Authorization: Bearer …). */
  bearer(req: IncomingMessage): string | undefined {
    const header = req.headers.authorization;
    if (!header?.startsWith('Bearer ')) return undefined;
    const token = header.slice(7).trim();
    if (!token) return undefined;
    for (const t of this.settings.tokens) if (sameText(token, this.secret(t.token))) return t.person;
    return undefined;
  }

  private sign(text: string): string {
    if (!this.key) throw new Error('DashboardAuth.ready() was not awaited before signing');
    return createHmac('sha256', this.key).update(text).digest('base64url');
  }

  issue(personId: string): { cookie: string; session: Session } {
    const session = {
      personId,
      id: randomBytes(16).toString('base64url'),
      expires: this.now() + this.settings.sessionTtlMs,
    };
    const payload = Buffer.from(
      JSON.stringify({ p: session.personId, i: session.id, e: session.expires }),
    ).toString('base64url');
    return { cookie: this.cookie(`${payload}.${this.sign(payload)}`, session.expires), session };
  }

  cookie(value: string, expires: number): string {
    const attrs = [
      `${SESSION_COOKIE}=${value}`,
      'Path=/dashboard',
      'HttpOnly',
      'SameSite=Strict',
      `Max-Age=${Math.max(0, Math.floor((expires - this.now()) / 1000))}`,
    ];
    if (this.settings.secureCookies) attrs.push('Secure');
    return attrs.join('; ');
  }

  clearCookie(): string {
    return this.cookie('', this.now());
  }

  async session(req: IncomingMessage): Promise<Session | undefined> {
    const raw = cookies(req)[SESSION_COOKIE];
    if (!raw) return undefined;
    const dot = raw.lastIndexOf('.');
    if (dot < 0) return undefined;
    const payload = raw.slice(0, dot);
    if (!sameText(raw.slice(dot + 1), this.sign(payload))) return undefined;
    let parsed: { p?: unknown; i?: unknown; e?: unknown };
    try {
      parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof parsed;
    } catch {
      return undefined;
    }
    if (typeof parsed.p !== 'string' || typeof parsed.i !== 'string' || typeof parsed.e !== 'number')
      return undefined;
    if (parsed.e <= this.now()) return undefined;
    const session = { personId: parsed.p, id: parsed.i, expires: parsed.e };
    return (await this.store.isSignedOut(session.id)) ? undefined : session;
  }

  /** Sign the session out on every process sharing the store. */
  async revoke(session: Session): Promise<void> {
    await this.store.signOut(session.id, session.expires);
  }

  csrfToken(session: Session): string {
    return this.sign(`csrf:${session.id}`);
  }

  checkCsrf(session: Session, token: unknown): boolean {
    return typeof token === 'string' && token !== '' && sameText(token, this.csrfToken(session));
  }
}

export function cookies(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}
