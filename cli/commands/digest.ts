// `ctem digest [--week YYYY-Www] [--out FILE]`: render the weekly CISO digest from the database as
// a standalone HTML page (charts included, no external resource). --format picks the e-mail, the
// plain text or the figures as JSON instead; --send delivers it through the configured channels
// now, as the Temporal Schedule does on its weekday (each channel once per week).
import { existsSync, statSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { createLogger } from '../../runtime/log.ts';
import { DigestConfigError, digestSettings } from '../../reporting/config.ts';
import { configuredChannels, deliverDigest } from '../../reporting/delivery.ts';
import { renderDigestEmail, renderDigestPage } from '../../reporting/render.ts';
import { buildDigest } from '../../reporting/report.ts';
import { parseWeek, previousWeek, weekContaining } from '../../reporting/week.ts';
import { commandClock, load, openDatabase, type GlobalOptions } from '../context.ts';
import { UserError } from '../errors.ts';
import type { CliServices } from '../services.ts';

const formats = ['html', 'email', 'text', 'json'] as const;
type Format = (typeof formats)[number];

interface DigestOptions {
  week?: string;
  out?: string;
  format: string;
  send?: boolean;
}

export function defineDigest(cmd: Command, services: CliServices): void {
  cmd
    .option('--week <YYYY-Www>', 'the ISO week to report, e.g. 2026-W47 ("current" for the week so far)')
    .option('--out <file>', 'write to this file instead of standard output')
    .option('--format <format>', `html (page with charts), email (the e-mail's HTML), text or json`, 'html')
    .option('--send', 'also send it now through the channels configured under digest: in ctem.yaml')
    .action(async (opts: DigestOptions, cmd: Command) => {
      if (!(formats as readonly string[]).includes(opts.format))
        throw new UserError(`--format ${opts.format} is not known; use one of ${formats.join(', ')}`, 2);
      const loaded = load(cmd.optsWithGlobals<GlobalOptions>());
      let settings;
      try {
        settings = digestSettings(loaded.config);
      } catch (err) {
        if (err instanceof DigestConfigError) throw new UserError(err.message, 2);
        throw err;
      }
      const clock = commandClock();
      const now = new Date(clock());
      const week =
        opts.week === undefined
          ? previousWeek(now, settings.timezone)
          : opts.week === 'current'
            ? weekContaining(now, settings.timezone)
            : parseWeek(opts.week, settings.timezone);
      if (!week)
        throw new UserError(`--week ${opts.week} is not an ISO week; write it as YYYY-Www, e.g. 2026-W47`, 2);
      if (week.start.getTime() > now.getTime())
        throw new UserError(`--week ${week.label} has not started yet; pick a past or the current week`, 2);
      if (opts.out) {
        // Said before any work, in one sentence, rather than as ENOENT on a temporary file at the end.
        const dir = path.dirname(path.resolve(opts.out));
        if (!existsSync(dir) || !statSync(dir).isDirectory())
          throw new UserError(
            `--out ${opts.out}: the folder ${dir} does not exist; create it first (nothing was written)`,
            2,
          );
      }
      const db = await openDatabase(loaded);
      try {
        const report = await buildDigest(db.pool, loaded.config, week, {
          now,
          ...(settings.dashboardUrl ? { dashboardUrl: settings.dashboardUrl } : {}),
        });
        const format = opts.format as Format;
        const body =
          format === 'html'
            ? renderDigestPage(report)
            : format === 'email'
              ? renderDigestEmail(report).html
              : format === 'text'
                ? renderDigestEmail(report).text
                : `${JSON.stringify(report, null, 2)}\n`;
        if (opts.out) {
          // Written beside the target and renamed, so a reader never sees half a file.
          const target = path.resolve(opts.out);
          const partial = `${target}.${process.pid}.partial`;
          try {
            await writeFile(partial, body);
            await rename(partial, target);
          } catch (err) {
            await rm(partial, { force: true });
            const code = (err as NodeJS.ErrnoException).code ?? String(err);
            throw new UserError(`--out ${opts.out}: the digest could not be written there (${code})`, 1);
          }
          process.stderr.write(
            `ctem: digest ${week.label} written to ${opts.out} (health ${report.health.score}, ${report.health.delta >= 0 ? '+' : ''}${report.health.delta} vs last week)\n`,
          );
        } else process.stdout.write(body);
        if (opts.send) {
          if (configuredChannels(settings).length === 0)
            throw new UserError(
              'nothing to send: configure digest.email, digest.slack or digest.teams in ctem.yaml',
              2,
            );
          const log = createLogger('ctem-digest', process.env.CTEM_LOG_LEVEL ?? 'warn');
          // The chat bots' transports, for digest.slack.channel and digest.teams.conversation.
          const composed = await services.compose({
            pool: db.pool,
            config: loaded.config,
            baseDir: loaded.baseDir,
            log,
            clock,
          });
          let outcomes;
          try {
            const { chat } = composed.deps.integrations;
            outcomes = await deliverDigest(
              {
                pool: db.pool,
                config: loaded.config,
                baseDir: loaded.baseDir,
                log,
                ...(chat ? { chat } : {}),
              },
              report,
            );
          } finally {
            composed.stop();
          }
          for (const o of outcomes) process.stderr.write(`ctem: ${o.channel}: ${o.status}: ${o.detail}\n`);
          if (outcomes.some((o) => o.status === 'failed')) process.exitCode = 1;
        }
      } finally {
        await db.close();
      }
    });
}
