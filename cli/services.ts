// What the commands need from the composition root (app/), which hands it to cli/main.ts: the
// dependencies with their integrations, the whole stack, the demo and the doctor. The CLI depends
// on these shapes only; app/main.ts implements them, loading each part when it is first used.
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.ts';
import type { Config } from '../domain/config.ts';
import type { ExposureState } from '../domain/exposure.ts';
import type { Pool } from '../runtime/pool.ts';
import type { Deps } from '../runtime/deps.ts';
import type { StackInfo } from '../runtime/stackInfo.ts';

export type CheckStatus = 'ok' | 'fail' | 'skip';

export interface DoctorCheck {
  /** "config", "postgresql", "temporal", "jira", "ssh:web-01"… */
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a failure. */
  advice?: string;
}

export interface DoctorOptions {
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  /** The database of a running `ctem up` when ctem.yaml names none. */
  databaseUrl?: string;
  /** The Temporal address of a running `ctem up` when ctem.yaml names none. */
  temporalAddress?: string;
  /** Per check. */
  timeoutMs?: number;
}

export interface StackOptions {
  config: Config;
  baseDir: string;
  home: string;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  onProgress?: (step: string) => void;
}

export interface RunningStack {
  info: StackInfo;
  pool: Pool;
  client: Client;
  deps: Deps;
  stop(): Promise<void>;
}

export interface DemoOptions {
  /** Keep the scratch folder (database and Temporal state) for a look afterwards. */
  keep?: boolean;
  out?: (line: string) => void;
  /** How long to wait for each step before giving up. */
  stepTimeoutMs?: number;
}

export interface DemoResult {
  exposures: { id: string; state: ExposureState; priority: string; exposureSeconds: number | null }[];
  home: string;
}

export interface ComposedDeps {
  deps: Deps;
  /** Stops what the composition started (the chat runtime). */
  stop(): void;
}

export interface CliServices {
  /** The dependencies of a one-shot command that dispatches, notifies or posts (app/compose.ts). */
  compose(opts: {
    pool: Pool;
    config: Config;
    baseDir: string;
    log: Logger;
    clock: Clock;
  }): Promise<ComposedDeps>;
  startStack(opts: StackOptions): Promise<RunningStack>;
  runDemo(opts: DemoOptions): Promise<DemoResult>;
  runDoctor(opts: DoctorOptions): Promise<DoctorCheck[]>;
}
