// The `demo` scan connector used by `ctem demo`: a targeted re-scan that imports a report file
// named in the scope (`scan: { connector: demo, report: FILE }`) through the ordinary ingest path,
// as if the scanner had just produced it for the requested assets. It really ingests; only the
// scanner is canned.
import path from 'node:path';
import type { Deps } from '../runtime/deps.ts';
import type { RescanRequest, RescanTicket, ScanConnector } from '../domain/ports.ts';
import { ingestReport } from '../ingest/ingest.ts';
import { parseReport } from '../scanners/registry.ts';
import type { IntegrationContext } from '../runtime/deps.ts';

export function createDemoScanConnector(ctx: IntegrationContext): ScanConnector {
  const report = ctx.scope?.scan?.report;
  return {
    name: 'demo',
    async rescan(req: RescanRequest): Promise<RescanTicket> {
      if (typeof report !== 'string')
        return {
          requestId: req.requestId,
          status: 'unavailable',
          detail: `scopes[].scan.report is not set for scope ${req.scope}: the demo connector has no report to import`,
        };
      const deps: Deps = ctx.deps;
      const file = path.resolve(deps.baseDir, report);
      // Each re-scan is a new scan, although the bundled file is the same: no file hash, so ingest
      // does not take it for the same report imported twice.
      const summary = await ingestReport(
        deps.pool,
        { source: `${report} (demo re-scan ${req.requestId})`, format: 'trivy', findings: parseReport(file) },
        {
          scopes: ctx.config.scopes,
          scope: req.scope,
          scanTime: new Date(deps.clock()),
          coveredAssetIds: req.assetIds,
          // A targeted re-scan checks what it was asked about (all of the scanner's checks when none).
          ...(req.weaknessKeys.length ? { coveredKeys: req.weaknessKeys } : {}),
        },
      );
      return {
        requestId: req.requestId,
        status: 'done',
        scanId: summary.scanId,
        detail: `imported ${report} as scan ${summary.scanId}`,
      };
    },
  };
}
