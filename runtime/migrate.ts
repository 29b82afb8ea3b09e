import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { Pool } from './pool.ts';
import { projectRoot } from './paths.ts';

const migrationsDir = path.join(projectRoot, 'db', 'migrations');

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export async function listMigrations(): Promise<Migration[]> {
  const files = (await readdir(migrationsDir)).filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return await Promise.all(
    files.map(async (f) => {
      const sql = await readFile(path.join(migrationsDir, f), 'utf8');
      return {
        version: Number(f.slice(0, 3)),
        name: f.replace(/\.sql$/, ''),
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      };
    }),
  );
}

export interface MigrateResult {
  applied: string[];
  current: number;
}

/**
 * Apply pending migrations, each in its own transaction, under an advisory lock so two processes
 * starting at once do not race. An applied migration whose file changed since is an error: a
 * schema must never silently differ from what its version says.
 */
export async function migrate(pool: Pool): Promise<MigrateResult> {
  const migrations = await listMigrations();
  const client = await pool.connect();
  try {
    await client.query('select pg_advisory_lock(7426001)');
    await client.query(`create table if not exists schema_migrations (
      version integer primary key, name text not null, checksum text not null, applied_at timestamptz not null default now())`);
    const done = new Map<number, { name: string; checksum: string }>(
      (
        await client.query<{ version: number; name: string; checksum: string }>(
          'select version, name, checksum from schema_migrations',
        )
      ).rows.map((r) => [r.version, r]),
    );
    const applied: string[] = [];
    for (const m of migrations) {
      const prior = done.get(m.version);
      if (prior) {
        if (prior.checksum !== m.checksum)
          throw new Error(
            `migration ${m.name} was changed after it was applied to this database; add a new migration instead`,
          );
        continue;
      }
      await client.query('begin');
      try {
        await client.query(m.sql);
        await client.query('insert into schema_migrations (version, name, checksum) values ($1, $2, $3)', [
          m.version,
          m.name,
          m.checksum,
        ]);
        await client.query('commit');
      } catch (err) {
        await client.query('rollback');
        throw new Error(`migration ${m.name} failed: ${(err as Error).message}`, { cause: err });
      }
      applied.push(m.name);
    }
    return { applied, current: migrations.at(-1)?.version ?? 0 };
  } finally {
    await client.query('select pg_advisory_unlock(7426001)').catch(() => undefined);
    client.release();
  }
}
