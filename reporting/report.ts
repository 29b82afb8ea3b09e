// The digest as a reader sees it: the SQL figures (metrics.ts), the health score of each scope and
// of the estate for both weeks with the reasons it moved, and the headline numbers. Renderers
// (HTML page, e-mail, Slack, Teams) all take this one object, so every channel says the same thing.
import type { Pool } from '../runtime/pool.ts';
import type { Config } from '../domain/config.ts';
import {
  explainHealthMovement,
  formatMovement,
  healthScore,
  priorities,
  type HealthInputs,
  type PriorityKey,
} from '../domain/health.ts';
import {
  computeDigestMetrics,
  slaCompliance,
  totalOf,
  type DigestMetrics,
  type ScopeFigures,
  type Snapshot,
} from './metrics.ts';
import type { ReportWeek } from './week.ts';

export interface ScopeHealth {
  scope: string;
  score: number;
  before: number;
  delta: number;
  /** "+4: Act exposures open 15 → 3 (12 Act verified fixed)". */
  movements: string[];
}

export interface Headline {
  label: string;
  value: string;
  /** The week before, as text. */
  before: string;
  /** Whether the change is good news, bad news or neither (colours the arrow). */
  tone: 'good' | 'bad' | 'neutral';
  change: string;
}

export interface DigestReport {
  metrics: DigestMetrics;
  health: ScopeHealth;
  scopeHealth: ScopeHealth[];
  headlines: Headline[];
  generatedAt: string;
  dashboardUrl?: string;
}

export function healthInputs(s: Snapshot): HealthInputs {
  return {
    assets: s.assets,
    assetsCovered: s.assetsCovered,
    open: s.open,
    overdue: s.overdue,
    kevOpen: totalOf(s.kevOpen),
  };
}

function scopeHealth(f: ScopeFigures): ScopeHealth {
  const before = healthScore(healthInputs(f.previous));
  const score = healthScore(healthInputs(f.current));
  const movements = explainHealthMovement(healthInputs(f.previous), healthInputs(f.current), {
    fixed: f.current.fixed,
    opened: f.current.opened,
  });
  return { scope: f.scope, score, before, delta: score - before, movements: movements.map(formatMovement) };
}

function change(now: number | null, before: number | null, unit = ''): string {
  if (now === null || before === null) return now === null ? 'n/a' : 'new';
  const d = Math.round((now - before) * 10) / 10;
  return d === 0 ? 'unchanged' : `${d > 0 ? '▲' : '▼'} ${Math.abs(d)}${unit}`;
}

function tone(now: number | null, before: number | null, higherIsBetter: boolean): Headline['tone'] {
  if (now === null || before === null || now === before) return 'neutral';
  return now > before === higherIsBetter ? 'good' : 'bad';
}

function headline(
  label: string,
  now: number | null,
  before: number | null,
  higherIsBetter: boolean,
  unit = '',
): Headline {
  const show = (v: number | null) => (v === null ? '—' : `${v}${unit}`);
  return {
    label,
    value: show(now),
    before: show(before),
    change: change(now, before, unit === '%' ? ' pts' : unit),
    tone: tone(now, before, higherIsBetter),
  };
}

export function buildReport(
  metrics: DigestMetrics,
  opts: { now?: Date; dashboardUrl?: string } = {},
): DigestReport {
  const { current: c, previous: p } = metrics.all;
  const health = scopeHealth(metrics.all);
  const coverage = (s: Snapshot) => (s.assets ? Math.round((s.assetsCovered / s.assets) * 1000) / 10 : null);
  const headlines: Headline[] = [
    headline('Health score', health.score, health.before, true),
    headline('SLA compliance', slaCompliance(c), slaCompliance(p), true, '%'),
    headline('Open past SLA', totalOf(c.overdue), totalOf(p.overdue), false),
    headline('Act open', c.open.act, p.open.act, false),
    headline('KEV open', totalOf(c.kevOpen), totalOf(p.kevOpen), false),
    headline('Verified fixed', totalOf(c.fixed), totalOf(p.fixed), true),
    headline('Median time to fix', c.mttrMedianDays, p.mttrMedianDays, false, ' d'),
    headline('Scan coverage', coverage(c), coverage(p), true, '%'),
  ];
  return {
    metrics,
    health,
    scopeHealth: metrics.scopes.map(scopeHealth),
    headlines,
    generatedAt: (opts.now ?? new Date()).toISOString(),
    ...(opts.dashboardUrl ? { dashboardUrl: opts.dashboardUrl } : {}),
  };
}

export async function buildDigest(
  pool: Pool,
  config: Config,
  week: ReportWeek,
  opts: { now?: Date; dashboardUrl?: string } = {},
): Promise<DigestReport> {
  const metrics = await computeDigestMetrics(pool, config, week, opts.now ? { now: opts.now } : {});
  return buildReport(metrics, opts);
}

export function byPriority<T>(fn: (p: PriorityKey) => T): T[] {
  return priorities.map(fn);
}
