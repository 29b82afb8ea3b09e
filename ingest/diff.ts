// What a scan changed, for the lifecycle: which exposures to file into campaigns and which campaigns to tell. Only changes
// are listed; "still present" exposures are never signalled (DESIGN.md §2).
import type { Pool } from '../runtime/pool.ts';

export type ScanChange = 'new' | 'gone' | 'reappeared' | 'retired';

export interface ScanDiff {
  /** Exposures this scan created (first seen in it). */
  new: string[];
  /** Present before, absent now from every scanner that had seen them, on assets the scan covered. */
  gone: string[];
  /** Absent before, present again. */
  reappeared: string[];
  /** Closed because their asset was retired when this (cycle) scan completed. */
  retired: string[];
}

/** The whole diff of one scan, ids sorted. For very large scans page with scanChanges instead. */
export async function scanDiff(pool: Pool, scanId: number): Promise<ScanDiff> {
  const diff: ScanDiff = { new: [], gone: [], reappeared: [], retired: [] };
  const created = await pool.query<{ id: string }>(
    'select id from exposures where first_scan_id = $1 order by id',
    [scanId],
  );
  diff.new = created.rows.map((r) => r.id);
  const changes = await pool.query<{ change: Exclude<ScanChange, 'new'>; exposure_id: string }>(
    'select change, exposure_id from scan_changes where scan_id = $1 order by change, exposure_id',
    [scanId],
  );
  for (const r of changes.rows) diff[r.change].push(r.exposure_id);
  return diff;
}

/**
 * One page of one kind of change, in exposure id order: pass the last id of a page as `after` to get
 * the next. Lets a scan cycle start a million workflows in batches without holding every id.
 */
export async function scanChanges(
  pool: Pool,
  scanId: number,
  change: ScanChange,
  page: { after?: string; limit?: number } = {},
): Promise<string[]> {
  const limit = page.limit ?? 1000;
  const after = page.after ?? '';
  const { rows } =
    change === 'new'
      ? await pool.query<{ id: string }>(
          'select id from exposures where first_scan_id = $1 and id > $2 order by id limit $3',
          [scanId, after, limit],
        )
      : await pool.query<{ id: string }>(
          `select exposure_id as id from scan_changes where scan_id = $1 and change = $2 and exposure_id > $3
            order by exposure_id limit $4`,
          [scanId, change, after, limit],
        );
  return rows.map((r) => r.id);
}
