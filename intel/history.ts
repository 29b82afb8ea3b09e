// The set-based merge of a staged load into a history table (see db/migrations/003_intel.sql for the
// model): a handful of statements whatever the row count, all in the caller's transaction.
import type { PoolClient } from '../runtime/pool.ts';

export interface HistoryTable {
  /** The history table, e.g. "kev_entries". */
  table: string;
  /** The columns that identify one item (its current row is unique on them). */
  key: readonly string[];
  /** Content columns: a difference in any of them makes a new version. */
  compared: readonly string[];
  /** Stored with the version, never compared (e.g. the catalog version it came with). */
  carried?: readonly string[];
}

export interface MergeCounts {
  added: number;
  changed: number;
  unchanged: number;
  removed: number;
  stale: number;
}

export interface MergeOptions {
  runId: number;
  /**
   * For a full snapshot (KEV catalog, EPSS file): its source time. Current items absent from the
   * snapshot are closed at that time and counted as removed. Omit for partial loads (a CVE tree, an
   * NVD page set), where absence means nothing.
   */
  snapshotAt?: Date;
  /** Restrict removal to current rows matching this SQL predicate over alias `c` (e.g. one source). */
  removalScope?: string;
  /**
   * Keep only the newest staged version of an item listed twice (paged API results overlap at page
   * and window boundaries) instead of refusing the load.
   */
  keepNewestDuplicate?: boolean;
}

/**
 * Merge staging table `stage` (same key/compared/carried columns plus `valid_from`) into the history
 * table. A staged item older than the current version is stale and ignored; one with the same source
 * time but different content replaces that version (a corrected re-publication).
 */
export async function mergeHistory(
  client: PoolClient,
  spec: HistoryTable,
  stage: string,
  opts: MergeOptions,
): Promise<MergeCounts> {
  const { table, key, compared } = spec;
  const carried = spec.carried ?? [];
  const on = (a: string, b: string): string => key.map((k) => `${a}.${k} = ${b}.${k}`).join(' and ');
  const row = (alias: string): string => `(${compared.map((c) => `${alias}.${c}`).join(', ')})`;

  if (opts.keepNewestDuplicate) {
    await client.query(
      `delete from ${stage} a using ${stage} b
        where ${on('a', 'b')} and (b.valid_from, b.ctid) > (a.valid_from, a.ctid)`,
    );
  }
  const duplicates = await client.query<{ k: string }>(
    `select concat_ws(' ', ${key.join(', ')}) as k from ${stage} group by ${key.join(', ')} having count(*) > 1 limit 3`,
  );
  if (duplicates.rows.length > 0)
    throw new Error(
      `the input lists ${duplicates.rows.map((r) => r.k).join(', ')} more than once; each item may appear only once per load`,
    );

  const diff = `${stage}_diff`;
  await client.query(`drop table if exists ${diff}`);
  await client.query(
    `create temp table ${diff} on commit drop as
     select s.*,
            case when c.valid_from is null then 'added'
                 when s.valid_from < c.valid_from then 'stale'
                 when ${row('s')} is not distinct from ${row('c')} then 'unchanged'
                 else 'changed' end as kind
       from ${stage} s
       left join ${table} c on ${on('c', 's')} and c.valid_to is null`,
  );

  let removed = 0;
  if (opts.snapshotAt) {
    const scope = opts.removalScope ? ` and ${opts.removalScope}` : '';
    const absent = `c.valid_to is null${scope} and not exists (select 1 from ${stage} s where ${on('s', 'c')})`;
    // Removed at the snapshot's time; a version from that very time is withdrawn outright.
    const closed = await client.query(
      `update ${table} c set valid_to = $1 where ${absent} and c.valid_from < $1`,
      [opts.snapshotAt],
    );
    const withdrawn = await client.query(`delete from ${table} c where ${absent} and c.valid_from >= $1`, [
      opts.snapshotAt,
    ]);
    removed = (closed.rowCount ?? 0) + (withdrawn.rowCount ?? 0);
  }

  await client.query(
    `update ${table} c set valid_to = d.valid_from from ${diff} d
      where d.kind = 'changed' and ${on('c', 'd')} and c.valid_to is null and c.valid_from < d.valid_from`,
  );
  await client.query(
    `delete from ${table} c using ${diff} d
      where d.kind = 'changed' and ${on('c', 'd')} and c.valid_to is null and c.valid_from = d.valid_from`,
  );
  const columns = [...key, ...compared, ...carried, 'valid_from'];
  await client.query(
    `insert into ${table} (${columns.join(', ')}, run_id)
     select ${columns.join(', ')}, $1 from ${diff} where kind in ('added', 'changed')`,
    [opts.runId],
  );

  const counts = await client.query<{ kind: string; n: number }>(
    `select kind, count(*)::int as n from ${diff} group by kind`,
  );
  const by = new Map(counts.rows.map((r) => [r.kind, r.n]));
  return {
    added: by.get('added') ?? 0,
    changed: by.get('changed') ?? 0,
    unchanged: by.get('unchanged') ?? 0,
    removed,
    stale: by.get('stale') ?? 0,
  };
}
