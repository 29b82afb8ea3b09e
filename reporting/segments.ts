// The digest's counts in one pass over the exposures, fast at a million rows. Every figure compares
// an exposure's timestamps (first seen, resolved, verified, breached, due, accepted until) with a
// handful of fixed instants: the end of each week, the week's start, +7 days, −30 and −90 days, the
// expiry window. So PostgreSQL only has to say, for each timestamp, between which two of those
// instants it falls (width_bucket over the sorted instants: a binary search), and count rows per
// combination; a few thousand groups come back and every figure is summed from them here, exactly.
// That is one hash aggregate with a dozen cheap keys instead of a hundred filtered aggregates.
import type { Pool } from '../runtime/pool.ts';

export interface Segment {
  scope: string;
  priority: string;
  /** 'risk-accepted', 'retired', or '' for any other state. */
  state: string;
  kevNow: boolean;
  kevPrev: boolean;
  /** Bucket indexes (width_bucket over the instants); null where the timestamp is null. */
  firstSeen: number;
  resolved: number | null;
  verified: number | null;
  breached: number | null;
  due: number | null;
  /** coalesce(breached, due). */
  late: number | null;
  acceptedUntil: number | null;
  /** Not breached before it was resolved (closed within its SLA). */
  withinSla: boolean;
  count: number;
  /** Sum and count of exposure_seconds (first seen → verified). */
  seconds: number;
  secondsCount: number;
}

/** The sorted, distinct instants, and tests on a bucket index against one of them. */
export class Instants {
  private readonly sorted: number[];
  private readonly index = new Map<number, number>();

  constructor(instants: Date[]) {
    this.sorted = [...new Set(instants.map((d) => d.getTime()))].sort((a, b) => a - b);
    this.sorted.forEach((t, i) => this.index.set(t, i));
  }

  get array(): Date[] {
    return this.sorted.map((t) => new Date(t));
  }

  private at(d: Date): number {
    const i = this.index.get(d.getTime());
    if (i === undefined) throw new Error(`instant ${d.toISOString()} was not registered`);
    return i;
  }

  /** timestamp < d (width_bucket counts the instants ≤ the timestamp). */
  before(bucket: number | null, d: Date): boolean {
    return bucket !== null && bucket <= this.at(d);
  }

  /** timestamp ≥ d. */
  atOrAfter(bucket: number | null, d: Date): boolean {
    return bucket !== null && bucket > this.at(d);
  }

  /** start ≤ timestamp < end. */
  within(bucket: number | null, start: Date, end: Date): boolean {
    return this.atOrAfter(bucket, start) && this.before(bucket, end);
  }
}

const segmentsSql = `
  with k as (
    select cve,
           bool_or(valid_from <= $2 and (valid_to is null or valid_to > $2)) as at_now,
           bool_or(valid_from <= $3 and (valid_to is null or valid_to > $3)) as at_prev
      from kev_entries group by cve)
  select coalesce(e.scope, '(none)') as scope, coalesce(e.priority, 'track') as priority,
         case when e.state in ('risk-accepted', 'retired') then e.state else '' end as state,
         coalesce(k.at_now, false) as kev_now, coalesce(k.at_prev, false) as kev_prev,
         width_bucket(e.first_seen, $1::timestamptz[]) as fs,
         width_bucket(e.resolved_at, $1::timestamptz[]) as rs,
         width_bucket(e.verified_at, $1::timestamptz[]) as vs,
         width_bucket(e.sla_breached_at, $1::timestamptz[]) as bs,
         width_bucket(e.sla_due, $1::timestamptz[]) as ds,
         width_bucket(coalesce(e.sla_breached_at, e.sla_due), $1::timestamptz[]) as od,
         width_bucket(e.risk_accepted_until, $1::timestamptz[]) as ra,
         (e.sla_breached_at is null or e.sla_breached_at >= e.resolved_at) as within_sla,
         count(*) as n, coalesce(sum(e.exposure_seconds), 0) as secs, count(e.exposure_seconds) as secs_n
    from exposures e left join k on k.cve = e.vuln_key
   where e.first_seen < $2 and e.ctid >= format('(%s,0)', $4::bigint)::tid
     and ($5::bigint is null or e.ctid < format('(%s,0)', $5::bigint)::tid)
   group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13`;

/**
 * The planner cannot know that a dozen bucket keys make only a few thousand groups, so it plans a
 * sort of every row (spilling to disk at a million); a hash aggregate is what fits. Said for this
 * one statement only (SET LOCAL in its own transaction).
 */
