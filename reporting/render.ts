// Rendering the digest: the standalone HTML page (inline SVG charts, inline CSS, no external
// resource), the HTML e-mail (tables and inline styles only, since mail clients drop SVG and
// <style>), and a plain-text version. Templates live in templates/digest/*.hbs; Handlebars escapes
// every value, and only the SVG this module draws is inserted raw.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import { priorities, priorityLabels, type PriorityKey } from '../domain/health.ts';
import { projectRoot } from '../runtime/paths.ts';
import {
  healthColour,
  healthGauge,
  percentBars,
  priorityColours,
  stackedPriorityBars,
  trendChart,
} from './charts.ts';
import { ageBuckets, slaCompliance, totalOf, type Snapshot } from './metrics.ts';
import type { DigestReport } from './report.ts';

const templateDir = path.join(projectRoot, 'templates', 'digest');

function compile(name: string): HandlebarsTemplateDelegate {
  const hb = Handlebars.create();
  hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hb.registerPartial('styles', readFileSync(path.join(templateDir, '_styles.hbs'), 'utf8'));
  return hb.compile(readFileSync(path.join(templateDir, name), 'utf8'), { strict: false, noEscape: false });
}

let templates:
  | { page: HandlebarsTemplateDelegate; email: HandlebarsTemplateDelegate; text: HandlebarsTemplateDelegate }
  | undefined;
function loaded() {
  templates ??= { page: compile('page.hbs'), email: compile('email.hbs'), text: compile('text.hbs') };
  return templates;
}

function period(report: DigestReport): string {
  const start = new Date(report.metrics.week.start);
  const last = new Date(new Date(report.metrics.week.end).getTime() - 1);
  const f = (d: Date, withYear: boolean) =>
    d.toLocaleDateString('en-GB', {
      day: 'numeric',
      month: 'short',
      ...(withYear ? { year: 'numeric' } : {}),
      timeZone: 'UTC',
    });
  return `${f(start, false)} – ${f(last, true)}`;
}

function days(v: number | null): string {
  return v === null ? '—' : `${v} d`;
}

function percent(v: number | null): string {
  return v === null ? '—' : `${v}%`;
}

function signed(n: number): string {
  return n > 0 ? `+${n}` : n < 0 ? `−${Math.abs(n)}` : '±0';
}

function coverage(s: Snapshot): number | null {
  return s.assets ? Math.round((s.assetsCovered / s.assets) * 1000) / 10 : null;
}

/** What every template receives: text already formatted, charts already drawn. */
export function digestView(report: DigestReport) {
  const m = report.metrics;
  const c = m.all.current;
  const p = m.all.previous;
  const priorityRows = priorities.map((key: PriorityKey) => ({
    label: priorityLabels[key],
    colour: priorityColours[key],
    open: c.open[key],
    openBefore: p.open[key],
    openChange: signed(c.open[key] - p.open[key]),
    overdue: c.overdue[key],
    opened: c.opened[key],
    fixed: c.fixed[key],
    closed: c.closed[key],
    compliance: percent(
      c.closed[key] ? Math.round((c.closedWithinSla[key] / c.closed[key]) * 1000) / 10 : null,
    ),
    mttrMean: days(c.mttrByPriority[key].meanDays),
    mttrMedian: days(c.mttrByPriority[key].medianDays),
    breaches: c.breaches[key],
    dueNextWeek: c.dueNextWeek[key],
    kevOpen: c.kevOpen[key],
  }));
  const healthOf = new Map(report.scopeHealth.map((h) => [h.scope, h]));
  const scopeRows = m.scopes.map((f) => {
    const h = healthOf.get(f.scope)!;
    return {
      scope: f.scope,
      health: h.score,
      healthColour: healthColour(h.score),
      healthChange: signed(h.delta),
      movements: h.movements,
      open: totalOf(f.current.open),
      openChange: signed(totalOf(f.current.open) - totalOf(f.previous.open)),
      act: f.current.open.act,
      overdue: totalOf(f.current.overdue),
      breaches: totalOf(f.current.breaches),
      dueNextWeek: totalOf(f.current.dueNextWeek),
      compliance: percent(slaCompliance(f.current)),
      mttrMedian: days(f.current.mttrMedianDays),
      kevOpen: totalOf(f.current.kevOpen),
      coverage: percent(coverage(f.current)),
      expiring: f.current.riskAcceptancesExpiring,
    };
  });
  return {
    title: `CTEM weekly digest ${m.week.label}`,
    week: m.week.label,
    period: period(report),
    asOf: new Date(m.week.asOf).toUTCString(),
    generatedAt: new Date(report.generatedAt).toUTCString(),
    dashboardUrl: report.dashboardUrl,
    health: report.health.score,
    healthBefore: report.health.before,
    healthChange: signed(report.health.delta),
    healthColour: healthColour(report.health.score),
    movements: report.health.movements,
    headlines: report.headlines,
    totals: {
      open: totalOf(c.open),
      overdue: totalOf(c.overdue),
      breaches: totalOf(c.breaches),
      dueNextWeek: totalOf(c.dueNextWeek),
      fixed: totalOf(c.fixed),
      opened: totalOf(c.opened),
      kevOpen: totalOf(c.kevOpen),
      expiring: c.riskAcceptancesExpiring,
      compliance: percent(slaCompliance(c)),
      mttrMean: days(c.mttrMeanDays),
      mttrMedian: days(c.mttrMedianDays),
      coverage: percent(coverage(c)),
      assets: c.assets,
      assetsCovered: c.assetsCovered,
    },
    priorityRows,
    scopeRows,
    topAssets: m.topAssets.map((a) => ({
      ...a,
      change: signed(Math.round((a.risk - a.riskBefore) * 10) / 10),
    })),
    topWeaknesses: m.topWeaknesses.map((w) => ({
      ...w,
      label: priorityLabels[w.priority],
      colour: priorityColours[w.priority],
      change: signed(Math.round((w.risk - w.riskBefore) * 10) / 10),
    })),
    expiring: m.expiring.map((e) => ({ ...e, until: e.until.slice(0, 10) })),
    charts: {
      gauge: healthGauge(report.health.score, report.health.before, 'Estate', 220),
      scopeGauges: report.scopeHealth.map((h) => healthGauge(h.score, h.before, h.scope, 150)),
      trend: trendChart(m.trend),
      age: stackedPriorityBars(ageBuckets.map((b) => ({ label: b, counts: c.age[b] }))),
      sla: percentBars(
        m.scopes.map((f) => ({
          label: f.scope,
          now: slaCompliance(f.current),
          before: slaCompliance(f.previous),
        })),
      ),
    },
  };
}

export type DigestView = ReturnType<typeof digestView>;

/** The standalone page: one self-contained HTML file. */
export function renderDigestPage(report: DigestReport): string {
  return loaded().page(digestView(report));
}

export function renderDigestEmail(report: DigestReport): { subject: string; html: string; text: string } {
  const view = digestView(report);
  const subject = `CTEM weekly digest ${view.week}: health ${view.health} (${view.healthChange}), ${view.totals.overdue} past SLA, ${view.totals.kevOpen} KEV open`;
  return { subject, html: loaded().email(view), text: loaded().text(view) };
}
