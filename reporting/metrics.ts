// The weekly digest's figures, computed in SQL from the exposures read model, the inventory, the
// scans and the KEV history. Nothing is snapshotted: "last week" is the same query at a point seven
// days earlier, because every figure is a function of timestamps (first seen, resolved, breached,
// verified, KEV validity, scan times). Where the row only holds the latest value (an SLA deadline
// that moved, a risk acceptance's end), the previous week's figure uses that latest value.
//
// The queries run in parallel, each one pass over the exposures, so a million exposures take a
// few hundred milliseconds each (bench/digest.ts).
import type { Pool } from '../runtime/pool.ts';
import type { Config } from '../domain/config.ts';
import { emptyCounts, priorities, type PriorityCounts, type PriorityKey } from '../domain/health.ts';
import { cadenceSeconds, digestSettings, expiringWithinMs } from './config.ts';
import type { ReportWeek } from './week.ts';
import { Instants, medians, segments, type Median, type Segment } from './segments.ts';

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

/**
 * Top assets and top weaknesses from one read of the exposures open at either end of the week
 * (materialized once, aggregated twice), as two JSON arrays.
 */
const topSql = `
  with k as (${kevAtBoth}),
       r as materialized (
         select e.asset_id, e.vuln_key, coalesce(e.priority, 'track') as priority,
                ${openAt('$1')} as open_now, ${openAt('$2')} as open_prev,
                ${riskWeight} as w_now, ${riskWeightBefore} as w_prev, coalesce(k.at_now, false) as kev_now
           from exposures e left join k on k.cve = e.vuln_key
          where e.first_seen < $1 and (e.resolved_at is null or e.resolved_at >= $2)),
       per_asset as (
         select asset_id,
                sum(w_now) filter (where open_now) as risk_now,
                coalesce(sum(w_prev) filter (where open_prev), 0) as risk_prev,
                count(*) filter (where open_now) as open_now,
                count(*) filter (where open_now and priority = 'act') as act_now,
                count(*) filter (where open_now and kev_now) as kev_now
           from r group by asset_id having count(*) filter (where open_now) > 0
          order by 2 desc, 5 desc, 1 limit $3),
       per_key as (
         -- (asset, key) is unique: a weakness's open exposures are its assets.
         select vuln_key,
                sum(w_now) filter (where open_now) as risk_now,
                coalesce(sum(w_prev) filter (where open_prev), 0) as risk_prev,
                count(*) filter (where open_now) as open_now,
                bool_or(kev_now) as kev,
                min(case priority when 'act' then 0 when 'attend' then 1 when 'track*' then 2 else 3 end)
                  filter (where open_now) as best
           from r group by vuln_key having count(*) filter (where open_now) > 0
          order by 2 desc, 4 desc, 1 limit $3)
  select
    (select coalesce(json_agg(x order by x.risk_now desc, x.act_now desc, x.asset_id), '[]') from (
       select p.asset_id, coalesce(a.fqdn, a.hostname, a.image_repo, a.ips[1], a.identity_key) as name, a.scope, a.criticality,
              p.risk_now, p.risk_prev, p.open_now, p.act_now, p.kev_now
         from per_asset p join assets a on a.id = p.asset_id) x) as assets,
    (select coalesce(json_agg(y order by y.risk_now desc, y.assets_now desc, y.vuln_key), '[]') from (
       select p.vuln_key, v.title, p.risk_now, p.risk_prev, p.open_now as assets_now, p.open_now, p.kev, p.best
         from per_key p left join vulnerabilities v on v.key = p.vuln_key) y) as weaknesses`;

const expiringSql = `
  select e.id, coalesce(a.fqdn, a.hostname, a.image_repo, a.ips[1], a.identity_key) as asset, e.vuln_key,
         e.risk_accepted_until, e.risk_accepted_by, e.scope
    from exposures e join assets a on a.id = e.asset_id
   where e.state = 'risk-accepted' and e.risk_accepted_until >= $1 and e.risk_accepted_until < $1 + make_interval(secs => $2)
   order by e.risk_accepted_until, e.id
   limit $3`;