async function hashed<R extends Record<string, unknown>>(
  pool: Pool,
  sql: string,
  args: unknown[],
): Promise<{ rows: R[] }> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query("set local enable_sort = off; set local work_mem = '32MB'");
    const result = await client.query<R>(sql, args);
    await client.query('commit');
    return result;
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Group the exposures first seen before `end` by where their timestamps fall among `instants`. The
 * table is read in `parts` page ranges at once (TID range scans, one connection each), since one
 * hash aggregate runs on one core; the groups of the parts are added up here.
 */
export async function segments(
  pool: Pool,
  instants: Instants,
  end: Date,
  previousEnd: Date,
  parts = 2,
): Promise<Segment[]> {
  const pages = Number(
    (
      await pool.query<{ n: string }>(
        `select greatest(relpages, 1) as n from pg_class where oid = 'exposures'::regclass`,
      )
    ).rows[0]?.n ?? 1,
  );
  const n = pages < 1000 ? 1 : parts;
  const step = Math.ceil(pages / n);
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      hashed<SegmentRow>(pool, segmentsSql, [
        instants.array,
        end,
        previousEnd,
        i * step,
        i === n - 1 ? null : (i + 1) * step,
      ]),
    ),
  );
  const merged = new Map<string, Segment>();
  for (const r of results.flatMap((x) => x.rows)) {
    const key = [
      r.scope,
      r.priority,
      r.state,
      r.kev_now,
      r.kev_prev,
      r.fs,
      r.rs,
      r.vs,
      r.bs,
      r.ds,
      r.od,
      r.ra,
      r.within_sla,
    ].join('|');
    const m = merged.get(key);
    if (m) {
      m.count += Number(r.n);
      m.seconds += Number(r.secs);
      m.secondsCount += Number(r.secs_n);
      continue;
    }
    merged.set(key, {
      scope: r.scope,
      priority: r.priority,
      state: r.state,
      kevNow: r.kev_now,
      kevPrev: r.kev_prev,
      firstSeen: r.fs,
      resolved: r.rs,
      verified: r.vs,
      breached: r.bs,
      due: r.ds,
      late: r.od,
      acceptedUntil: r.ra,
      withinSla: r.within_sla === true,
      count: Number(r.n),
      seconds: Number(r.secs),
      secondsCount: Number(r.secs_n),
    });
  }
  return [...merged.values()];
}

interface SegmentRow extends Record<string, unknown> {
  scope: string;
  priority: string;
  state: string;
  kev_now: boolean;
  kev_prev: boolean;
  fs: number;
  rs: number | null;
  vs: number | null;
  bs: number | null;
  ds: number | null;
  od: number | null;
  ra: number | null;
  within_sla: boolean | null;
  n: string;
  secs: string;
  secs_n: string;
}

const mediansSql = `
  select grouping(x.scope) as all_scopes, grouping(x.priority) as all_priorities, x.side, x.scope, x.priority,
         percentile_cont(0.5) within group (order by x.exposure_seconds) as median
    from (select coalesce(scope, '(none)') as scope, coalesce(priority, 'track') as priority, exposure_seconds,
                 case when verified_at >= $3 and verified_at < $1 then 'now' else 'prev' end as side
            from exposures
           where exposure_seconds is not null
             and ((verified_at >= $3 and verified_at < $1) or (verified_at >= $4 and verified_at < $2))) x
   group by grouping sets ((x.side, x.scope, x.priority), (x.side, x.scope), (x.side, x.priority), (x.side))`;

export interface Median {
  side: 'now' | 'prev';
  /** undefined: every scope (or every priority). */
  scope?: string;
  priority?: string;
  seconds: number;
}

/** Medians of time to remediate of what was verified fixed in each week (few rows: the verified_at index). */
export async function medians(
  pool: Pool,
  end: Date,
  previousEnd: Date,
  start: Date,
  previousStart: Date,
): Promise<Median[]> {
  const { rows } = await pool.query<{
    all_scopes: number;
    all_priorities: number;
    side: 'now' | 'prev';
    scope: string;
    priority: string;
    median: number;
  }>(mediansSql, [end, previousEnd, start, previousStart]);
  return rows.map((r) => ({
    side: r.side,
    ...(Number(r.all_scopes) === 1 ? {} : { scope: r.scope }),
    ...(Number(r.all_priorities) === 1 ? {} : { priority: r.priority }),
    seconds: Number(r.median),
  }));
}
