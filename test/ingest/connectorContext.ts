// A connector's context for tests: this file's database, a parsed ctem.yaml, silent logs.
import { configSchema, type Config } from '../../domain/config.ts';
import type { ConnectorContext } from '../../discovery/ingestRun.ts';
import type { Pool } from '../../runtime/pool.ts';
import { testDeps } from '../support/deps.ts';

export function connectorContext(
  pool: Pool,
  config: unknown,
  baseDir = process.cwd(),
): ConnectorContext & { config: Config } {
  return {
    config: configSchema.parse(config),
    deps: testDeps({ pool, config: configSchema.parse(config), baseDir }),
  };
}
