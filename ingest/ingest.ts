// Ingest one report: stage it through COPY, resolve its assets, merge it set-based, record the scan
// and its diff — all in one transaction, so a report that fails at any point (a parse error at
// finding 900,000, a lost connection) leaves nothing behind.
import type { Config } from '../domain/config.ts';
import { InputError, type Finding } from '../domain/finding.ts';
import { ScopeMatcher } from '../domain/inventory.ts';
import type { Pool, PoolClient } from '../runtime/pool.ts';
import { resolveAssets } from './assets.ts';
import { lockInventory } from './lock.ts';
import { mergeReport } from './merge.ts';
import { retireMissedAssets, type RetiredAsset } from './retire.ts';
import { stageFindings } from './stage.ts';
import type { Clock } from '../domain/clock.ts';
import { systemClock } from '../runtime/clock.ts';

export interface ReportInput {
  /** File path or connector run, for the scan record and messages. */
  source: string;
  /** Parser format name ("nessus", "trivy"…). */
  format: string;
  findings: AsyncIterable<Finding>;
  /**
   * sha256 of the report's bytes, when it is a file: the same file is the same scan. May resolve
   * while staging runs; a hash already on record stops staging early.
   */
  fileSha256?: Promise<string> | string;
}

export interface IngestOptions {
  /** Scope definitions (ctem.yaml scopes). */
  scopes: Config['scopes'];
  /** Put every asset of the report in this scope (must be defined in ctem.yaml). */
  scope?: string;
  /** This report is a full scan cycle of `scope`: count it for retirement. Requires `scope`. */
  cycle?: boolean;
  /** Scanner name when the report has no findings to say it (connector runs). */
  scanner?: string;
  /** The time the scan speaks for; default the report's latest time, else now. */
  scanTime?: Date;
  /** What time it is ("now" above; default: the system clock). */
  clock?: Clock;
  /** Assets covered although they had no findings (a targeted re-scan found them clean). */
  coveredAssetIds?: number[];
  /** A targeted check covers only these weakness keys. */
  coveredKeys?: string[];
  /** The check's "absent" on coveredKeys overrides every scanner's word (see MergeInput). */
  authoritative?: boolean;
  /**
   * Per-asset coverage of a targeted check: only these asset × key pairs are covered (each asset
   * must also be in coveredAssetIds and each key in coveredKeys).
   */
  coveredPairs?: { assetId: number; key: string }[];
  /** The re-scan request this scan answers (RescanRequest.requestId); one scan per request. */
  requestId?: string;
  onProgress?: (findings: number) => void;
  /** Findings between two onProgress calls; default 10,000. */
  progressEvery?: number;
  /** Weakness keys staging remembers exactly (see stage.ts; tests lower it). */
  intelKeysRemembered?: number;
}

export interface IngestSummary {
  source: string;
  format: string;
  scanner: string;
  status: 'ingested' | 'already-ingested';
  scanId: number;
  scope?: string;
  findings: number;
  /** Findings without any asset identity (not ingested). */
  skippedFindings: number;
  /** Informational findings: their assets are inventoried and covered, but they are no exposure. */
  informationalFindings: number;
  assets: { covered: number; created: number; matched: number; retired: number };
  exposures: { new: number; stillPresent: number; gone: number; reappeared: number; retired: number };
  /** Assets retired by this cycle scan, with the exposures that closed. */
  retired: RetiredAsset[];
  scanTime: string;
  durationMs: number;
  /** Milliseconds per step (stage = parse + COPY), for benchmarks and slow-ingest reports. */
  steps: Record<string, number>;
}

/** Check --scope and --cycle against ctem.yaml before any work. */
export function checkIngestOptions(
  opts: Pick<IngestOptions, 'scopes' | 'scope' | 'cycle' | 'authoritative' | 'coveredKeys'>,
): void {
  if (opts.scope !== undefined && !opts.scopes.some((s) => s.name === opts.scope)) {
    const known = opts.scopes.map((s) => s.name).join(', ') || 'none defined';
    throw new InputError(
      `unknown scope "${opts.scope}" (ctem.yaml scopes: ${known}); add it under scopes in ctem.yaml`,
    );
  }
  if (opts.cycle && opts.scope === undefined)
    throw new InputError('a scan cycle belongs to one scope: give --scope together with --cycle');
  if (opts.authoritative && !opts.coveredKeys?.length)
    throw new Error('an authoritative check must name the weakness keys it covers (coveredKeys)');
}

