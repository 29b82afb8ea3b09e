// A connector's context for tests: this file's database, a parsed ctem.yaml, silent logs.
import { pino } from 'pino';
import { configSchema, type Config } from '../../domain/config.ts';
import type { ConnectorContext } from '../../scanners/connectors/ingestRun.ts';
import type { Pool } from '../../db/pool.ts';
import { systemClock } from '../../runtime/clock.ts';

export function connectorContext(
  pool: Pool,
  config: unknown,
  baseDir = process.cwd(),
): ConnectorContext & { config: Config } {
  return {
    config: configSchema.parse(config),
    deps: {
      pool,
      config: configSchema.parse(config),
      baseDir,
      log: pino({ level: 'silent' }),
      workerName: 'test',
      clock: systemClock,
    },
  };
}
