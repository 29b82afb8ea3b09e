// The set-based merge of one staged report into the inventory: a handful of statements whatever the
// report's size. Presence is tracked per scanner (observations) and per exposure (any scanner's
// latest word is "present"); the diff of a scan is computed against what the same scanner last said
// about the assets this scan covered, so an asset the scan did not look at keeps its exposures.
import type { PoolClient } from '../runtime/pool.ts';

export interface MergeInput {
  scanId: number;
  scanner: string;
  /** The time this scan speaks for (the report's time, else the import time). */
  seenAt: Date;
  /** What time it is: new exposures were learned now (their SLA clocks start here). */
  learnedAt: Date;
  /** Assets covered beyond those with findings (a targeted re-scan that found them clean). */
  coveredAssetIds: number[];
  /** A targeted check covers only these weakness keys; undefined covers all of the scanner's. */
  coveredKeys?: string[];
  /**
   * The check inspected the covered keys directly (an SSH package check reads the installed version):
   * its "absent" overrides every scanner's word on those keys, not only its own. Requires coveredKeys.
   */
  authoritative?: boolean;
  /** Each weakness key has at most one intel row in stage_findings (no de-duplication needed). */
  intelUnique?: boolean;
  /** Only these asset × key pairs are covered (a check that looked at different keys per asset). */
  coveredPairs?: { assetId: number; key: string }[];
  /** Called after each statement with its name, for timings. */
  step?: (name: string) => void;
}

export interface MergeCounts {
  observations: number;
  created: number;
  stillPresent: number;
  reappeared: number;
  gone: number;
  coveredAssets: number;
}

/** Observation columns that describe the latest sighting (replaced only by a newer scan). */
const DETAIL_COLUMNS = [
  ['kind', 'kind'],
  ['title', 'title'],
  ['severity', 'sev'],
  ['severity_reported', 'sev_rep'],
  ['rule_id', 'rule'],
  ['port', 'port'],
  ['protocol', 'proto'],
  ['service', 'svc'],
  ['package_name', 'pkg'],
  ['package_version', 'pkgver'],
  ['fixed_version', 'fixed'],
  ['package_type', 'pkgtype'],
  ['package_path', 'pkgpath'],
  ['location', 'loc'],
  ['evidence', 'evidence'],
  ['instances', 'instances'],
] as const;

