import pg from 'pg';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

// bigint (int8) and numeric come back as strings by default; counts and ids here fit in a double.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number(v));

export function createPool(url: string, max = 10): Pool {
  const pool = new pg.Pool({ connectionString: url, max, application_name: 'ctem' });
  // A client losing its connection (a server restart) must not crash the process: an idle one is
  // dropped by the pool (its 'error'); one checked out (pg-pool then removes its idle listener) fails
  // its next query, so the work it was doing fails and is retried, and it is dropped on release.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/** Run fn in one transaction; rolled back on any error. */
export async function inTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('begin');
    const result = await fn(client);
    await client.query('commit');
    return result;
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    // An error from the server (it has a severity) leaves the connection usable; any other (the
    // connection broke) means the client is not put back for reuse.
    if (err instanceof Error && !('severity' in err)) broken = err;
    throw err;
  } finally {
    client.release(broken);
  }
}
