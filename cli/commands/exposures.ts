// `ctem exposures list` — the queue; `ctem exposure show ID` — one exposure and its timeline. Both
// read the lifecycle's record in PostgreSQL (the workflows write it), so they work whether or not
// the stack is running.
import type { Command } from 'commander';
import { exposureStates } from '../../domain/exposure.ts';
import { exposureTimeline, listExposures } from '../../lifecycle/queries.ts';
import { load, openDatabase, type GlobalOptions } from '../context.ts';
import { UserError } from '../errors.ts';

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3_600);
  const m = Math.floor((seconds % 3_600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${Math.round(seconds % 60)}s`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return (
    rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') +
    '\n'
  );
}

export function defineExposures(exposures: Command): void {
  exposures
    .command('list')
    .description('open exposures, most urgent first (every state with --all)')
    .option('--state <state>', `only this state (${exposureStates.join(', ')})`)
    .option('--scope <scope>', 'only this scope')
    .option('--owner <person>', 'only this owner')
    .option('--all', 'include closed exposures (resolved, false positive, retired)')
    .option('--limit <n>', 'at most this many', '200')
    .option('--json', 'machine-readable output')
    .action(
      async (
        opts: {
          state?: string;
          scope?: string;
          owner?: string;
          all?: boolean;
          limit: string;
          json?: boolean;
        },
        cmd: Command,
      ) => {
        if (opts.state && !(exposureStates as readonly string[]).includes(opts.state))
          throw new UserError(
            `--state ${opts.state} is not a state; use one of ${exposureStates.join(', ')}`,
            2,
          );
        const limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1)
          throw new UserError('--limit must be a positive whole number', 2);
        const db = await openDatabase(load(cmd.optsWithGlobals<GlobalOptions>()));
        try {
          const rows = await listExposures(db.pool, { ...opts, limit });
          if (opts.json) {
            process.stdout.write(`${JSON.stringify(rows)}\n`);
            return;
          }
          if (rows.length === 0) {
            process.stdout.write('no exposures\n');
            return;
          }
          process.stdout.write(
            table([
              ['ID', 'STATE', 'PRIORITY', 'CVSS', 'SLA DUE', 'OWNER', 'SCOPE', 'ASSET'],
              ...rows.map((r) => [
                r.id,
                r.state,
                r.priority ?? '-',
                `${r.cvss === null ? '-' : r.cvss.toFixed(1)}${r.kev ? ' KEV' : ''}`,
                r.slaDue ? `${r.slaDue.slice(0, 16).replace('T', ' ')}${r.breached ? ' BREACHED' : ''}` : '-',
                r.owner ?? '-',
                r.scope ?? '-',
                r.asset,
              ]),
            ]),
          );
        } finally {
          await db.close();
        }
      },
    );
}

export function defineExposure(exposure: Command): void {
  exposure
    .command('show')
    .argument('<id>', 'exposure id, "<asset id>:<weakness>" as `ctem exposures list` shows it')
    .description('the exposure, its priority and reasons, and its timeline')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const db = await openDatabase(load(cmd.optsWithGlobals<GlobalOptions>()));
      try {
        const t = await exposureTimeline(db.pool, id);
        // An unknown id is bad input, as for `ctem explain`: exit code 2.
        if (!t) throw new UserError(`no exposure ${id}; list them with ctem exposures list --all`, 2);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(t)}\n`);
          return;
        }
        const lines = [
          `${t.id}  ${t.weakness} on ${t.asset} (scope ${t.scope ?? '-'})`,
          `state      ${t.state}${t.slaPaused ? ' (SLA paused)' : ''}`,
          `priority   ${t.priority ?? '-'}${t.policyVersion ? ` (policy ${t.policyVersion})` : ''}`,
          `SLA due    ${t.slaDue ?? '-'}${t.slaBreachedAt ? `  breached at ${t.slaBreachedAt}` : ''}`,
          `owner      ${t.owner ?? '-'}`,
          ...(t.campaign
            ? [
                `campaign   ${t.campaign.id}${t.campaign.fix ? ` (${t.campaign.fix})` : ''}${t.campaign.ticket ? `  ticket ${t.campaign.ticket.key}` : ''}`,
              ]
            : []),
          ...(t.snoozedUntil ? [`snoozed    until ${t.snoozedUntil}`] : []),
          ...(t.riskAccepted ? [`accepted   by ${t.riskAccepted.by} until ${t.riskAccepted.until}`] : []),
          `first seen ${t.firstSeen} (by the scanner)`,
          `learned    ${t.learnedAt}${t.slaStart !== t.learnedAt ? `  SLA clock from ${t.slaStart}` : ''}`,
          ...(t.fixedAt ? [`fixed at   ${t.fixedAt}`] : []),
          ...(t.verified ? [`verified   ${t.verified.at} by scan ${t.verified.scanId}`] : []),
          ...(t.exposureSeconds !== null
            ? [`exposed    ${duration(Number(t.exposureSeconds))} (first seen → verified)`]
            : []),
          ...(t.reasons.length ? ['', 'why:', ...t.reasons.map((r) => `  - ${r}`)] : []),
          '',
          'timeline:',
          ...t.timeline.map(
            (e) =>
              `  ${e.at.slice(0, 19).replace('T', ' ')}  ${e.type.padEnd(20)} ${e.actor.padEnd(8)} ${e.reason ?? ''}`,
          ),
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      } finally {
        await db.close();
      }
    });
}