const TREND_POINTS = 8;

function shift(d: Date, days: number): Date {
  return new Date(d.getTime() + days * DAY_MS);
}

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

export interface MetricsOptions {
  /** Cut-off for a week still in progress (default now). */
  now?: Date;
}

/** The instants one digest compares. */
interface Period {
  /** The end of the period: the week's end, or now while the week is in progress. */
  asOf: Date;
  /** asOf − 7 days: the end of the previous period. */
  before: Date;
  weekStart: Date;
  previousStart: Date;
  /** How far ahead a risk acceptance's end counts as expiring. */
  expiringSeconds: number;
}

/** One side of the week-over-week comparison: the period ending at t. */
interface Side {
  side: 'now' | 'prev';
  t: Date;
  start: Date;
  kev: (g: Segment) => boolean;
}

/** One segment's exposures, with their priority and whether they were open, or overdue, at t. */
interface SegmentTimes {
  g: Segment;
  p: PriorityKey;
  openAt: (t: Date) => boolean;
  overdueAt: (t: Date) => boolean;
}

type TrendCounts = Omit<TrendPoint, 'at'>;

/** Every figure the segments add up to, before MTTR and coverage are filled in. */
interface Tally {
  byScope: Map<string, ScopeFigures>;
  all: ScopeFigures;
  /** Sums of time to remediate, for the means: [scope|'*'][priority|'*'][side]. */
  seconds: Map<string, { sum: number; n: number }>;
  /** Per trend point, newest first. */
  trendCounts: TrendCounts[];
}

function figuresOf(byScope: Map<string, ScopeFigures>, scope: string): ScopeFigures {
  let f = byScope.get(scope);
  if (!f) byScope.set(scope, (f = { scope, current: emptySnapshot(), previous: emptySnapshot() }));
  return f;
}

/** Every instant a figure is tested against: both sides' ends and windows, and the trend's points. */
function digestInstants(p: Period): Instants {
  return new Instants([
    ...[p.asOf, p.before].flatMap((t) => [
      t,
      shift(t, 7),
      shift(t, -7),
      shift(t, -30),
      shift(t, -90),
      new Date(t.getTime() + p.expiringSeconds * 1000),
    ]),
    p.weekStart,
    p.previousStart,
    ...Array.from({ length: TREND_POINTS + 1 }, (_, i) => shift(p.asOf, -7 * i)),
  ]);
}

/** Adds one segment's exposures to one side's snapshot. */
function addToSnapshot(
  s: Snapshot,
  { g, p, openAt, overdueAt }: SegmentTimes,
  { side, t, start, kev }: Side,
  instants: Instants,
  expiringSeconds: number,
): void {
  const n = g.count;
  const open = openAt(t);
  if (open) s.open[p] += n;
  if (overdueAt(t)) s.overdue[p] += n;
  if (instants.within(g.firstSeen, start, t)) s.opened[p] += n;
  const closed = g.state !== 'retired' && instants.within(g.resolved, start, t);
  if (closed) s.closed[p] += n;
  if (closed && g.withinSla) s.closedWithinSla[p] += n;
  if (instants.within(g.verified, start, t)) s.fixed[p] += n;
  if (instants.within(g.breached, start, t)) s.breaches[p] += n;
  if (
    open &&
    (g.breached === null || instants.atOrAfter(g.breached, t)) &&
    instants.within(g.due, t, shift(t, 7))
  )
    s.dueNextWeek[p] += n;
  if (open && kev(g)) s.kevOpen[p] += n;
  if (
    instants.within(g.acceptedUntil, t, new Date(t.getTime() + expiringSeconds * 1000)) &&
    (side === 'prev' || g.state === 'risk-accepted')
  )
    s.riskAcceptancesExpiring += n;
  if (open) {
    const bucket = instants.atOrAfter(g.firstSeen, shift(t, -7))
      ? 0
      : instants.atOrAfter(g.firstSeen, shift(t, -30))
        ? 1
        : instants.atOrAfter(g.firstSeen, shift(t, -90))
          ? 2
          : 3;
    s.age[ageBuckets[bucket]!][p] += n;
  }
}

