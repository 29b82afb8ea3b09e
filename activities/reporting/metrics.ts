// The weekly digest's figures, computed in SQL from the exposures read model, the inventory, the
// scans and the KEV history. Nothing is snapshotted: "last week" is the same query at a point seven
// days earlier, because every figure is a function of timestamps (first seen, resolved, breached,
// verified, KEV validity, scan times). Where the row only holds the latest value (an SLA deadline
// that moved, a risk acceptance's end), the previous week's figure uses that latest value.
//
// The queries run in parallel, each one pass over the exposures, so a million exposures take a
// few hundred milliseconds each (bench/digest.ts).
import type { Pool } from '../../db/pool.ts';
import type { Config } from '../../domain/config.ts';
import { emptyCounts, priorities, type PriorityCounts, type PriorityKey } from '../../domain/health.ts';
import { cadenceSeconds, digestSettings, expiringWithinMs } from './config.ts';
import type { ReportWeek } from './week.ts';

export const ageBuckets = ['0–7 days', '8–30 days', '31–90 days', 'over 90 days'] as const;
export type AgeBucket = (typeof ageBuckets)[number];

/** One side of the week-over-week comparison, for one scope (or all of them). */
export interface Snapshot {
  assets: number;
  assetsCovered: number;
  open: PriorityCounts;
  overdue: PriorityCounts;
  opened: PriorityCounts;
  closed: PriorityCounts;
  closedWithinSla: PriorityCounts;
  fixed: PriorityCounts;
  breaches: PriorityCounts;
  dueNextWeek: PriorityCounts;
  kevOpen: PriorityCounts;
  riskAcceptancesExpiring: number;
  /** First seen → verified fixed, of exposures verified fixed in the week; null when none was. */
  mttrMeanDays: number | null;
  mttrMedianDays: number | null;
  mttrByPriority: Record<PriorityKey, { meanDays: number | null; medianDays: number | null }>;
  /** Open exposures at the end of the period, by age. */
  age: Record<AgeBucket, PriorityCounts>;
}

export interface ScopeFigures {
  /** The scope's name, or "all" for the whole estate. */
  scope: string;
  current: Snapshot;
  previous: Snapshot;
}

export interface TopAsset {
  assetId: number;
  name: string;
  scope: string | null;
  criticality: string;
  risk: number;
  riskBefore: number;
  open: number;
  act: number;
  kev: number;
}

export interface TopWeakness {
  key: string;
  title: string | null;
  risk: number;
  riskBefore: number;
  assets: number;
  open: number;
  kev: boolean;
  priority: PriorityKey;
}

export interface ExpiringAcceptance {
  exposureId: string;
  asset: string;
  weakness: string;
  until: string;
  by: string | null;
  scope: string | null;
}

export interface TrendPoint {
  /** The end of the 7-day period. */
  at: string;
  open: number;
  overdue: number;
  act: number;
  fixed: number;
  breaches: number;
}

export interface DigestMetrics {
  week: { label: string; start: string; end: string; asOf: string };
  all: ScopeFigures;
  scopes: ScopeFigures[];
  topAssets: TopAsset[];
  topWeaknesses: TopWeakness[];
  expiring: ExpiringAcceptance[];
  /** Eight weekly points ending at `week.asOf`, oldest first. */
  trend: TrendPoint[];
}

const DAY_MS = 86_400_000;
const DAY_S = 86_400;

/** Risk points of one open exposure: the health score's weights (domain/health.ts), KEV adds 5. */
const riskWeight = `(case coalesce(e.priority, 'track') when 'act' then 10 when 'attend' then 4 when 'track*' then 1 else 0.25 end
                    + case when k.at_now then 5 else 0 end)`;
const riskWeightBefore = riskWeight.replace('k.at_now', 'k.at_prev');

