import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.ts';
import type { Config } from '../domain/config.ts';
import type { Pool } from '../db/pool.ts';

/** What activity implementations are built from. The worker builds it once per process. */
export interface ActivityDeps {
  pool: Pool;
  config: Config;
  /** Folder that relative paths in the config resolve against. */
  baseDir: string;
  log: Logger;
  /** Name of this worker process, for records. */
  workerName: string;
  /** What time it is for activities that judge time (runtime/clock.ts systemClock in production). */
  clock: Clock;
}