export async function mergeReport(client: PoolClient, input: MergeInput): Promise<MergeCounts> {
  const { scanId, scanner, seenAt } = input;
  const step = input.step ?? (() => undefined);

  // Several findings of one report on one asset × weakness (a CVE in two packages) are one
  // observation: the most severe one's details, and how many there were. Most reports repeat no
  // pair: a hash aggregate over the two narrow columns says so, and then the collapse is a plain
  // join rather than a sort of a million wide rows (which spills to disk). Tracking pairs in the
  // ingest process instead would cost it tens of MB at a million findings.
  const { rows: repeats } = await client.query<{ repeated: boolean }>(
    'select exists (select 1 from stage_findings group by a, k having count(*) > 1) as repeated',
  );
  const pairsUnique = repeats[0]?.repeated === false;
  const details = DETAIL_COLUMNS.filter(([, c]) => c !== 'instances')
    .map(([, c]) => `f.${c}`)
    .join(', ');
  await client.query(
    pairsUnique
      ? `create temp table stage_obs on commit drop as
         select s.asset_id, f.k, s.asset_id::text || ':' || f.k as eid, s.scope, ${details}, 1 as instances
           from stage_findings f join stage_assets s on s.a = f.a`
      : `create temp table stage_obs on commit drop as
         select distinct on (s.asset_id, f.k)
                s.asset_id, f.k, s.asset_id::text || ':' || f.k as eid, s.scope, ${details},
                count(*) over (partition by s.asset_id, f.k) as instances
           from stage_findings f join stage_assets s on s.a = f.a
          order by s.asset_id, f.k, f.rank desc, f.title`,
  );
  await client.query('analyze stage_obs');
  step('collapse');

  await client.query(
    `create temp table stage_covered on commit drop as
       select asset_id from stage_assets union select unnest($1::bigint[])`,
    [input.coveredAssetIds],
  );
  if (input.coveredPairs) {
    await client.query(
      `create temp table stage_covered_pairs on commit drop as
         select * from unnest($1::bigint[], $2::text[]) as p(asset_id, k)`,
      [input.coveredPairs.map((p) => p.assetId), input.coveredPairs.map((p) => p.key)],
    );
  }
  const { rowCount: coveredAssets } = await client.query(
    `insert into scan_assets (scan_id, asset_id) select $1, asset_id from stage_covered on conflict do nothing`,
    [scanId],
  );

  // An asset that moved scope takes its exposures along.
  await client.query(`
    update exposures e set scope = s.scope, updated_at = now()
      from stage_assets s where e.asset_id = s.asset_id and e.scope is distinct from s.scope`);
  step('coverage');

  const reappeared = await client.query(
    `insert into scan_changes (scan_id, change, exposure_id)
     select $1, 'reappeared', e.id
       from stage_obs o join exposures e on e.asset_id = o.asset_id and e.vuln_key = o.k
      where not e.present and (e.absent_since is null or e.absent_since < $2)
     on conflict do nothing`,
    [scanId, seenAt],
  );
  step('reappeared');

  // Existing exposures are updated and new ones inserted, in two plain statements rather than one
  // INSERT … ON CONFLICT: cheaper per row, and a re-scan's updates touch no indexed column, so with
  // the tables' fillfactor they stay heap-only (HOT) and skip every index.
  const updated = await client.query(
    `update exposures e set
       first_seen = least(e.first_seen, $2),
       last_seen = greatest(e.last_seen, $2),
       last_scan_id = case when $2 >= e.last_seen then $1 else e.last_scan_id end,
       present = case when e.absent_since is null or e.absent_since < $2 then true else e.present end,
       absent_since = case when e.absent_since < $2 then null else e.absent_since end,
       updated_at = now()
       from stage_obs o
      where e.asset_id = o.asset_id and e.vuln_key = o.k`,
    [scanId, seenAt],
  );
  // The exposure id is exposureId(assetId, weaknessKey) from domain/exposure.ts: "<asset id>:<key>".
  const inserted = await client.query(
    `insert into exposures (id, asset_id, vuln_key, scope, state, first_seen, last_seen, present,
                           first_scan_id, last_scan_id, updated_at, learned_at)
     select o.eid, o.asset_id, o.k, o.scope, 'open', $2, $2, true, $1, $1, now(), $3
       from stage_obs o
      where not exists (select 1 from exposures e where e.asset_id = o.asset_id and e.vuln_key = o.k)`,
    [scanId, seenAt, input.learnedAt],
  );
  const created = inserted.rowCount ?? 0;
  const total = (updated.rowCount ?? 0) + created;
  step('exposures');

  const newer = '$3 >= o.last_seen';
  await client.query(
    `update observations o set
       present = case when o.absent_since is null or o.absent_since < $3 then true else o.present end,
       absent_since = case when o.absent_since < $3 then null else o.absent_since end,
       absent_scan_id = case when o.absent_since < $3 then null else o.absent_scan_id end,
       first_seen = least(o.first_seen, $3),
       first_scan_id = case when $3 < o.first_seen then $1 else o.first_scan_id end,
       last_seen = greatest(o.last_seen, $3),
       last_scan_id = case when ${newer} then $1 else o.last_scan_id end,
       ${DETAIL_COLUMNS.map(([c, sc]) => `${c} = case when ${newer} then s.${sc} else o.${c} end`).join(',\n       ')}
       from stage_obs s
      where o.exposure_id = s.eid and o.scanner = $2`,
    [scanId, scanner, seenAt],
  );
  await client.query(
    `insert into observations (exposure_id, scanner, asset_id, vuln_key, present, first_seen, last_seen,
                              first_scan_id, last_scan_id, ${DETAIL_COLUMNS.map(([c]) => c).join(', ')})
     select s.eid, $2, s.asset_id, s.k, true, $3, $3, $1, $1, ${DETAIL_COLUMNS.map(([, c]) => `s.${c}`).join(', ')}
       from stage_obs s
      where not exists (select 1 from observations o where o.exposure_id = s.eid and o.scanner = $2)`,
    [scanId, scanner, seenAt],
  );
  step('observations');

  // Gone: this scanner's present observations on covered assets (and covered keys) that this scan did
  // not repeat — every scanner's, for an authoritative check. The exposure is gone when no
  // observation of it is left present.
  await client.query('create temp table stage_gone (exposure_id text not null) on commit drop');
  await client.query(
    `with gone_obs as (
       update observations o
          set present = false, absent_since = $3, absent_scan_id = $1
        where o.present
          and o.asset_id in (select asset_id from stage_covered)
          and o.last_scan_id <> $1 and o.last_seen <= $3
          and (o.scanner = $2 or $5::boolean)
          and ($4::text[] is null or o.vuln_key = any($4::text[]))${
            input.coveredPairs
              ? `
          and exists (select 1 from stage_covered_pairs p where p.asset_id = o.asset_id and p.k = o.vuln_key)`
              : ''
          }${
            input.authoritative
              ? `
          and not exists (select 1 from stage_obs s where s.asset_id = o.asset_id and s.k = o.vuln_key)`
              : ''
          }
       returning o.exposure_id
     )
     insert into stage_gone select distinct exposure_id from gone_obs`,
    [scanId, scanner, seenAt, input.coveredKeys ?? null, input.authoritative === true],
  );
  await client.query('analyze stage_gone');
  // Now that those observations say absent, an exposure is gone when none of its observations is
  // still present (another scanner may still see it).
  const gone = await client.query(
    `with gone_exp as (
       update exposures e
          set present = false, absent_since = $2, last_absent_scan_id = $1, updated_at = now()
        where e.id in (select exposure_id from stage_gone) and e.present
          and not exists (select 1 from observations o where o.exposure_id = e.id and o.present)
       returning e.id
     )
     insert into scan_changes (scan_id, change, exposure_id)
     select $1, 'gone', id from gone_exp on conflict do nothing`,
    [scanId, seenAt],
  );

  step('gone');
  await mergeIntel(client, seenAt, input.intelUnique === true);
  step('intel');

  const reappearedCount = reappeared.rowCount ?? 0;
  return {
    observations: total,
    created,
    reappeared: reappearedCount,
    stillPresent: total - created - reappearedCount,
    gone: gone.rowCount ?? 0,
    coveredAssets: coveredAssets ?? 0,
  };
}

