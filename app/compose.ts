// The composition root: from the configuration and the process's database pool, the one set of
// dependencies everything else runs with — the clock, the chat runtime (when Slack or Teams is
// configured) and the integrations of app/integrations.ts. `ctem up`, the CLI commands that need
// integrations, the benchmarks and the tests all build theirs here; nothing else keeps a registry
// or a runtime of its own.
import os from 'node:os';
import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.ts';
import type { Config } from '../domain/config.ts';
import type { Pool } from '../runtime/pool.ts';
import { ChatRuntime } from '../chat/runtime.ts';
import type { OutboxOptions } from '../chat/outbox.ts';
import { systemClock } from '../runtime/clock.ts';
import type { Deps } from '../runtime/deps.ts';
import { builtInRegistry, integrationsOf, type IntegrationRegistry } from './integrations.ts';

export interface ComposeOptions {
  pool: Pool;
  config: Config;
  /** Folder that relative paths in the config resolve against. */
  baseDir: string;
  /** The process's logger: the code gets a child with part "worker", the chat runtime one with "chat". */
  log: Logger;
  /** Name of this process in records (default host:pid). */
  workerName?: string;
  clock?: Clock;
  env?: NodeJS.ProcessEnv;
  /** Adds or replaces implementations (tests and benchmarks register their own). */
  registry?: (builtIn: IntegrationRegistry) => IntegrationRegistry;
  /** The chat runtime's outbox settings (tests shorten its waits). */
  outbox?: OutboxOptions;
}

export interface Composition {
  deps: Deps;
  /** The process's chat runtime, when integrations.slack or integrations.teams is configured. */
  chat?: ChatRuntime;
  /** Stops the chat runtime's sweeper and closes its pool. */
  stop(): void;
}

export function compose(opts: ComposeOptions): Composition {
  const { config } = opts;
  const chat =
    config.integrations.slack !== undefined || config.integrations.teams !== undefined
      ? new ChatRuntime({
          config,
          pool: opts.pool,
          log: opts.log.child({ part: 'chat' }),
          baseDir: opts.baseDir,
          ...(opts.env ? { env: opts.env } : {}),
          ...(opts.outbox ? { outbox: opts.outbox } : {}),
        })
      : undefined;
  chat?.start();
  const builtIn = builtInRegistry(chat);
  const registry = opts.registry ? opts.registry(builtIn) : builtIn;
  const deps: Deps = {
    pool: opts.pool,
    config,
    baseDir: opts.baseDir,
    log: opts.log.child({ part: 'worker' }),
    workerName: opts.workerName ?? `${os.hostname()}:${process.pid}`,
    clock: opts.clock ?? systemClock,
    integrations: integrationsOf(() => deps, registry, chat),
  };
  return { deps, ...(chat ? { chat } : {}), stop: () => chat?.stop() };
}
