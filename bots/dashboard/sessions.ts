// Where dashboard sessions are shared: the key that signs their cookies and the sessions signed out
// before they expire. In PostgreSQL for a running ctem, so that a cookie issued by one process is
// honoured by every other behind the same address and a sign-out holds on all of them; in memory for
// a single process (and the tests of the dashboard's own rules).
import { randomBytes } from 'node:crypto';
import type { Pool } from '../../runtime/pool.ts';

export interface SessionStore {
  /** The signing key every process shares (used when dashboard.sessionSecret is not set). */
  key(): Promise<Buffer>;
  signOut(sessionId: string, expires: number): Promise<void>;
  isSignedOut(sessionId: string): Promise<boolean>;
}

export function memorySessionStore(now: () => number = Date.now): SessionStore {
  const key = randomBytes(32);
  const out = new Map<string, number>();
  return {
    key: async () => key,
    signOut: async (id, expires) => {
      const t = now();
      for (const [k, until] of out) if (until <= t) out.delete(k);
      out.set(id, expires);
    },
    isSignedOut: async (id) => out.has(id),
  };
}

export function postgresSessionStore(pool: Pool): SessionStore {
  let key: Promise<Buffer> | undefined;
  return {
    key: () =>
      (key ??= (async () => {
        // The first process to ask makes the key; every other reads that one.
        await pool.query(
          'insert into dashboard_session_key (singleton, key) values (true, $1) on conflict do nothing',
          [randomBytes(32)],
        );
        const { rows } = await pool.query<{ key: Buffer }>('select key from dashboard_session_key');
        return rows[0]!.key;
      })().catch((err: unknown) => {
        key = undefined;
        throw err;
      })),
    signOut: async (id, expires) => {
      await pool.query('delete from dashboard_signed_out where expires_at < now()');
      await pool.query(
        'insert into dashboard_signed_out (session_id, expires_at) values ($1, $2) on conflict do nothing',
        [id, new Date(expires)],
      );
    },
    isSignedOut: async (id) =>
      (await pool.query('select 1 from dashboard_signed_out where session_id = $1', [id])).rowCount !== 0,
  };
}
