// What every connector does around its scanner: answer a retried request from the scan it already
// imported, turn assets into targets, feed the report to the ordinary ingest path with the coverage
// the scanner can vouch for, and clean up.
import { rm } from 'node:fs/promises';
import type { Config, Scope } from '../domain/config.ts';
import type { Deps } from '../runtime/deps.ts';
import type { RescanRequest, RescanTicket } from '../domain/ports.ts';
import { ingestFile } from '../ingest/file.ts';
import type { IngestSummary } from '../ingest/ingest.ts';
import { assetTargets, type AssetTarget } from './targets.ts';

/** What a connector is built from (the lifecycle's IntegrationContext has this shape). */
export interface ConnectorContext {
  config: Config;
  scope?: Scope;
  deps: Deps;
}

/** A scanner's finished report and what it covered. */
export interface ScanOutput {
  file: string;
  format: string;
  /** Folder to remove once the report is ingested. */
  dir?: string;
  coveredAssetIds?: number[];
  coveredKeys?: string[];
}

/** A connector that can also run a scope's full scan cycle. */
export interface ScopeScanner {
  /** Scan the whole scope and ingest the report as a cycle scan of it. */
  scanScope(scope: Scope): Promise<IngestSummary>;
}

export async function scanForRequest(ctx: ConnectorContext, requestId: string): Promise<number | undefined> {
  const { rows } = await ctx.deps.pool.query<{ id: number }>('select id from scans where request_id = $1', [
    requestId,
  ]);
  return rows[0]?.id;
}

/**
 * A targeted re-scan: the request's assets as targets, `scan` runs the scanner, the report is
 * ingested as this request's scan. A retried request returns the scan it already imported.
 */
export async function rescanThrough(
  ctx: ConnectorContext,
  connector: string,
  req: RescanRequest,
  scan: (targets: AssetTarget[]) => Promise<ScanOutput>,
): Promise<RescanTicket> {
  const prior = await scanForRequest(ctx, req.requestId);
  if (prior !== undefined)
    return {
      requestId: req.requestId,
      status: 'done',
      scanId: prior,
      detail: `already imported as scan ${prior}`,
    };
  const targets = await assetTargets(ctx.deps.pool, req.assetIds);
  if (targets.length === 0)
    return {
      requestId: req.requestId,
      status: 'unavailable',
      detail: `${connector}: none of assets ${req.assetIds.join(', ')} has an address or host name to scan`,
    };
  const output = await scan(targets);
  const summary = await ingestOutput(ctx, output, { requestId: req.requestId });
  return {
    requestId: req.requestId,
    status: 'done',
    scanId: summary.scanId,
    detail: `${connector} re-scan of ${targets.map((t) => t.target).join(', ')} imported as scan ${summary.scanId}: ${summary.exposures.gone} gone, ${summary.exposures.stillPresent} still present, ${summary.exposures.new} new`,
  };
}

export async function ingestOutput(
  ctx: ConnectorContext,
  output: ScanOutput,
  opts: { requestId?: string; cycleScope?: string },
): Promise<IngestSummary> {
  try {
    return await ingestFile(ctx.deps.pool, output.file, {
      format: output.format,
      scopes: ctx.config.scopes,
      clock: ctx.deps.clock,
      scope: opts.cycleScope,
      cycle: opts.cycleScope !== undefined,
      requestId: opts.requestId,
      coveredAssetIds: output.coveredAssetIds,
      coveredKeys: output.coveredKeys,
    });
  } finally {
    if (output.dir) await rm(output.dir, { recursive: true, force: true });
  }
}