// $1 = end of the period (T), $2 = T − 7 days (P).
const kevAtBoth = `
  select cve,
         bool_or(valid_from <= $1 and (valid_to is null or valid_to > $1)) as at_now,
         bool_or(valid_from <= $2 and (valid_to is null or valid_to > $2)) as at_prev
    from kev_entries group by cve`;

const openAt = (t: string) => `(e.first_seen < ${t} and (e.resolved_at is null or e.resolved_at >= ${t}))`;

/**
 * One pass, grouped by scope × priority, by scope, and overall (grouping sets), so medians are true
 * medians at every level. Parameters: $1 T, $2 P, $3 week start, $4 previous week start,
 * $5 expiring window (seconds).
 */
function figuresSql(): string {
  const side = (t: string, start: string, suffix: string, kev: string) => `
    count(*) filter (where ${openAt(t)}) as open_${suffix},
    count(*) filter (where ${openAt(t)} and e.state <> 'risk-accepted' and coalesce(e.sla_breached_at, e.sla_due) < ${t}) as overdue_${suffix},
    count(*) filter (where e.first_seen >= ${start} and e.first_seen < ${t}) as opened_${suffix},
    count(*) filter (where e.resolved_at >= ${start} and e.resolved_at < ${t} and e.state <> 'retired') as closed_${suffix},
    count(*) filter (where e.resolved_at >= ${start} and e.resolved_at < ${t} and e.state <> 'retired'
                       and (e.sla_breached_at is null or e.sla_breached_at >= e.resolved_at)) as closed_within_${suffix},
    count(*) filter (where e.verified_at >= ${start} and e.verified_at < ${t}) as fixed_${suffix},
    avg(e.exposure_seconds) filter (where e.verified_at >= ${start} and e.verified_at < ${t}) as mttr_mean_${suffix},
    percentile_cont(0.5) within group (order by e.exposure_seconds)
      filter (where e.verified_at >= ${start} and e.verified_at < ${t} and e.exposure_seconds is not null) as mttr_median_${suffix},
    count(*) filter (where e.sla_breached_at >= ${start} and e.sla_breached_at < ${t}) as breaches_${suffix},
    count(*) filter (where ${openAt(t)} and (e.sla_breached_at is null or e.sla_breached_at >= ${t})
                       and e.sla_due >= ${t} and e.sla_due < ${t} + interval '7 days') as due_next_${suffix},
    count(*) filter (where ${openAt(t)} and ${kev}) as kev_open_${suffix},
    count(*) filter (where e.risk_accepted_until >= ${t} and e.risk_accepted_until < ${t} + make_interval(secs => $5)
                       and e.first_seen < ${t} ${suffix === 'now' ? `and e.state = 'risk-accepted'` : ''}) as expiring_${suffix},
    count(*) filter (where ${openAt(t)} and e.first_seen >= ${t} - interval '7 days') as age0_${suffix},
    count(*) filter (where ${openAt(t)} and e.first_seen < ${t} - interval '7 days' and e.first_seen >= ${t} - interval '30 days') as age1_${suffix},
    count(*) filter (where ${openAt(t)} and e.first_seen < ${t} - interval '30 days' and e.first_seen >= ${t} - interval '90 days') as age2_${suffix},
    count(*) filter (where ${openAt(t)} and e.first_seen < ${t} - interval '90 days') as age3_${suffix}`;
  return `
    with k as (${kevAtBoth})
    select grouping(coalesce(e.scope, '(none)')) as all_scopes, grouping(coalesce(e.priority, 'track')) as all_priorities,
           coalesce(e.scope, '(none)') as scope, coalesce(e.priority, 'track') as priority,
           ${side('$1', '$3', 'now', 'coalesce(k.at_now, false)')},
           ${side('$2', '$4', 'prev', 'coalesce(k.at_prev, false)')}
      from exposures e left join k on k.cve = e.vuln_key
     group by grouping sets ((coalesce(e.scope, '(none)'), coalesce(e.priority, 'track')), (coalesce(e.scope, '(none)')), ())`;
}

