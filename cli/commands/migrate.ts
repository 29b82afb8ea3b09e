import type { Command } from 'commander';
import { commandClock, load, openDatabase, openTemporalClient, type GlobalOptions } from '../context.ts';
import type { CliServices } from '../services.ts';
import { createLogger } from '../../runtime/log.ts';

export function defineMigrate(cmd: Command, services: CliServices): void {
  cmd
    .command('lifecycles')
    .description(
      'move the lifecycles of the previous release (one workflow per exposure) into campaigns; `ctem up` does it at start',
    )
    .option('--json', 'print a JSON summary on stdout')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const loaded = load(command.optsWithGlobals<GlobalOptions>());
      const db = await openDatabase(loaded);
      const temporal = await openTemporalClient(loaded);
      const composed = await services.compose({
        pool: db.pool,
        config: loaded.config,
        baseDir: loaded.baseDir,
        log: createLogger('ctem-migrate', process.env.CTEM_LOG_LEVEL ?? 'warn'),
        clock: commandClock(),
      });
      try {
        const { migrateLegacyLifecycles } = await import('../../lifecycle/migrateLegacy.ts');
        const r = await migrateLegacyLifecycles(composed.deps, temporal.client, {
          taskQueue: temporal.taskQueue,
          onProgress: (done, total) => process.stderr.write(`\r${done}/${total} lifecycles`),
        });
        if (r.found) process.stderr.write('\n');
        if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
        else
          process.stdout.write(
            r.found === 0
              ? 'no lifecycle of the previous release is running: nothing to move\n'
              : `${r.found} lifecycle(s) of the previous release: ${r.moved} moved into campaigns (${r.campaigns} campaign workflow(s) started or told), ${r.closed} closed ones ended${r.orphans.length ? `, ${r.orphans.length} without an exposure row ended: ${r.orphans.join(', ')}` : ''}\n`,
          );
      } finally {
        composed.stop();
        await temporal.close();
        await db.close();
      }
    });
}
