// `ctem feeds load kev|epss|nvd|cve5 PATH-or-URL` and `ctem feeds sync`: load threat intel, then
// re-score, and hand exactly the exposures whose decision or deadline changes to their workflows.
// `ctem feeds rescore` does the last part alone, after a policy file changed. Without a reachable
// Temporal nothing is applied (so the next re-score finds the same exposures), and it says so.
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { FeedInputError, type FeedName, type FeedRunResult } from '../../intel/runs.ts';
import { FEED_NAMES, loadFeed, syncFeeds, type LoadFeedOptions } from '../../intel/sources.ts';
import { PolicyCatalog } from '../../intel/policyFiles.ts';
import { rescoreAndHandOff, type RescoreHandOff } from '../../lifecycle/rescored.ts';
import { commandClock, load, openDatabase, openTemporalClient, type GlobalOptions } from '../context.ts';
import { UserError } from '../errors.ts';

interface FeedCommandOptions extends GlobalOptions {
  json?: boolean;
  rescore?: boolean;
  apiKeyEnv?: string;
  since?: string;
  scoreDate?: string;
}

function describeRun(r: FeedRunResult): string {
  const what = [r.sourceVersion, r.sourceDate ? `of ${r.sourceDate}` : undefined].filter(Boolean).join(' ');
  const stale = r.stale > 0 ? `, ${r.stale} older than held` : '';
  return `${r.feed}: ${r.records} records${what ? ` (${what})` : ''}: ${r.added} added, ${r.changed} changed, ${r.unchanged} unchanged, ${r.removed} removed${stale} in ${(r.durationMs / 1000).toFixed(1)} s`;
}

async function withDatabase<T>(
  opts: GlobalOptions,
  fn: (db: Awaited<ReturnType<typeof openDatabase>>, loaded: ReturnType<typeof load>) => Promise<T>,
): Promise<T> {
  const loaded = load(opts);
  const db = await openDatabase(loaded);
  try {
    return await fn(db, loaded);
  } finally {
    await db.close();
  }
}

async function reportRescore(
  db: Awaited<ReturnType<typeof openDatabase>>,
  loaded: ReturnType<typeof load>,
  io: { stdout: Writable; stderr?: Writable; env: NodeJS.ProcessEnv },
  json: boolean,
): Promise<RescoreHandOff & { temporalProblem?: string }> {
  // Fail early on a policy file that does not parse, before any connection is made.
  const catalog = PolicyCatalog.fromConfig(loaded.config, loaded.baseDir);
  for (const name of new Set(['default', ...loaded.config.scopes.map((s) => s.policy ?? 'default')]))
    catalog.get(name);
  let temporal: Awaited<ReturnType<typeof openTemporalClient>> | undefined;
  let temporalProblem: string | undefined;
  try {
    temporal = await openTemporalClient(loaded, io.env);
  } catch (err) {
    temporalProblem = err instanceof Error ? err.message : String(err);
  }
  let r: RescoreHandOff;
  try {
    r = await rescoreAndHandOff(
      { pool: db.pool, config: loaded.config, baseDir: loaded.baseDir, clock: commandClock(io.env) },
      temporal?.client,
    );
  } finally {
    await temporal?.close();
  }
  if (!json) {
    io.stdout.write(
      `re-score: ${r.changed} of ${r.examined} open exposures change priority or deadline` +
        (r.temporal === 'told'
          ? `; ${r.signalled} workflows told, ${r.skipped} without a running lifecycle\n`
          : '\n'),
    );
    if (r.temporal === 'unreachable')
      (io.stderr ?? io.stdout).write(
        `Temporal is not reachable (${temporalProblem}): the ${r.changed} changed decisions were neither applied nor handed to their workflows; run \`ctem feeds rescore\` once Temporal is up (the daily feed sync also does it)\n`,
      );
  }
  return { ...r, ...(temporalProblem ? { temporalProblem } : {}) };
}