/** Adds one segment's exposures to each trend point. */
function addToTrend(
  trendCounts: TrendCounts[],
  { g, p, openAt, overdueAt }: SegmentTimes,
  asOf: Date,
  instants: Instants,
): void {
  for (let i = 0; i < TREND_POINTS; i++) {
    const t = shift(asOf, -7 * i);
    const start = shift(asOf, -7 * (i + 1));
    const c = trendCounts[i]!;
    if (openAt(t)) {
      c.open += g.count;
      if (p === 'act') c.act += g.count;
    }
    if (overdueAt(t)) c.overdue += g.count;
    if (instants.within(g.verified, start, t)) c.fixed += g.count;
    if (instants.within(g.breached, start, t)) c.breaches += g.count;
  }
}

/** Both sides' snapshots per scope and for all, the MTTR sums and the trend, from the segments. */
function tallySegments(groups: Segment[], instants: Instants, period: Period): Tally {
  const tally: Tally = {
    byScope: new Map(),
    all: { scope: 'all', current: emptySnapshot(), previous: emptySnapshot() },
    seconds: new Map(),
    trendCounts: Array.from({ length: TREND_POINTS }, () => ({
      open: 0,
      overdue: 0,
      act: 0,
      fixed: 0,
      breaches: 0,
    })),
  };
  const { all, seconds } = tally;
  const addSeconds = (key: string, g: Segment) => {
    const s = seconds.get(key) ?? { sum: 0, n: 0 };
    s.sum += g.seconds;
    s.n += g.secondsCount;
    seconds.set(key, s);
  };
  const sides: Side[] = [
    { side: 'now', t: period.asOf, start: period.weekStart, kev: (g: Segment) => g.kevNow },
    { side: 'prev', t: period.before, start: period.previousStart, kev: (g: Segment) => g.kevPrev },
  ];
  for (const g of groups) {
    const p = asPriority(g.priority);
    const f = figuresOf(tally.byScope, g.scope);
    const openAt = (t: Date) =>
      instants.before(g.firstSeen, t) && (g.resolved === null || instants.atOrAfter(g.resolved, t));
    const overdueAt = (t: Date) => openAt(t) && g.state !== 'risk-accepted' && instants.before(g.late, t);
    const times: SegmentTimes = { g, p, openAt, overdueAt };
    for (const side of sides) {
      for (const s of [
        side.side === 'now' ? f.current : f.previous,
        side.side === 'now' ? all.current : all.previous,
      ])
        addToSnapshot(s, times, side, instants, period.expiringSeconds);
      if (instants.within(g.verified, side.start, side.t))
        for (const key of [
          `${g.scope}|${p}|${side.side}`,
          `${g.scope}|*|${side.side}`,
          `*|${p}|${side.side}`,
          `*|*|${side.side}`,
        ])
          addSeconds(key, g);
    }
    addToTrend(tally.trendCounts, times, period.asOf, instants);
  }
  return tally;
}

/** Mean and median time to remediate, overall and per priority, into every snapshot so far. */
function fillMttr({ byScope, all, seconds }: Tally, middles: Median[]): void {
  const mean = (key: string) => {
    const s = seconds.get(key);
    return s && s.n > 0 ? days(s.sum / s.n) : null;
  };
  const medianOf = new Map(
    middles.map((m) => [`${m.scope ?? '*'}|${m.priority ?? '*'}|${m.side}`, days(m.seconds)]),
  );
  const fill = (name: string, s: Snapshot, side: 'now' | 'prev') => {
    s.mttrMeanDays = mean(`${name}|*|${side}`);
    s.mttrMedianDays = medianOf.get(`${name}|*|${side}`) ?? null;
    for (const p of priorities)
      s.mttrByPriority[p] = {
        meanDays: mean(`${name}|${p}|${side}`),
        medianDays: medianOf.get(`${name}|${p}|${side}`) ?? null,
      };
  };
  for (const f of byScope.values()) {
    fill(f.scope, f.current, 'now');
    fill(f.scope, f.previous, 'prev');
  }
  fill('*', all.current, 'now');
  fill('*', all.previous, 'prev');
}