type FiguresRow = Record<string, string | number | null> & {
  all_scopes: number;
  all_priorities: number;
  scope: string;
  priority: string;
};

const coverageSql = `
  with cadence as (select * from jsonb_to_recordset($3::jsonb) as c(scope text, seconds double precision)),
       last_scan as (
         select sa.asset_id,
                max(coalesce(s.finished_at, s.imported_at)) filter (where coalesce(s.finished_at, s.imported_at) < $1) as at_now,
                max(coalesce(s.finished_at, s.imported_at)) filter (where coalesce(s.finished_at, s.imported_at) < $2) as at_prev
           from scan_assets sa join scans s on s.id = sa.scan_id
          group by sa.asset_id)
  select coalesce(a.scope, '(none)') as scope,
         count(*) filter (where a.first_seen < $1 and (a.retired_at is null or a.retired_at >= $1)) as assets_now,
         count(*) filter (where a.first_seen < $1 and (a.retired_at is null or a.retired_at >= $1)
                            and ls.at_now >= $1 - make_interval(secs => coalesce(c.seconds, ${7 * DAY_S}))) as covered_now,
         count(*) filter (where a.first_seen < $2 and (a.retired_at is null or a.retired_at >= $2)) as assets_prev,
         count(*) filter (where a.first_seen < $2 and (a.retired_at is null or a.retired_at >= $2)
                            and ls.at_prev >= $2 - make_interval(secs => coalesce(c.seconds, ${7 * DAY_S}))) as covered_prev
    from assets a
    left join last_scan ls on ls.asset_id = a.id
    left join cadence c on c.scope = a.scope
   group by 1`;

const topAssetsSql = `
  with k as (${kevAtBoth}),
       per_asset as (
         select e.asset_id,
                sum(${riskWeight}) filter (where ${openAt('$1')}) as risk_now,
                sum(${riskWeightBefore}) filter (where ${openAt('$2')}) as risk_prev,
                count(*) filter (where ${openAt('$1')}) as open_now,
                count(*) filter (where ${openAt('$1')} and e.priority = 'act') as act_now,
                count(*) filter (where ${openAt('$1')} and k.at_now) as kev_now
           from exposures e left join k on k.cve = e.vuln_key
          where e.first_seen < $1 and (e.resolved_at is null or e.resolved_at >= $2)
          group by e.asset_id)
  select p.asset_id, coalesce(a.fqdn, a.hostname, a.image_repo, a.ips[1], a.identity_key) as name, a.scope, a.criticality,
         p.risk_now, coalesce(p.risk_prev, 0) as risk_prev, p.open_now, p.act_now, p.kev_now
    from per_asset p join assets a on a.id = p.asset_id
   where p.open_now > 0
   order by p.risk_now desc, p.act_now desc, p.asset_id
   limit $3`;

const topWeaknessesSql = `
  with k as (${kevAtBoth}),
       per_key as (
         select e.vuln_key,
                sum(${riskWeight}) filter (where ${openAt('$1')}) as risk_now,
                sum(${riskWeightBefore}) filter (where ${openAt('$2')}) as risk_prev,
                count(distinct e.asset_id) filter (where ${openAt('$1')}) as assets_now,
                count(*) filter (where ${openAt('$1')}) as open_now,
                bool_or(coalesce(k.at_now, false)) as kev,
                min(case coalesce(e.priority, 'track') when 'act' then 0 when 'attend' then 1 when 'track*' then 2 else 3 end)
                  filter (where ${openAt('$1')}) as best
           from exposures e left join k on k.cve = e.vuln_key
          where e.first_seen < $1 and (e.resolved_at is null or e.resolved_at >= $2)
          group by e.vuln_key)
  select p.vuln_key, v.title, p.risk_now, coalesce(p.risk_prev, 0) as risk_prev, p.assets_now, p.open_now, p.kev, p.best
    from per_key p left join vulnerabilities v on v.key = p.vuln_key
   where p.open_now > 0
   order by p.risk_now desc, p.assets_now desc, p.vuln_key
   limit $3`;

