import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, resolveSecret, type LoadedConfig } from '../runtime/config.ts';
import { ctemHome } from '../runtime/paths.ts';
import { STACK_FILE, type StackInfo } from '../runtime/stackInfo.ts';
import type { Client } from '@temporalio/client';
import type { Pool } from '../runtime/pool.ts';
import { UserError } from './errors.ts';
import type { Clock } from '../domain/clock.ts';
import { ClockSettingError, clockFromEnv } from '../runtime/clock.ts';

/** Options every command accepts. */
export interface GlobalOptions {
  config?: string;
}

export function load(opts: GlobalOptions): LoadedConfig {
  return loadConfig(opts.config);
}

/**
 * A running stack keeps Temporal's time (its workflows judge deadlines by it), so CTEM_NOW, meant for
 * one-shot commands, is refused rather than half applied.
 */
export function refuseFixedClock(command: string, env: NodeJS.ProcessEnv = process.env): void {
  if (env.CTEM_NOW?.trim())
    throw new UserError(
      `${command} runs on the real clock and CTEM_NOW is set (${env.CTEM_NOW.trim()}); unset it to start the stack`,
      2,
    );
}

/** What time it is for this command: the system clock, or the one CTEM_NOW sets (runtime/clock.ts). */
export function commandClock(env: NodeJS.ProcessEnv = process.env): Clock {
  try {
    return clockFromEnv(env);
  } catch (err) {
    if (err instanceof ClockSettingError) throw new UserError(err.message, 2);
    throw err;
  }
}

/** The running `ctem up` stack of this CTEM_HOME, if any (its process is alive). */
export function runningStack(home = ctemHome()): StackInfo | undefined {
  const file = path.join(home, STACK_FILE);
  if (!existsSync(file)) return undefined;
  const info = JSON.parse(readFileSync(file, 'utf8')) as StackInfo;
  try {
    process.kill(info.pid, 0);
    return info;
  } catch {
    return undefined;
  }
}

export interface OpenDatabase {
  pool: Pool;
  url: string;
  close(): Promise<void>;
}

/**
 * A migrated database for a one-shot command: DATABASE_URL / database.url when configured, the
 * embedded PostgreSQL of a running `ctem up`, or else the embedded PostgreSQL started just for this
 * command (same data directory, so the data is the same one `ctem up` uses).
 */
export async function openDatabase(
  loaded: LoadedConfig,
  env: NodeJS.ProcessEnv = process.env,
): Promise<OpenDatabase> {
  const home = ctemHome(env);
  // Loaded here, not at the top, so that commands that need no database start fast.
  const [{ createPool }, { migrate }, { ensureDatabase, startEmbeddedPostgres }] = await Promise.all([
    import('../runtime/pool.ts'),
    import('../runtime/migrate.ts'),
    import('../runtime/postgres.ts'),
  ]);
  let url: string;
  let stopServer: (() => Promise<void>) | undefined;
  if (loaded.config.database.url) {
    url = resolveSecret(loaded.config.database.url, env, loaded.baseDir);
  } else {
    const stack = runningStack(home);
    const credFile = path.join(home, 'postgres', 'credentials.json');
    if (stack?.databaseUrl.embedded && stack.databaseUrl.port && existsSync(credFile)) {
      const creds = JSON.parse(readFileSync(credFile, 'utf8')) as { user: string; password: string };
      url = `postgres://${encodeURIComponent(creds.user)}:${encodeURIComponent(creds.password)}@127.0.0.1:${stack.databaseUrl.port}/ctem`;
    } else {
      const server = await startEmbeddedPostgres({
        dataDir: path.join(home, 'postgres'),
        port: Number(env.CTEM_PG_PORT ?? 55432),
      });
      stopServer = server.stop;
      url = await ensureDatabase(server.url, 'ctem');
    }
  }
  const pool = createPool(url);
  try {
    await migrate(pool);
  } catch (err) {
    await pool.end();
    await stopServer?.();
    throw err;
  }
  return {
    pool,
    url,
    close: async () => {
      await pool.end();
      await stopServer?.();
    },
  };
}

/** A Temporal client: temporal.address when configured, else the dev server of a running `ctem up`. */
export async function openTemporalClient(
  loaded: LoadedConfig,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ client: Client; taskQueue: string; close(): Promise<void> }> {
  const address = loaded.config.temporal.address ?? runningStack(ctemHome(env))?.temporal.address;
  if (!address)
    throw new UserError(
      'Temporal is not running: start `ctem up` in another terminal, or set temporal.address in ctem.yaml',
    );
  // Loaded here, not at the top: most commands never talk to Temporal, and its client is slow to load.
  const [{ Client }, { connectClient }] = await Promise.all([
    import('@temporalio/client'),
    import('../runtime/temporalConnection.ts'),
  ]);
  const connection = await connectClient(loaded.config, address, loaded.baseDir);
  return {
    client: new Client({ connection, namespace: loaded.config.temporal.namespace }),
    taskQueue: loaded.config.temporal.taskQueue,
    close: () => connection.close(),
  };
}
