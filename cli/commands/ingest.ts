// `ctem ingest FILE… [--scope S] [--format F] [--cycle] [--baseline] [--json]`: scanner reports into the
// inventory, one transaction per file. A file that fails leaves nothing behind and the others still
// go in; the exit code says whether all did. Each scan's diff then goes to the campaign workflows
// when a Temporal server is reachable (temporal.address, or a running `ctem up`); without one the
// command says so, and running it again later hands the already-ingested scans over (dispatch is
// idempotent per scan × exposure × change).
import path from 'node:path';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { InputError } from '../../domain/finding.ts';
import { ingestFile } from '../../ingest/file.ts';
import { checkIngestOptions, type IngestSummary } from '../../ingest/ingest.ts';
import { FORMATS } from '../../scanners/registry.ts';
import { dispatchScan, type DispatchResult } from '../../lifecycle/dispatch.ts';
import type { LoadedConfig } from '../../runtime/config.ts';
import {
  commandClock,
  load,
  openDatabase,
  openTemporalClient,
  runningStack,
  type GlobalOptions,
} from '../context.ts';
import type { CliServices, ComposedDeps } from '../services.ts';
import { createLogger } from '../../runtime/log.ts';

export interface IngestCommandOptions {
  scope?: string;
  format?: string;
  cycle?: boolean;
  /** A backlog import: file everything into campaigns silently; each owner gets one summary. */
  baseline?: boolean;
  json?: boolean;
}

export interface IngestStreams {
  stdout: Writable;
  stderr: Writable & { isTTY?: boolean; columns?: number };
}

/** What happened to a scan's diff on the lifecycle side. */
export type LifecycleHandoff =
  | ({ status: 'dispatched'; changes: number; baseline?: boolean } & Pick<
      DispatchResult,
      'started' | 'signalled' | 'skipped' | 'admitted' | 'asked'
    >)
  | { status: 'not-started'; reason: string };

type FileOutcome =
  (IngestSummary & { lifecycle?: LifecycleHandoff }) | { source: string; status: 'failed'; error: string };

/** The Temporal server to hand scan diffs to: configured, or the one of a running `ctem up`. */
function lifecycleAddress(loaded: LoadedConfig): string | undefined {
  return loaded.config.temporal.address ?? runningStack()?.temporal.address;
}

const NO_TEMPORAL =
  'no Temporal server is configured (temporal.address in ctem.yaml or CTEM_TEMPORAL_ADDRESS) and no `ctem up` is running';

export async function runIngest(
  files: string[],
  opts: IngestCommandOptions,
  global: GlobalOptions,
  io: IngestStreams,
  services: CliServices,
): Promise<number> {
  const loaded = load(global);
  const clock = commandClock();
  const scopes = loaded.config.scopes;
  checkIngestOptions({ scopes, scope: opts.scope, cycle: opts.cycle });
  const db = await openDatabase(loaded);
  const outcomes: FileOutcome[] = [];
  let exitCode = 0;
  const address = lifecycleAddress(loaded);
  let temporal: Awaited<ReturnType<typeof openTemporalClient>> | undefined;
  let temporalDown: string | undefined = address === undefined ? NO_TEMPORAL : undefined;
  // The owners are asked through the configured notifiers: built once, on the first hand-off.
  let composed: ComposedDeps | undefined;
  const handOff = async (summary: IngestSummary): Promise<LifecycleHandoff> => {
    if (temporal === undefined && temporalDown === undefined) {
      try {
        temporal = await openTemporalClient(loaded);
      } catch (err) {
        temporalDown = `Temporal at ${address} is unreachable (${err instanceof Error ? err.message : String(err)})`;
      }
    }
    if (temporal === undefined) return { status: 'not-started', reason: temporalDown ?? NO_TEMPORAL };
    try {
      composed ??= await services.compose({
        pool: db.pool,
        config: loaded.config,
        baseDir: loaded.baseDir,
        log: createLogger('ctem-ingest', process.env.CTEM_LOG_LEVEL ?? 'warn'),
        clock,
      });
      const r = await dispatchScan(composed.deps, temporal.client, summary.scanId, {
        taskQueue: temporal.taskQueue,
        ...(opts.baseline ? { baseline: true } : {}),
      });
      return {
        status: 'dispatched',
        changes: r.changes,
        started: r.started,
        signalled: r.signalled,
        skipped: r.skipped,
        admitted: r.admitted,
        asked: r.asked,
        ...(opts.baseline ? { baseline: true } : {}),
      };
    } catch (err) {
      return {
        status: 'not-started',
        reason: `handing the changes to Temporal at ${address} failed (${err instanceof Error ? err.message : String(err)})`,
      };
    }
  };
  try {
    for (const file of files) {
      const progress = io.stderr.isTTY ? new ProgressLine(io.stderr, file) : undefined;
      try {
        const summary = await ingestFile(db.pool, file, {
          scopes,
          clock,
          scope: opts.scope,
          cycle: opts.cycle,
          format: opts.format,
          onProgress: progress ? (n) => progress.findings(n) : undefined,
          progressEvery: 1000,
          onBytes: progress ? (read, total) => progress.bytes(read, total) : undefined,
        });
        progress?.done();
        const lifecycle = await handOff(summary);
        outcomes.push({ ...summary, lifecycle });
        if (!opts.json) io.stdout.write(`${describe(summary)}\n${describeHandoff(lifecycle)}\n`);
        // The inventory has the scan, but the exposures it changed have no lifecycle yet.
        if (lifecycle.status === 'not-started' && address !== undefined) exitCode = Math.max(exitCode, 1);
      } catch (err) {
        progress?.done();
        const message = err instanceof Error ? err.message : String(err);
        outcomes.push({ source: file, status: 'failed', error: message });
        if (!opts.json) io.stderr.write(`ctem: ${message}; nothing was ingested from ${file}\n`);
        exitCode = Math.max(exitCode, err instanceof InputError ? 2 : 1);
      }
    }
  } finally {
    composed?.stop();
    await temporal?.close().catch(() => undefined);
    await db.close();
  }
  const pending: { source: string; reason: string }[] = [];
  for (const o of outcomes)
    if ('lifecycle' in o && o.lifecycle?.status === 'not-started')
      pending.push({ source: o.source, reason: o.lifecycle.reason });
  if (pending.length > 0)
    io.stderr.write(
      `ctem: workflows were NOT started for the changes of ${pending.length} scan(s): ${pending[0]!.reason}. ` +
        'The scans are in the inventory; to start their workflows, run `ctem up` (or set temporal.address) and ' +
        `run \`ctem ingest ${pending.map((o) => o.source).join(' ')}\` again: the files are recognized as already ingested and their changes are handed over then.\n`,
    );
  if (opts.json) io.stdout.write(`${JSON.stringify({ ok: exitCode === 0, files: outcomes }, null, 2)}\n`);
  return exitCode;
}

