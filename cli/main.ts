// The `ctem` command line. Every command's module (and so everything it imports: the Temporal client,
// PostgreSQL, the parsers…) is loaded only when that command runs or its help is asked for: `ctem
// --help` and a command's start stay fast however much the product grows.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { projectRoot } from '../runtime/paths.ts';
import { reportError } from './errors.ts';
import type { CliServices } from './services.ts';

interface CommandEntry {
  name: string;
  summary: string;
  /** Adds the command's arguments, options, subcommands and action to the command main created. */
  define: () => Promise<(cmd: Command, services: CliServices) => void>;
}

/** One line per command, in the order `ctem --help` lists them. */
export const commands: CommandEntry[] = [
  {
    name: 'up',
    summary: 'start the whole stack: PostgreSQL, Temporal, the worker and the HTTP server (Ctrl-C stops it)',
    define: async () => (await import('./commands/up.ts')).defineUp,
  },
  {
    name: 'status',
    summary: 'health of PostgreSQL, Temporal, the worker and the HTTP server',
    define: async () => (await import('./commands/status.ts')).defineStatus,
  },
  {
    name: 'db',
    summary: 'database maintenance',
    define: async () => (await import('./commands/db.ts')).defineDb,
  },
  {
    name: 'migrate',
    summary: 'move the lifecycles of the previous release into campaigns',
    define: async () => (await import('./commands/migrate.ts')).defineMigrate,
  },
  {
    name: 'parse',
    summary: 'print the normalized findings of a scanner report as NDJSON, one per line (no database)',
    define: async () => (await import('./commands/parse.ts')).defineParse,
  },
  {
    name: 'ingest',
    summary: 'ingest scanner reports into the asset inventory: assets, observations, the diff of each scan',
    define: async () => (await import('./commands/ingest.ts')).defineIngest,
  },
  {
    name: 'feeds',
    summary: 'threat intel: CISA KEV, FIRST EPSS, CVE JSON 5 records, NVD CVE API 2.0',
    define: async () => (await import('./commands/feeds.ts')).defineFeeds,
  },
  {
    name: 'score',
    summary: 'CVSS v3.0/v3.1/v4.0 base, threat/temporal and environmental scores as JSON',
    define: async () => (await import('./commands/score.ts')).defineScore,
  },
  {
    name: 'explain',
    summary: 'the priority, SLA deadline and every reason for an exposure, or a CVE on an asset',
    define: async () => (await import('./commands/explain.ts')).defineExplain,
  },
  {
    name: 'exposures',
    summary: 'the exposure queue',
    define: async () => (await import('./commands/exposures.ts')).defineExposures,
  },
  {
    name: 'exposure',
    summary: 'one exposure',
    define: async () => (await import('./commands/exposures.ts')).defineExposure,
  },
  {
    name: 'demo',
    summary: 'run the whole loop on bundled sample data on the embedded stack, and say what happened',
    define: async () => (await import('./commands/demo.ts')).defineDemo,
  },
  {
    name: 'digest',
    summary: 'render the weekly CISO digest (default: the last complete week) as a standalone HTML page',
    define: async () => (await import('./commands/digest.ts')).defineDigest,
  },
  {
    name: 'dashboard',
    summary: 'the web dashboard served by ctem up',
    define: async () => (await import('./commands/dashboard.ts')).defineDashboard,
  },
  {
    name: 'doctor',
    summary: 'check the configuration, PostgreSQL, Temporal and every configured integration, with advice',
    define: async () => (await import('./commands/doctor.ts')).defineDoctor,
  },
];

/** The command the arguments name (`ctem -c f.yaml digest …`, `ctem help digest`), if any. */
export function commandNamed(argv: string[]): string | undefined {
  const args = argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-c' || a === '--config') i++;
    else if (a === 'help') return args[i + 1];
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

export function ctemVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string };
  return `ctem ${pkg.version} (node ${process.version})`;
}

/** The program with every command listed and the one the arguments name (or `only`) fully defined. */
export async function buildProgram(
  services: CliServices,
  argv: string[] = process.argv,
  only?: string,
): Promise<Command> {
  const program = new Command('ctem')
    .description('Continuous Threat Exposure Management: from scanner findings to verified fixes')
    .option('-c, --config <file>', 'configuration file (default: $CTEM_CONFIG or ./ctem.yaml)')
    .version(ctemVersion(), '-V, --version', 'print the ctem and Node.js versions')
    .showHelpAfterError()
    .exitOverride();
  const wanted = only ?? commandNamed(argv);
  for (const entry of commands) {
    const cmd = program.command(entry.name).description(entry.summary);
    if (entry.name === wanted) (await entry.define())(cmd, services);
  }
  return program;
}

/** The command line, with the composition root's services (app/main.ts). */
export async function main(argv: string[], services: CliServices): Promise<number> {
  try {
    const program = await buildProgram(services, argv);
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    return reportError(err);
  }
}