/**
 * What the report says about each weakness. The generic title and description only fill gaps (a feed
 * is the better source and may already have written them); the reported_* columns hold the latest
 * report's word.
 */
const REPORTED = [
  'reported_cvss',
  'reported_epss',
  'reported_epss_percentile',
  'reported_exploit_available',
  'reported_solution',
  'reported_cwe',
] as const;

async function mergeIntel(client: PoolClient, seenAt: Date, unique: boolean): Promise<void> {
  await client.query(
    `${unique ? '' : 'with again as materialized (select distinct k from stage_findings where i_again) '}insert into vulnerabilities as v (key, aliases, title, description, reported_cvss, reported_epss,
                                       reported_epss_percentile, reported_exploit_available, reported_solution,
                                       reported_cwe, reported_at)
     select k, coalesce(i_aliases, '{}'), i_title, i_desc, i_cvss, i_epss,
            i_epss_pct, i_exploit, i_solution, i_cwe, $1
       from ${
         unique
           ? 'stage_findings where intel'
           : // Sorting wide rows to de-duplicate is the expensive part: only the keys staging marked
             // as perhaps staged again (i_again) are sorted, the best-described row of each kept.
             `(select * from stage_findings s
                 where intel and not exists (select 1 from again g where g.k = s.k)
               union all
               (select distinct on (k) * from stage_findings s
                 where intel and exists (select 1 from again g where g.k = s.k)
                 order by k, (i_desc is null), (i_cvss is null))) x`
       }
     on conflict (key) do update set
       aliases = array(select distinct x from unnest(v.aliases || excluded.aliases) as x order by x),
       title = coalesce(v.title, excluded.title),
       description = coalesce(v.description, excluded.description),
       reported_cvss = coalesce(excluded.reported_cvss, v.reported_cvss),
       reported_epss = coalesce(excluded.reported_epss, v.reported_epss),
       reported_epss_percentile = coalesce(excluded.reported_epss_percentile, v.reported_epss_percentile),
       reported_exploit_available = coalesce(excluded.reported_exploit_available, v.reported_exploit_available),
       reported_solution = coalesce(excluded.reported_solution, v.reported_solution),
       reported_cwe = coalesce(excluded.reported_cwe, v.reported_cwe),
       reported_at = greatest(v.reported_at, excluded.reported_at)
     -- A weekly re-scan repeats the same intel: leave unchanged rows alone rather than rewrite them.
     where not (v.aliases @> excluded.aliases)
        or (v.title is null and excluded.title is not null)
        or (v.description is null and excluded.description is not null)
        ${REPORTED.map((c) => `or (excluded.${c} is not null and excluded.${c} is distinct from v.${c})`).join('\n        ')}`,
    [seenAt],
  );
}