/**
 * How far ahead of this machine's clock a report's scan time may be. A report from the future would
 * mark exposures fixed "later" than any genuine re-scan and so hide their return. A day rather than
 * minutes: a scanner host whose clock or time zone is wrong (local time written as UTC lands up to
 * 14 h ahead east of Greenwich) is common and harmless at that scale; a report from next year is not.
 */
export const FUTURE_SCAN_ALLOWANCE_MS = 24 * 3_600_000;

function refuseFutureScan(source: string, seenAt: Date, now: Date): void {
  const ahead = seenAt.getTime() - now.getTime();
  if (ahead <= FUTURE_SCAN_ALLOWANCE_MS) return;
  const hours = ahead / 3_600_000;
  const howFar = hours >= 48 ? `${Math.floor(hours / 24)} days` : `${Math.floor(hours)} hours`;
  throw new InputError(
    `${source}: the report says its scan ran at ${seenAt.toISOString()}, ${howFar} ahead of this machine's clock (${now.toISOString()}); more than 24 hours ahead is refused, as a report from the future would mark exposures fixed and hide their return: check the scanner's clock or the file`,
  );
}

export async function ingestReport(
  pool: Pool,
  report: ReportInput,
  opts: IngestOptions,
): Promise<IngestSummary> {
  checkIngestOptions(opts);
  const started = Date.now();
  const steps: Record<string, number> = {};
  let mark = started;
  const step = (name: string): void => {
    const now = Date.now();
    steps[name] = now - mark;
    mark = now;
  };
  const client = await pool.connect();
  let alreadyIngested: number | undefined;
  // Check the hash on another connection as soon as it is known, to stop staging a duplicate early.
  const hash = report.fileSha256 === undefined ? undefined : Promise.resolve(report.fileSha256);
  hash
    ?.then((sha) => pool.query<{ id: number }>('select id from scans where file_sha256 = $1', [sha]))
    .then((r) => {
      alreadyIngested = r.rows[0]?.id;
    })
    .catch(() => undefined);
  try {
    await client.query('begin');
    // Sorting a million staged rows in memory rather than on disk.
    await client.query(`set local work_mem = '128MB'`);
    const staged = await stageFindings(client, report.findings, {
      shouldStop: () => alreadyIngested !== undefined,
      onProgress: opts.onProgress,
      progressEvery: opts.progressEvery,
      ...(opts.intelKeysRemembered ? { intelKeysRemembered: opts.intelKeysRemembered } : {}),
    });
    step('stage');
    const sha = hash ? await hash : undefined;
    await lockInventory(client);
    step('lock');
    if (sha !== undefined) {
      const prior = await client.query<{ id: number }>('select id from scans where file_sha256 = $1', [sha]);
      if (prior.rows[0]) {
        await client.query('rollback');
        return await alreadyIngestedSummary(pool, report, prior.rows[0].id, started);
      }
    }
    if (staged.stopped) throw new Error(`${report.source}: staging stopped before the end of the report`);

    await syncScopes(client, opts.scopes);
    const now = new Date((opts.clock ?? systemClock)());
    const seenAt = opts.scanTime ?? staged.latest ?? now;
    refuseFutureScan(report.source, seenAt, now);
    const scanner = staged.scanner ?? opts.scanner ?? report.format;
    const cycleScope = opts.cycle ? opts.scope : undefined;
    const { rows } = await client.query<{ id: number }>(
      `insert into scans (scanner, format, source, file_sha256, scan_ref, scope, started_at, finished_at, cycle_scope,
                          covered_keys, request_id)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning id`,
      [
        scanner,
        report.format,
        report.source,
        sha ?? null,
        staged.scanRef ?? null,
        opts.scope ?? null,
        staged.earliest ?? seenAt,
        seenAt,
        cycleScope ?? null,
        opts.coveredKeys ?? null,
        opts.requestId ?? null,
      ],
    );
    const scanId = rows[0]!.id;

    const resolved = await resolveAssets(
      client,
      staged.assets,
      {
        matcher: new ScopeMatcher(opts.scopes),
        criticality: new Map(opts.scopes.map((s) => [s.name, s.criticality])),
        forced: opts.scope,
      },
      seenAt,
    );
    step('assets');
    const counts = await mergeReport(client, {
      scanId,
      scanner,
      seenAt,
      learnedAt: now,
      coveredAssetIds: opts.coveredAssetIds ?? [],
      coveredKeys: opts.coveredKeys,
      authoritative: opts.authoritative,
      coveredPairs: opts.coveredPairs,
      intelUnique: staged.intelUnique,
      step,
    });
    const retireAfter = opts.scopes.find((s) => s.name === cycleScope)?.retireAfterMissedCycles;
    const retired =
      cycleScope && retireAfter
        ? await retireMissedAssets(client, {
            scope: cycleScope,
            missedCycles: retireAfter,
            scanId,
            at: seenAt,
          })
        : [];
    step('retire');
    const durationMs = Date.now() - started;
    await client.query(
      `update scans set finding_count = $2, asset_count = $3, duration_ms = $4 where id = $1`,
      [scanId, staged.findings - staged.skipped, counts.coveredAssets, durationMs],
    );
    await client.query('commit');
    step('commit');
    return {
      source: report.source,
      format: report.format,
      scanner,
      status: 'ingested',
      scanId,
      scope: opts.scope,
      findings: staged.findings,
      skippedFindings: staged.skipped,
      informationalFindings: staged.informational,
      assets: {
        covered: counts.coveredAssets,
        created: resolved.created,
        matched: resolved.matched,
        retired: retired.length,
      },
      exposures: {
        new: counts.created,
        stillPresent: counts.stillPresent,
        gone: counts.gone,
        reappeared: counts.reappeared,
        retired: retired.reduce((n, r) => n + r.exposureIds.length, 0),
      },
      retired,
      scanTime: seenAt.toISOString(),
      durationMs,
      steps,
    };
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Scopes from ctem.yaml as rows, so assets can reference them. */
async function syncScopes(client: PoolClient, scopes: Config['scopes']): Promise<void> {
  if (scopes.length === 0) return;
  await client.query(
    `insert into scopes (name, config)
     select name, config from jsonb_to_recordset($1::jsonb) as x(name text, config jsonb)
     on conflict (name) do update set config = excluded.config, updated_at = now()
      where scopes.config is distinct from excluded.config`,
    [JSON.stringify(scopes.map((s) => ({ name: s.name, config: s })))],
  );
}

async function alreadyIngestedSummary(
  pool: Pool,
  report: ReportInput,
  scanId: number,
  started: number,
): Promise<IngestSummary> {
  const { rows } = await pool.query<{
    scanner: string;
    scope: string | null;
    finding_count: number;
    asset_count: number;
    finished_at: Date | null;
    imported_at: Date;
  }>('select scanner, scope, finding_count, asset_count, finished_at, imported_at from scans where id = $1', [
    scanId,
  ]);
  const scan = rows[0]!;
  return {
    source: report.source,
    format: report.format,
    scanner: scan.scanner,
    status: 'already-ingested',
    scanId,
    scope: scan.scope ?? undefined,
    findings: scan.finding_count,
    skippedFindings: 0,
    informationalFindings: 0,
    assets: { covered: scan.asset_count, created: 0, matched: 0, retired: 0 },
    exposures: { new: 0, stillPresent: 0, gone: 0, reappeared: 0, retired: 0 },
    retired: [],
    scanTime: (scan.finished_at ?? scan.imported_at).toISOString(),
    durationMs: Date.now() - started,
    steps: {},
  };
}
