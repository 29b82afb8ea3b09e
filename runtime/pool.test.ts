// The pool on a real PostgreSQL whose server ends a connection (as a restart does): the process
// lives on, the work on that connection fails (to be retried), and the pool serves new work.
import { describe, expect, it } from 'vitest';
import { testDatabase } from '../test/support/db.ts';
import { createPool, inTransaction } from './pool.ts';

describe('the database pool', () => {
  it('survives the server ending a connection that is checked out, and drops it', async () => {
    const db = await testDatabase();
    const pool = createPool(db.url, 2);
    try {
      const uncaught: unknown[] = [];
      const onUncaught = (err: unknown) => uncaught.push(err);
      process.on('uncaughtException', onUncaught);
      try {
        const pid = await inTransaction(pool, async (client) => {
          const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
          return rows[0]!.pid;
        });
        // A transaction in progress when the server ends its connection.
        const failed = inTransaction(pool, async (client) => {
          await client.query('select pg_backend_pid()');
          await db.pool.query('select pg_terminate_backend($1)', [pid]);
          await new Promise((r) => setTimeout(r, 300));
          await client.query('select 1');
        });
        await expect(failed).rejects.toThrow(/terminat|Connection|not queryable/i);
        expect(uncaught).toEqual([]);
        // The pool goes on with a new connection.
        const { rows } = await pool.query<{ pid: number }>('select pg_backend_pid() as pid');
        expect(rows[0]!.pid).not.toBe(pid);
      } finally {
        process.off('uncaughtException', onUncaught);
      }
    } finally {
      await pool.end();
    }
  });
});
