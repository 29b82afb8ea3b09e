// Every feed load is recorded in feed_runs: what was loaded, the source's own version and date, and
// what it changed. The row is written before the load's transaction and completed after it, so a
// failed load is on the record too (with nothing of it in the intel tables).
import type { Pool, PoolClient } from '../runtime/pool.ts';
import type { MergeCounts } from './history.ts';

export type FeedName = 'kev' | 'epss' | 'cve5' | 'nvd';

export interface FeedRunResult extends MergeCounts {
  runId: number;
  feed: FeedName;
  source: string;
  sourceVersion: string | null;
  sourceDate: string | null;
  records: number;
  /** For KEV: the CVE ids added to the catalog by this load (sorted). */
  addedKeys?: string[];
  durationMs: number;
}

/** A load that cannot proceed because of its input; not worth retrying. */
export class FeedInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FeedInputError';
  }
}

export async function startRun(pool: Pool, feed: FeedName, source: string): Promise<number> {
  const { rows } = await pool.query<{ id: number }>(
    `insert into feed_runs (feed, source) values ($1, $2) returning id`,
    [feed, source],
  );
  return rows[0]!.id;
}

export async function finishRun(
  pool: Pool,
  runId: number,
  r: {
    sourceVersion: string | null;
    sourceDate: Date | null;
    records: number;
    counts: MergeCounts;
    details?: Record<string, unknown>;
  },
): Promise<void> {
  await pool.query(
    `update feed_runs set status = 'succeeded', finished_at = now(), source_version = $2, source_date = $3, records = $4,
            added = $5, changed = $6, unchanged = $7, removed = $8, stale = $9, details = $10
      where id = $1`,
    [
      runId,
      r.sourceVersion,
      r.sourceDate,
      r.records,
      r.counts.added,
      r.counts.changed,
      r.counts.unchanged,
      r.counts.removed,
      r.counts.stale,
      r.details ?? {},
    ],
  );
}

export async function failRun(pool: Pool, runId: number, err: unknown): Promise<void> {
  const message = err instanceof Error ? err.message : String(err);
  await pool
    .query(`update feed_runs set status = 'failed', finished_at = now(), error = $2 where id = $1`, [
      runId,
      message,
    ])
    .catch(() => undefined);
}

/**
 * Snapshots (a KEV catalog, an EPSS day) must load oldest first: history is kept in source time, and
 * an older snapshot after a newer one would rewrite what the newer one established.
 */
export async function assertNotOlderSnapshot(
  client: PoolClient,
  feed: FeedName,
  at: Date,
  what: string,
): Promise<void> {
  const { rows } = await client.query<{ source_date: Date; source_version: string | null }>(
    `select source_date, source_version from feed_runs
      where feed = $1 and status = 'succeeded' and source_date is not null order by source_date desc limit 1`,
    [feed],
  );
  const newest = rows[0];
  if (newest && newest.source_date.getTime() > at.getTime()) {
    throw new FeedInputError(
      `${what} is older than the ${feed.toUpperCase()} data already loaded (${newest.source_version ?? 'version unknown'} of ${newest.source_date.toISOString()}); load snapshots oldest first`,
    );
  }
}