interface CoverageRow {
  scope: string;
  assets_now: string;
  covered_now: string;
  assets_prev: string;
  covered_prev: string;
}

/** Assets and assets covered by a recent scan, per scope and for all. */
function addCoverage({ byScope, all }: Tally, rows: CoverageRow[]): void {
  for (const c of rows) {
    const f = figuresOf(byScope, c.scope);
    f.current.assets = num(c.assets_now);
    f.current.assetsCovered = num(c.covered_now);
    f.previous.assets = num(c.assets_prev);
    f.previous.assetsCovered = num(c.covered_prev);
    all.current.assets += f.current.assets;
    all.current.assetsCovered += f.current.assetsCovered;
    all.previous.assets += f.previous.assets;
    all.previous.assetsCovered += f.previous.assetsCovered;
  }
}

/** Scopes in ctem.yaml first (in its order), then any others the data holds. */
function orderedScopes(config: Config, byScope: Map<string, ScopeFigures>): ScopeFigures[] {
  const configured = config.scopes.map((s) => s.name);
  return [...byScope.values()]
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
}

function topAssetsOf(rows: Record<string, string | number | null>[]): TopAsset[] {
  return rows.map((r) => ({
    assetId: Number(r.asset_id),
    name: String(r.name),
    scope: r.scope === null ? null : String(r.scope),
    criticality: String(r.criticality),
    risk: Math.round(num(r.risk_now) * 100) / 100,
    riskBefore: Math.round(num(r.risk_prev) * 100) / 100,
    open: num(r.open_now),
    act: num(r.act_now),
    kev: num(r.kev_now),
  }));
}

function topWeaknessesOf(rows: Record<string, string | number | boolean | null>[]): TopWeakness[] {
  const bestPriority: PriorityKey[] = ['act', 'attend', 'track*', 'track'];
  return rows.map((r) => ({
    key: String(r.vuln_key),
    title: r.title === null ? null : String(r.title),
    risk: Math.round(num(r.risk_now) * 100) / 100,
    riskBefore: Math.round(num(r.risk_prev) * 100) / 100,
    assets: num(r.assets_now),
    open: num(r.open_now),
    kev: r.kev === true,
    priority: bestPriority[num(r.best)] ?? 'track',
  }));
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
  const period: Period = { asOf, before, weekStart: week.start, previousStart, expiringSeconds };
  const instants = digestInstants(period);

  const [groups, middles, coverage, top, expiring] = await Promise.all([
    segments(pool, instants, asOf, before),
    medians(pool, asOf, before, week.start, previousStart),
    pool.query<CoverageRow>(coverageSql, [asOf, before, JSON.stringify(cadenceSeconds(config))]),
    pool.query<{
      assets: Record<string, string | number | null>[];
      weaknesses: Record<string, string | number | boolean | null>[];
    }>(topSql, [asOf, before, settings.top]),
    pool.query<{
      id: string;
      asset: string;
      vuln_key: string;
      risk_accepted_until: Date;
      risk_accepted_by: string | null;
      scope: string | null;
    }>(expiringSql, [asOf, expiringSeconds, settings.top]),
  ]);

  const tally = tallySegments(groups, instants, period);
  fillMttr(tally, middles);
  addCoverage(tally, coverage.rows);
  const scopes = orderedScopes(config, tally.byScope);

  const trendPoints: TrendPoint[] = [];
  for (let i = TREND_POINTS - 1; i >= 0; i--)
    trendPoints.push({ at: shift(asOf, -7 * i).toISOString(), ...tally.trendCounts[i]! });

  return {
    week: {
      label: week.label,
      start: week.start.toISOString(),
      end: week.end.toISOString(),
      asOf: asOf.toISOString(),
    },
    all: tally.all,
    scopes,
    topAssets: topAssetsOf(top.rows[0]!.assets),
    topWeaknesses: topWeaknessesOf(top.rows[0]!.weaknesses),
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
