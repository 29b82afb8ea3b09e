// `ctem explain EXPOSURE-ID` and `ctem explain --cve ID --asset A`: the priority, the SLA deadline and
// every reason, from the intel known now (or, with --as-of, on a past date).
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { explainCveOnAsset, explainExposure, NotFoundError, type Explanation } from '../../intel/explain.ts';
import { PolicyCatalog } from '../../intel/policyFiles.ts';
import { commandClock, load, openDatabase, type GlobalOptions } from '../context.ts';
import { UserError } from '../errors.ts';

interface ExplainOptions extends GlobalOptions {
  cve?: string;
  asset?: string;
  asOf?: string;
  json?: boolean;
}

export function renderExplanation(e: Explanation): string {
  const d = e.decision;
  const lines = [
    `${e.weakness} on ${e.asset.name} (${e.asset.scope ? `scope ${e.asset.scope}, ` : ''}${e.asset.criticality} criticality)${e.exposureId ? ` — exposure ${e.exposureId}` : ''}`,
    `${d.label}: fix by ${d.dueAt.slice(0, 10)}${d.overdue ? ' (overdue)' : ''} — policy ${d.policy.name} ${d.policy.version} (${d.policy.hash.slice(0, 12)})`,
    '',
    d.summary,
    '',
    'Why:',
    ...d.reasons.map((r) => `  - ${r}`),
  ];
  if (e.intel.record?.title || e.intel.record?.description)
    lines.push('', `About ${e.weakness}: ${e.intel.record.title ?? e.intel.record.description}`);
  if (e.recorded) {
    const same = e.recorded.priority === d.outcome && e.recorded.slaDue === d.dueAt;
    lines.push(
      '',
      `Recorded on the exposure: ${e.recorded.priority ?? 'no priority yet'}${e.recorded.slaDue ? `, due ${e.recorded.slaDue.slice(0, 10)}` : ''}${e.recorded.policyVersion ? ` (policy ${e.recorded.policyVersion})` : ''}, state ${e.recorded.state}${same ? '' : ' — differs from the decision above until the next re-score'}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export async function runExplain(
  exposureId: string | undefined,
  opts: ExplainOptions,
  io: { stdout: Writable },
  now = new Date(commandClock()()),
): Promise<void> {
  if (exposureId && (opts.cve || opts.asset))
    throw new UserError('give either an exposure id or --cve with --asset, not both', 2);
  if (!exposureId && !(opts.cve && opts.asset))
    throw new UserError('give an exposure id, or --cve ID together with --asset A', 2);
  let asOf: Date | undefined;
  if (opts.asOf) {
    asOf = new Date(/^\d{4}-\d{2}-\d{2}$/.test(opts.asOf) ? `${opts.asOf}T23:59:59.999Z` : opts.asOf);
    if (Number.isNaN(asOf.getTime()))
      throw new UserError(`--as-of "${opts.asOf}" is not a date (YYYY-MM-DD)`, 2);
  }
  const loaded = load(opts);
  const catalog = PolicyCatalog.fromConfig(loaded.config, loaded.baseDir);
  const db = await openDatabase(loaded);
  try {
    const policyFor = (name: string) => catalog.get(name);
    const explanation = exposureId
      ? await explainExposure(db.pool, exposureId, policyFor, asOf ?? now, asOf)
      : await explainCveOnAsset(db.pool, opts.cve!.toUpperCase(), opts.asset!, policyFor, asOf ?? now, asOf);
    io.stdout.write(opts.json ? `${JSON.stringify(explanation, null, 2)}\n` : renderExplanation(explanation));
  } catch (err) {
    if (err instanceof NotFoundError) throw new UserError(err.message, 2);
    throw err;
  } finally {
    await db.close();
  }
}

export function defineExplain(cmd: Command): void {
  cmd
    .argument('[exposure-id]', 'an exposure id (see ctem exposures list)')
    .option('--cve <id>', 'a CVE id (with --asset)')
    .option('--asset <asset>', 'asset id, identity key, hostname, FQDN or IP (with --cve)')
    .option('--as-of <date>', 'decide with the intel known on that date')
    .option('--json', 'print the decision and its inputs as JSON')
    .action(async (exposureId: string | undefined, _opts: unknown, cmd: Command) => {
      await runExplain(exposureId, cmd.optsWithGlobals<ExplainOptions>(), { stdout: process.stdout });
    });
}
