// The ingest activities the worker registers: a report file into the inventory, and the inventory's
// upkeep. Scan cycles and targeted re-scans reach ingest through the scanner connectors
// (discovery/), which the lifecycle's jobs and re-scans call.
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { InputError } from '../domain/finding.ts';
import type { Deps } from '../runtime/deps.ts';
import { ingestFile } from '../ingest/file.ts';
import type { IngestSummary } from '../ingest/ingest.ts';
import { retireAcrossScopes, type RetiredAsset } from '../ingest/retire.ts';
import { heartbeat } from '../discovery/heartbeat.ts';

export interface IngestReportInput {
  /** Report file path (relative paths resolve against the worker's config folder). */
  path: string;
  format?: string;
  scope?: string;
  /** A full scan cycle of `scope`. */
  cycle?: boolean;
}

export function createIngestActivities(deps: Deps) {
  return {
    /** Ingest one report file; heartbeats with the findings staged so far. */
    async ingestScanReport(input: IngestReportInput): Promise<IngestSummary> {
      try {
        return await ingestFile(deps.pool, path.resolve(deps.baseDir, input.path), {
          scopes: deps.config.scopes,
          clock: deps.clock,
          scope: input.scope,
          cycle: input.cycle,
          format: input.format,
          onProgress: (findings) => heartbeat({ findings }),
        });
      } catch (err) {
        // A bad report stays bad however often it is retried.
        if (err instanceof InputError) throw ApplicationFailure.nonRetryable(err.message, 'InputError');
        throw err;
      }
    },

    /** Retire, in every scope, the assets its latest cycles missed (e.g. after the threshold changed). */
    async retireUnseenAssets(): Promise<{ scope: string; scanId: number; retired: RetiredAsset[] }[]> {
      return await retireAcrossScopes(deps.pool, deps.config);
    },
  };
}
