import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.ts';
import type { Config, Scope } from '../domain/config.ts';
import type { Integrations } from '../domain/ports.ts';
import type { Pool } from './pool.ts';

/**
 * What the product's code runs with: the database, the configuration, the clock and the
 * integrations. The composition root (app/compose.ts) builds one per process and hands it down to
 * the activities, the bots and the commands.
 */
export interface Deps {
  pool: Pool;
  config: Config;
  /** Folder that relative paths in the config resolve against. */
  baseDir: string;
  log: Logger;
  /** Name of this worker process, for records. */
  workerName: string;
  /** What time it is for activities that judge time (runtime/clock.ts systemClock in production). */
  clock: Clock;
  /** The ticket systems, patch executors, scan connectors, notifiers and jobs ctem.yaml configures. */
  integrations: Integrations;
}

/** What an integration is built from (a factory of app/integrations.ts): the scope it serves, if any. */
export interface IntegrationContext {
  config: Config;
  /** The scope the call is for (undefined for notifiers, which serve every scope). */
  scope?: Scope;
  deps: Deps;
}
