import type { Command } from 'commander';
import { load, openDatabase, type GlobalOptions } from '../context.ts';
import { migrate } from '../../runtime/migrate.ts';

export function defineDb(db: Command): void {
  db.command('migrate')
    .description('apply pending schema migrations')
    .action(async (_opts: unknown, cmd: Command) => {
      const loaded = load(cmd.optsWithGlobals<GlobalOptions>());
      // openDatabase migrates already; report what the second pass sees for a precise message.
      const database = await openDatabase(loaded);
      try {
        const { rows } = await database.pool.query<{ name: string }>(
          'select name from schema_migrations order by version',
        );
        const again = await migrate(database.pool);
        process.stdout.write(`schema at version ${again.current}: ${rows.map((r) => r.name).join(', ')}\n`);
      } finally {
        await database.close();
      }
    });
}