const expiringSql = `
  select e.id, coalesce(a.fqdn, a.hostname, a.image_repo, a.ips[1], a.identity_key) as asset, e.vuln_key,
         e.risk_accepted_until, e.risk_accepted_by, e.scope
    from exposures e join assets a on a.id = e.asset_id
   where e.state = 'risk-accepted' and e.risk_accepted_until >= $1 and e.risk_accepted_until < $1 + make_interval(secs => $2)
   order by e.risk_accepted_until, e.id
   limit $3`;

/** Eight points T, T−7d, …, T−49d in one pass. */
function trendSql(points: number): string {
  const cols: string[] = [];
  for (let i = 0; i < points; i++) {
    const t = `($1::timestamptz - interval '${7 * i} days')`;
    const start = `($1::timestamptz - interval '${7 * (i + 1)} days')`;
    cols.push(
      `count(*) filter (where ${openAt(t)}) as open_${i}`,
      `count(*) filter (where ${openAt(t)} and e.state <> 'risk-accepted' and coalesce(e.sla_breached_at, e.sla_due) < ${t}) as overdue_${i}`,
      `count(*) filter (where ${openAt(t)} and e.priority = 'act') as act_${i}`,
      `count(*) filter (where e.verified_at >= ${start} and e.verified_at < ${t}) as fixed_${i}`,
      `count(*) filter (where e.sla_breached_at >= ${start} and e.sla_breached_at < ${t}) as breaches_${i}`,
    );
  }
  return `select ${cols.join(',\n')} from exposures e where e.first_seen < $1`;
}

const TREND_POINTS = 8;

function num(v: unknown): number {
  return v === null || v === undefined ? 0 : Number(v);
}

function days(v: unknown): number | null {
  return v === null || v === undefined ? null : Math.round((Number(v) / DAY_S) * 10) / 10;
}

function emptySnapshot(): Snapshot {
  const byPriority = () => ({ meanDays: null, medianDays: null });
  return {
    assets: 0,
    assetsCovered: 0,
    open: emptyCounts(),
    overdue: emptyCounts(),
    opened: emptyCounts(),
    closed: emptyCounts(),
    closedWithinSla: emptyCounts(),
    fixed: emptyCounts(),
    breaches: emptyCounts(),
    dueNextWeek: emptyCounts(),
    kevOpen: emptyCounts(),
    riskAcceptancesExpiring: 0,
    mttrMeanDays: null,
    mttrMedianDays: null,
    mttrByPriority: { act: byPriority(), attend: byPriority(), 'track*': byPriority(), track: byPriority() },
    age: {
      '0–7 days': emptyCounts(),
      '8–30 days': emptyCounts(),
      '31–90 days': emptyCounts(),
      'over 90 days': emptyCounts(),
    },
  };
}

function asPriority(p: string): PriorityKey {
  return (priorities as readonly string[]).includes(p) ? (p as PriorityKey) : 'track';
}

/** Fill one snapshot from a figures row: per-priority counts from a (scope, priority) row, totals from the others. */
function addRow(
  s: Snapshot,
  row: FiguresRow,
  suffix: 'now' | 'prev',
  priority: PriorityKey | undefined,
): void {
  if (priority) {
    const counts: [keyof Snapshot, string][] = [
      ['open', 'open'],
      ['overdue', 'overdue'],
      ['opened', 'opened'],
      ['closed', 'closed'],
      ['closedWithinSla', 'closed_within'],
      ['fixed', 'fixed'],
      ['breaches', 'breaches'],
      ['dueNextWeek', 'due_next'],
      ['kevOpen', 'kev_open'],
    ];
    for (const [field, column] of counts)
      (s[field] as PriorityCounts)[priority] += num(row[`${column}_${suffix}`]);
    ageBuckets.forEach((b, i) => (s.age[b][priority] += num(row[`age${i}_${suffix}`])));
    s.mttrByPriority[priority] = {
      meanDays: days(row[`mttr_mean_${suffix}`]),
      medianDays: days(row[`mttr_median_${suffix}`]),
    };
  } else {
    s.riskAcceptancesExpiring = num(row[`expiring_${suffix}`]);
    s.mttrMeanDays = days(row[`mttr_mean_${suffix}`]);
    s.mttrMedianDays = days(row[`mttr_median_${suffix}`]);
  }
}