function describe(s: IngestSummary): string {
  const n = (x: number) => x.toLocaleString('en-US');
  if (s.status === 'already-ingested')
    return `${s.source}: already ingested as scan ${s.scanId} (same file); nothing changed`;
  const e = s.exposures;
  const parts = [
    `${s.source}: scan ${s.scanId} (${s.scanner}) — ${n(s.findings)} findings on ${n(s.assets.covered)} assets (${n(s.assets.created)} new)`,
    `exposures: ${n(e.new)} new, ${n(e.stillPresent)} still present, ${n(e.gone)} gone, ${n(e.reappeared)} reappeared`,
  ];
  if (s.informationalFindings)
    parts.push(
      `${n(s.informationalFindings)} informational findings (their assets inventoried, no exposure)`,
    );
  if (s.skippedFindings) parts.push(`${n(s.skippedFindings)} findings skipped (no asset identity)`);
  if (s.assets.retired)
    parts.push(`${n(s.assets.retired)} assets retired (${n(e.retired)} exposures closed)`);
  return `${parts.join('; ')} in ${(s.durationMs / 1000).toFixed(1)} s`;
}

function describeHandoff(h: LifecycleHandoff): string {
  if (h.status === 'not-started') return `  lifecycle: workflows not started (${h.reason})`;
  if (h.changes === 0) return '  lifecycle: no changes to hand over';
  const asked = h.baseline
    ? 'filed silently (baseline): each owner gets one summary'
    : `${h.asked} owner request(s) sent at once, the rest in the owners' daily queues`;
  return `  lifecycle: ${h.changes} change(s) handed over — ${h.admitted} exposure(s) filed into campaigns (${h.started} campaign workflow(s) started, ${h.signalled} told); ${asked}; ${h.skipped} already handled or needing none`;
}

/** One status line on a terminal's stderr, redrawn at most ten times a second. */
class ProgressLine {
  private started = Date.now();
  private last = 0;
  private count = 0;
  private read?: number;
  private total?: number;

  constructor(
    private readonly out: Writable & { columns?: number },
    private readonly file: string,
  ) {}

  findings(n: number): void {
    this.count = n;
    this.draw();
  }

  bytes(read: number, total: number): void {
    this.read = read;
    this.total = total;
    this.draw();
  }

  private draw(): void {
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    const seconds = (now - this.started) / 1000;
    const rate = seconds > 0 ? Math.round(this.count / seconds) : 0;
    const parsed = this.read !== undefined && this.total !== undefined && this.read >= this.total;
    const counts = `${this.count.toLocaleString('en-US')} findings${parsed ? ', merging into the inventory' : `, ${rate.toLocaleString('en-US')}/s`}`;
    let bar = '';
    if (this.read !== undefined && this.total) {
      const cells = 20;
      const fraction = Math.min(1, this.read / this.total);
      const filled = Math.round(fraction * cells);
      bar = `[${'#'.repeat(filled)}${'-'.repeat(cells - filled)}] ${Math.floor(fraction * 100)
        .toString()
        .padStart(3)}% `;
    }
    this.write(`${bar}${counts}  ${path.basename(this.file)}`);
  }

  private write(line: string): void {
    const width = Math.max(20, this.out.columns || 100);
    this.out.write(`\r${line.slice(0, width - 1).padEnd(width - 1)}`);
  }

  done(): void {
    this.write('');
    this.out.write('\r');
  }
}

export function defineIngest(cmd: Command, services: CliServices): void {
  cmd
    .argument('<files...>', 'scanner report files; gzip is read transparently')
    .option('-s, --scope <scope>', 'put every asset of the reports in this ctem.yaml scope')
    .option('-f, --format <format>', `report format, detected when omitted: ${FORMATS.join(', ')}`)
    .option(
      '--cycle',
      'the reports are a full scan cycle of --scope: count them for retiring assets not seen',
    )
    .option(
      '--baseline',
      'a backlog import: file everything into campaigns without a message each; every owner gets one summary',
    )
    .option('--json', 'print a JSON summary on stdout')
    .action(async (files: string[], opts: IngestCommandOptions, command: Command) => {
      process.exitCode = await runIngest(
        files,
        opts,
        command.optsWithGlobals<GlobalOptions>(),
        { stdout: process.stdout, stderr: process.stderr },
        services,
      );
    });
}