export async function runFeedsLoad(
  feed: string,
  location: string,
  opts: FeedCommandOptions,
  io: { stdout: Writable; stderr?: Writable; env: NodeJS.ProcessEnv },
): Promise<void> {
  if (!FEED_NAMES.includes(feed as FeedName))
    throw new UserError(`unknown feed "${feed}": use one of ${FEED_NAMES.join(', ')}`, 2);
  const loadOpts: LoadFeedOptions = {};
  if (opts.apiKeyEnv) {
    const key = io.env[opts.apiKeyEnv];
    if (!key) throw new UserError(`the environment variable ${opts.apiKeyEnv} (--api-key-env) is not set`, 2);
    loadOpts.nvdApiKey = key;
  }
  if (opts.since) {
    const since = new Date(/^\d{4}-\d{2}-\d{2}$/.test(opts.since) ? `${opts.since}T00:00:00Z` : opts.since);
    if (Number.isNaN(since.getTime()))
      throw new UserError(`--since "${opts.since}" is not a date (YYYY-MM-DD)`, 2);
    loadOpts.since = since;
  }
  if (opts.scoreDate) loadOpts.scoreDate = opts.scoreDate;
  await withDatabase(opts, async (db, loaded) => {
    let result: FeedRunResult;
    try {
      result = await loadFeed(db.pool, feed as FeedName, location, loadOpts);
    } catch (err) {
      if (err instanceof FeedInputError) throw new UserError(err.message, 2);
      throw err;
    }
    const { addedKeys, ...summary } = result;
    if (!opts.json) io.stdout.write(`${describeRun(result)}\n`);
    if (!opts.json && feed === 'kev' && addedKeys && addedKeys.length > 0 && addedKeys.length <= 50)
      io.stdout.write(`  newly listed: ${addedKeys.join(', ')}\n`);
    const rescore =
      opts.rescore === false ? undefined : await reportRescore(db, loaded, io, Boolean(opts.json));
    if (opts.json)
      io.stdout.write(
        `${JSON.stringify({ ...summary, ...(addedKeys ? { addedKeys } : {}), ...(rescore ? { rescore } : {}) })}\n`,
      );
  });
}

export async function runFeedsSync(
  opts: FeedCommandOptions,
  io: { stdout: Writable; stderr?: Writable; env: NodeJS.ProcessEnv },
): Promise<void> {
  await withDatabase(opts, async (db, loaded) => {
    let results: FeedRunResult[];
    try {
      results = await syncFeeds(db.pool, loaded.config, loaded.baseDir, io.env, (r) => {
        if (!opts.json) io.stdout.write(`${describeRun(r)}\n`);
      });
    } catch (err) {
      if (err instanceof FeedInputError) throw new UserError(err.message, 2);
      throw err;
    }
    const rescore =
      opts.rescore === false ? undefined : await reportRescore(db, loaded, io, Boolean(opts.json));
    if (opts.json)
      io.stdout.write(
        `${JSON.stringify({ feeds: results.map(({ addedKeys: _added, ...r }) => r), ...(rescore ? { rescore } : {}) })}\n`,
      );
  });
}

export async function runFeedsRescore(
  opts: FeedCommandOptions,
  io: { stdout: Writable; stderr?: Writable; env: NodeJS.ProcessEnv },
): Promise<void> {
  await withDatabase(opts, async (db, loaded) => {
    const rescore = await reportRescore(db, loaded, io, Boolean(opts.json));
    if (opts.json) io.stdout.write(`${JSON.stringify({ rescore })}\n`);
  });
}

export function defineFeeds(feeds: Command): void {
  feeds
    .command('load')
    .description('load one feed from a file, a folder or a URL')
    .argument('<feed>', `one of ${FEED_NAMES.join(', ')}`)
    .argument(
      '<location>',
      'file, folder (cve5, nvd) or http(s) URL (nvd: the API URL pages through the API)',
    )
    .option('--api-key-env <name>', 'nvd: environment variable holding the NVD API key')
    .option('--since <date>', 'nvd API: only CVEs modified since this date (windows of 120 days)')
    .option('--score-date <date>', 'epss: score date for a file without a #score_date line')
    .option('--no-rescore', 'do not re-score the open exposures after loading')
    .option('--json', 'print the run as JSON')
    .action(async (feed: string, location: string, _opts: unknown, cmd: Command) => {
      await runFeedsLoad(feed, location, cmd.optsWithGlobals<FeedCommandOptions>(), {
        stdout: process.stdout,
        stderr: process.stderr,
        env: process.env,
      });
    });
  feeds
    .command('sync')
    .description('load every feed configured under feeds: in ctem.yaml')
    .option('--no-rescore', 'do not re-score the open exposures after loading')
    .option('--json', 'print the runs as JSON')
    .action(async (_opts: unknown, cmd: Command) => {
      await runFeedsSync(cmd.optsWithGlobals<FeedCommandOptions>(), {
        stdout: process.stdout,
        stderr: process.stderr,
        env: process.env,
      });
    });
  feeds
    .command('rescore')
    .description(
      're-score every open exposure (e.g. after a policy change) and tell the workflows whose decision or deadline changes',
    )
    .option('--json', 'print the result as JSON')
    .action(async (_opts: unknown, cmd: Command) => {
      await runFeedsRescore(cmd.optsWithGlobals<FeedCommandOptions>(), {
        stdout: process.stdout,
        stderr: process.stderr,
        env: process.env,
      });
    });
}