export interface MetricsOptions {
  /** Cut-off for a week still in progress (default now). */
  now?: Date;
}

export async function computeDigestMetrics(
  pool: Pool,
  config: Config,
  week: ReportWeek,
  opts: MetricsOptions = {},
): Promise<DigestMetrics> {
  const settings = digestSettings(config);
  const now = opts.now ?? new Date();
  const asOf = new Date(Math.min(week.end.getTime(), now.getTime()));
  const before = new Date(asOf.getTime() - 7 * DAY_MS);
  const previousStart = new Date(week.start.getTime() - 7 * DAY_MS);
  const expiringSeconds = expiringWithinMs(settings) / 1000;

  const [figures, coverage, assets, weaknesses, expiring, trend] = await Promise.all([
    pool.query<FiguresRow>(figuresSql(), [asOf, before, week.start, previousStart, expiringSeconds]),
    pool.query<{
      scope: string;
      assets_now: string;
      covered_now: string;
      assets_prev: string;
      covered_prev: string;
    }>(coverageSql, [asOf, before, JSON.stringify(cadenceSeconds(config))]),
    pool.query<Record<string, string | number | null>>(topAssetsSql, [asOf, before, settings.top]),
    pool.query<Record<string, string | number | boolean | null>>(topWeaknessesSql, [
      asOf,
      before,
      settings.top,
    ]),
    pool.query<{
      id: string;
      asset: string;
      vuln_key: string;
      risk_accepted_until: Date;
      risk_accepted_by: string | null;
      scope: string | null;
    }>(expiringSql, [asOf, expiringSeconds, settings.top]),
    pool.query<Record<string, string>>(trendSql(TREND_POINTS), [asOf]),
  ]);

  const byScope = new Map<string, ScopeFigures>();
  const figuresOf = (scope: string): ScopeFigures => {
    let f = byScope.get(scope);
    if (!f) byScope.set(scope, (f = { scope, current: emptySnapshot(), previous: emptySnapshot() }));
    return f;
  };
  const all: ScopeFigures = { scope: 'all', current: emptySnapshot(), previous: emptySnapshot() };
  for (const row of figures.rows) {
    const allScopes = Number(row.all_scopes) === 1;
    const allPriorities = Number(row.all_priorities) === 1;
    if (allScopes) {
      addRow(all.current, row, 'now', undefined);
      addRow(all.previous, row, 'prev', undefined);
      continue;
    }
    const f = figuresOf(row.scope);
    const priority = allPriorities ? undefined : asPriority(row.priority);
    addRow(f.current, row, 'now', priority);
    addRow(f.previous, row, 'prev', priority);
    if (priority) {
      // Per-priority counts add up across scopes; medians do not (the overall row has its own).
      const overall = { ...row };
      for (const key of Object.keys(overall)) if (key.startsWith('mttr_')) overall[key] = null;
      addRow(all.current, overall, 'now', priority);
      addRow(all.previous, overall, 'prev', priority);
    }
  }
  // Overall per-priority medians: from the per-scope rows only when one scope has them all.
  for (const p of priorities) {
    const withData = [...byScope.values()].filter((f) => f.current.fixed[p] > 0);
    if (withData.length === 1) all.current.mttrByPriority[p] = withData[0]!.current.mttrByPriority[p];
    const withDataBefore = [...byScope.values()].filter((f) => f.previous.fixed[p] > 0);
    if (withDataBefore.length === 1)
      all.previous.mttrByPriority[p] = withDataBefore[0]!.previous.mttrByPriority[p];
  }
  for (const c of coverage.rows) {
    const f = figuresOf(c.scope);
    f.current.assets = num(c.assets_now);
    f.current.assetsCovered = num(c.covered_now);
    f.previous.assets = num(c.assets_prev);
    f.previous.assetsCovered = num(c.covered_prev);
    all.current.assets += f.current.assets;
    all.current.assetsCovered += f.current.assetsCovered;
    all.previous.assets += f.previous.assets;
    all.previous.assetsCovered += f.previous.assetsCovered;
  }
  // Scopes in ctem.yaml first (in its order), then any others the data holds.
  const configured = config.scopes.map((s) => s.name);
  const scopes = [...byScope.values()]
    .filter(
      (f) =>
        configured.includes(f.scope) ||
        f.current.assets > 0 ||
        totalOf(f.current.open) > 0 ||
        totalOf(f.previous.open) > 0,
    )
    .sort((a, b) => {
      const ia = configured.indexOf(a.scope);
      const ib = configured.indexOf(b.scope);
      return (ia < 0 ? 1e6 : ia) - (ib < 0 ? 1e6 : ib) || a.scope.localeCompare(b.scope);
    });

  const t = trend.rows[0] ?? {};
  const trendPoints: TrendPoint[] = [];
  for (let i = TREND_POINTS - 1; i >= 0; i--)
    trendPoints.push({
      at: new Date(asOf.getTime() - 7 * i * DAY_MS).toISOString(),
      open: num(t[`open_${i}`]),
      overdue: num(t[`overdue_${i}`]),
      act: num(t[`act_${i}`]),
      fixed: num(t[`fixed_${i}`]),
      breaches: num(t[`breaches_${i}`]),
    });

  const bestPriority: PriorityKey[] = ['act', 'attend', 'track*', 'track'];
  return {
    week: {
      label: week.label,
      start: week.start.toISOString(),
      end: week.end.toISOString(),
      asOf: asOf.toISOString(),
    },
    all,
    scopes,
    topAssets: assets.rows.map((r) => ({
      assetId: Number(r.asset_id),
      name: String(r.name),
      scope: r.scope === null ? null : String(r.scope),
      criticality: String(r.criticality),
      risk: Math.round(num(r.risk_now) * 100) / 100,
      riskBefore: Math.round(num(r.risk_prev) * 100) / 100,
      open: num(r.open_now),
      act: num(r.act_now),
      kev: num(r.kev_now),
    })),
    topWeaknesses: weaknesses.rows.map((r) => ({
      key: String(r.vuln_key),
      title: r.title === null ? null : String(r.title),
      risk: Math.round(num(r.risk_now) * 100) / 100,
      riskBefore: Math.round(num(r.risk_prev) * 100) / 100,
      assets: num(r.assets_now),
      open: num(r.open_now),
      kev: r.kev === true,
      priority: bestPriority[num(r.best)] ?? 'track',
    })),
    expiring: expiring.rows.map((r) => ({
      exposureId: r.id,
      asset: r.asset,
      weakness: r.vuln_key,
      until: r.risk_accepted_until.toISOString(),
      by: r.risk_accepted_by,
      scope: r.scope,
    })),
    trend: trendPoints,
  };
}

export function totalOf(c: PriorityCounts): number {
  return priorities.reduce((n, p) => n + c[p], 0);
}

/** Closed within SLA / closed in the week, as a percentage; null when nothing was closed. */
export function slaCompliance(s: Snapshot): number | null {
  const closed = totalOf(s.closed);
  return closed === 0 ? null : Math.round((totalOf(s.closedWithinSla) / closed) * 1000) / 10;
}
