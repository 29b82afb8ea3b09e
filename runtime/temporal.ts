import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { Connection } from '@temporalio/client';
import { supervise } from './child.ts';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { bundledBinDir } from './paths.ts';
import { isPortFree, PortInUseError, waitForPort } from './ports.ts';

/** The Temporal CLI release the project pins (installed by `npm run setup`). */
export const TEMPORAL_CLI_VERSION = '1.5.1';

/** Search attributes registered when the dev server starts (for list filters; no workflow sets them yet). */
export const SEARCH_ATTRIBUTES: Record<string, 'Keyword' | 'Datetime' | 'Double'> = {
  CtemScope: 'Keyword',
  CtemState: 'Keyword',
  CtemPriority: 'Keyword',
  CtemSlaDue: 'Datetime',
};

/**
 * Find a Temporal CLI: $CTEM_TEMPORAL_BIN, the one `npm run setup` installed under .ctem/bin, or one
 * on PATH. Returns undefined when there is none.
 */
export function findTemporalBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = [env.CTEM_TEMPORAL_BIN, path.join(bundledBinDir, 'temporal')].filter(
    (c): c is string => !!c,
  );
  for (const c of candidates) if (existsSync(c)) return c;
  const probe = spawnSync('temporal', ['--version'], { encoding: 'utf8' });
  if (probe.status === 0) return 'temporal';
  return undefined;
}

export class MissingTemporalError extends Error {
  constructor() {
    super(
      'The Temporal CLI was not found: run `npm run setup` to build the pinned one into .ctem/bin, put `temporal` on PATH, set CTEM_TEMPORAL_BIN, or point temporal.address in ctem.yaml at a running cluster',
    );
    this.name = 'MissingTemporalError';
  }
}

export interface RunningTemporal {
  address: string;
  uiUrl?: string;
  /** The server process when we spawned the CLI ourselves. */
  process?: ChildProcess;
  stop(): Promise<void>;
}

export interface DevServerOptions {
  port: number;
  /** Persistent state file; omit for an in-memory server (tests). */
  dbFile?: string;
  uiPort?: number;
  headless?: boolean;
  namespace?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'never';
  onOutput?: (line: string) => void;
}

/** Start `temporal server start-dev` on loopback and wait until its frontend answers. */
export async function startTemporalDevServer(opts: DevServerOptions): Promise<RunningTemporal> {
  const bin = findTemporalBinary();
  if (!(await isPortFree(opts.port))) {
    throw new PortInUseError(
      'Temporal',
      '127.0.0.1',
      opts.port,
      'set CTEM_TEMPORAL_PORT to a free port or temporal.address to use a running server',
    );
  }
  if (opts.uiPort !== undefined && !opts.headless && !(await isPortFree(opts.uiPort))) {
    throw new PortInUseError(
      'The Temporal UI',
      '127.0.0.1',
      opts.uiPort,
      'set CTEM_TEMPORAL_UI_PORT to a free port',
    );
  }
  if (!bin) return await startDownloadedDevServer(opts);
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(opts.port),
    '--log-level',
    opts.logLevel ?? 'warn',
  ];
  if (opts.dbFile) {
    await mkdir(path.dirname(opts.dbFile), { recursive: true });
    args.push('--db-filename', opts.dbFile);
    // Write-ahead logging: one fsync per commit instead of the rollback journal's several, and
    // synchronous=full keeps every commit durable. Measured on the fan-out benchmark's start path:
    // ~50 → ~160 workflow starts/s on the same machine.
    args.push('--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=full');
  }
  if (opts.headless) args.push('--headless');
  else if (opts.uiPort !== undefined) args.push('--ui-port', String(opts.uiPort));
  if (opts.namespace && opts.namespace !== 'default') args.push('--namespace', opts.namespace);
  for (const [k, v] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${k}=${v}`);

  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const { output, exited, stop } = supervise(child, opts.onOutput);

  const ready = waitForPort(opts.port, '127.0.0.1', 60_000).then(() => 'ready' as const);
  const outcome = await Promise.race([ready, exited.then(() => 'exited' as const)]);
  if (outcome === 'exited') {
    throw new Error(
      `the Temporal dev server exited during start: ${output.join('').trim().split('\n').slice(-5).join(' | ')}`,
    );
  }
  // The port opens slightly before the frontend serves; probe with a real RPC.
  await waitForNamespace(`127.0.0.1:${opts.port}`, opts.namespace ?? 'default', 30_000);

  let stopping: Promise<void> | undefined;
  return {
    address: `127.0.0.1:${opts.port}`,
    uiUrl: opts.headless ? undefined : `http://127.0.0.1:${opts.uiPort ?? opts.port + 1000}`,
    process: child,
    stop: () => (stopping ??= stop(10_000)),
  };
}

/**
 * Call `fn` on a fresh connection to the frontend until it succeeds (the server may still be starting),
 * pausing `pauseMs` between tries; after `timeoutMs`, one error saying what did not happen.
 */
export async function untilTemporalAnswers<T>(
  address: string,
  timeoutMs: number,
  fn: (conn: Connection) => Promise<T>,
  opts: { pauseMs?: number; what?: string } = {},
): Promise<T> {
  const client = await import('@temporalio/client');
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const conn = await client.Connection.connect({ address, connectTimeout: 2_000 });
      try {
        return await fn(conn);
      } finally {
        await conn.close();
      }
    } catch (err) {
      lastError = err;
      await new Promise((r) => setTimeout(r, opts.pauseMs ?? 250));
    }
  }
  throw new Error(
    `Temporal at ${address} did not ${opts.what ?? 'answer'} within ${timeoutMs} ms: ${String(lastError)}`,
  );
}

/** Wait until the namespace can be described through a real gRPC call. */
export async function waitForNamespace(address: string, namespace: string, timeoutMs: number): Promise<void> {
  await untilTemporalAnswers(
    address,
    timeoutMs,
    async (conn) => {
      await conn.workflowService.describeNamespace({ namespace });
    },
    { what: `serve namespace ${namespace}` },
  );
}

/**
 * Last resort when no CLI is installed: @temporalio/testing downloads the dev server into .ctem/bin
 * and runs it with the same options. Where the download is impossible (no network), one clear error.
 */
async function startDownloadedDevServer(opts: DevServerOptions): Promise<RunningTemporal> {
  if (process.env.CTEM_TEMPORAL_DOWNLOAD === '0') throw new MissingTemporalError();
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const extraArgs = ['--log-level', opts.logLevel ?? 'warn'];
  for (const [k, v] of Object.entries(SEARCH_ATTRIBUTES)) extraArgs.push('--search-attribute', `${k}=${v}`);
  let env: Awaited<ReturnType<typeof TestWorkflowEnvironment.createLocal>>;
  try {
    env = await TestWorkflowEnvironment.createLocal({
      server: {
        ip: '127.0.0.1',
        port: opts.port,
        dbFilename: opts.dbFile,
        ui: !opts.headless,
        uiPort: opts.headless ? undefined : opts.uiPort,
        namespace: opts.namespace ?? 'default',
        extraArgs,
        executable: { type: 'cached-download', downloadDir: bundledBinDir },
      },
    });
  } catch (err) {
    throw new Error(
      `${new MissingTemporalError().message} (downloading one failed too: ${(err as Error).message})`,
      { cause: err },
    );
  }
  let stopping: Promise<void> | undefined;
  return {
    address: `127.0.0.1:${opts.port}`,
    uiUrl: opts.headless ? undefined : `http://127.0.0.1:${opts.uiPort ?? opts.port + 1000}`,
    stop: () => (stopping ??= env.teardown()),
  };
}
