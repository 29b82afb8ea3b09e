import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, inject } from 'vitest';
import { createPool, type Pool } from '../../runtime/pool.ts';

export interface TestDatabase {
  pool: Pool;
  url: string;
  name: string;
}

/**
 * A fresh database for one test file, cloned from the run's migrated template (fast: a file copy on
 * the server). Dropped after the file's tests.
 */
export async function testDatabase(): Promise<TestDatabase> {
  const serverUrl = inject('pgServerUrl');
  const template = inject('pgTemplate');
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name} template ${template}`);
  } finally {
    await admin.end();
  }
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const pool = createPool(url, 10);
  // Every file shares one Temporal namespace, and workflow ids derive from asset ids
  // (exposure-<asset>:<weakness>, patch-<unit>). Start this database's asset ids at a random offset so
  // two files' exposures never name the same workflow (a collision signals another file's workflow,
  // whose worker is gone: "no poller seen for task queue").
  await pool.query(`select setval('assets_id_seq', $1, false)`, [
    100_000 + (randomBytes(4).readUInt32BE() % 900_000_000),
  ]);
  // Campaign ids hash the installation's id (db/migrations/016_installation.sql), which the clone
  // copied from the template: give each database its own, or two files' campaigns of the same fix
  // share one workflow id.
  await pool.query('update installation set id = $1', [randomBytes(8).toString('hex')]);
  afterAll(async () => {
    await pool.end();
    const c = new pg.Client({ connectionString: serverUrl });
    await c.connect();
    await c.query(`drop database if exists ${name} with (force)`).catch(() => undefined);
    await c.end();
  });
  return { pool, url, name };
}
