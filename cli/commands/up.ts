import type { Command } from 'commander';
import { load, refuseFixedClock, type GlobalOptions } from '../context.ts';
import { UserError } from '../errors.ts';
import type { CliServices } from '../services.ts';
import { ctemHome } from '../../runtime/paths.ts';
import { createLogger } from '../../runtime/log.ts';

export function defineUp(cmd: Command, services: CliServices): void {
  cmd.option(
    '--temporal <engine>',
    'without temporal.address: start the CLI dev server (dev, SQLite) or the real Temporal server on PostgreSQL (server); default temporal.embedded',
  );
  cmd.action(async (opts: { temporal?: string }, cmd: Command) => {
    refuseFixedClock('ctem up');
    const loaded = load(cmd.optsWithGlobals<GlobalOptions>());
    if (opts.temporal !== undefined) {
      if (opts.temporal !== 'dev' && opts.temporal !== 'server')
        throw new UserError(`--temporal takes dev or server, not ${JSON.stringify(opts.temporal)}`, 2);
      if (loaded.config.temporal.address)
        throw new UserError(
          `--temporal ${opts.temporal} starts a Temporal of its own, and temporal.address (${loaded.config.temporal.address}) points at one already; drop one of them`,
          2,
        );
      loaded.config.temporal.embedded = opts.temporal;
    }
    const log = createLogger('ctem', process.env.CTEM_LOG_LEVEL ?? 'warn');
    const started = Date.now();
    const say = (line: string) => process.stderr.write(`ctem: ${line}\n`);
    const stack = await services.startStack({
      config: loaded.config,
      baseDir: loaded.baseDir,
      home: ctemHome(),
      log,
      onProgress: (s) => say(`${s}…`),
    });
    const { info } = stack;
    say(`up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    say(`  HTTP       http://${info.http.host}:${info.http.port}  (/healthz, /readyz)`);
    if (info.metrics) say(`  metrics    http://${info.metrics.host}:${info.metrics.port}/metrics`);
    const engine =
      info.temporal.engine === 'server'
        ? ' (Temporal server on PostgreSQL)'
        : info.temporal.engine === 'dev'
          ? ' (dev server)'
          : ' (external)';
    say(
      `  Temporal   ${info.temporal.address}${engine} namespace ${info.temporal.namespace}${info.temporal.uiUrl ? `  UI ${info.temporal.uiUrl}` : ''}`,
    );
    say(
      `  PostgreSQL ${info.databaseUrl.embedded ? `embedded on 127.0.0.1:${info.databaseUrl.port}` : 'external (DATABASE_URL)'}`,
    );
    say(`  state in   ${ctemHome()}`);
    say('press Ctrl-C to stop');
    await new Promise<void>((resolve) => {
      let stopping = false;
      const onSignal = (signal: NodeJS.Signals) => {
        if (stopping) {
          say(`second ${signal}: exiting now`);
          process.exit(130);
        }
        stopping = true;
        say(`${signal} received, stopping…`);
        stack.stop().then(
          () => {
            say('stopped');
            resolve();
          },
          (err: unknown) => {
            say(`stop failed: ${(err as Error).message}`);
            resolve();
          },
        );
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    });
  });
}
