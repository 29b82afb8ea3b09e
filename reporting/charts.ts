// Charts of the digest drawn server-side as inline SVG: no script, no web font, no external
// resource, so the standalone page opens anywhere (an air-gapped laptop, a mail archive) and looks
// the same. Every text is escaped; sizes are fixed so the layout never depends on the data.
import { priorities, priorityLabels, type PriorityCounts } from '../domain/health.ts';
import type { TrendPoint } from './metrics.ts';

export const priorityColours: Record<(typeof priorities)[number], string> = {
  act: '#c62828',
  attend: '#ef6c00',
  'track*': '#f9a825',
  track: '#90a4ae',
};

export function escapeXml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

/** Short enough for an axis or a legend: 950, 12.5k, 475k, 1.2M. */
export function compact(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e6) return `${(n / 1e6).toFixed(a >= 1e7 ? 0 : 1).replace(/\.0$/, '')}M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(a >= 1e5 ? 0 : 1).replace(/\.0$/, '')}k`;
  return fmt(n);
}

export function healthColour(score: number): string {
  return score >= 80 ? '#2e7d32' : score >= 60 ? '#9e9d24' : score >= 40 ? '#ef6c00' : '#c62828';
}

/** A half-circle gauge with the score, its change and a caption. */
export function healthGauge(score: number, before: number, caption: string, size = 180): string {
  const w = size;
  const h = Math.round(size * 0.68);
  const cx = w / 2;
  const cy = h - 18;
  const r = w / 2 - 14;
  const angle = (v: number) => Math.PI * (1 - Math.max(0, Math.min(100, v)) / 100);
  const point = (v: number) =>
    `${(cx + r * Math.cos(angle(v))).toFixed(1)} ${(cy - r * Math.sin(angle(v))).toFixed(1)}`;
  const delta = score - before;
  const deltaText =
    delta === 0 ? '± 0 vs last week' : `${delta > 0 ? '▲ +' : '▼ −'}${Math.abs(delta)} vs last week`;
  const deltaColour = delta > 0 ? '#2e7d32' : delta < 0 ? '#c62828' : '#607d8b';
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h + 20}" viewBox="0 0 ${w} ${h + 20}" role="img" aria-label="${escapeXml(`${caption}: health ${score} of 100, ${deltaText}`)}">
  <path d="M ${point(0)} A ${r} ${r} 0 0 1 ${point(100)}" fill="none" stroke="#eceff1" stroke-width="16" stroke-linecap="round"/>
  ${score > 0 ? `<path d="M ${point(0)} A ${r} ${r} 0 0 1 ${point(score)}" fill="none" stroke="${healthColour(score)}" stroke-width="16" stroke-linecap="round"/>` : ''}
  <text x="${cx}" y="${cy - 8}" text-anchor="middle" font-family="Helvetica, Arial, sans-serif" font-size="${Math.round(size / 4.2)}" font-weight="700" fill="#263238">${score}</text>
  <text x="${cx}" y="${cy + 12}" text-anchor="middle" font-family="Helvetica, Arial, sans-serif" font-size="12" fill="${deltaColour}">${escapeXml(deltaText)}</text>
  <text x="${cx}" y="${h + 14}" text-anchor="middle" font-family="Helvetica, Arial, sans-serif" font-size="13" font-weight="600" fill="#37474f">${escapeXml(caption)}</text>
</svg>`;
}

/** Weekly lines: open, open past SLA, Act open, over the last eight weeks. */
export function trendChart(points: TrendPoint[], width = 560, height = 240): string {
  const left = 44;
  const right = 132;
  const top = 16;
  const bottom = 34;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const series: { key: 'open' | 'overdue' | 'act'; label: string; colour: string }[] = [
    { key: 'open', label: 'open', colour: '#1565c0' },
    { key: 'overdue', label: 'past SLA', colour: '#c62828' },
    { key: 'act', label: 'Act open', colour: '#6a1b9a' },
  ];
  const max = Math.max(1, ...points.flatMap((p) => series.map((s) => p[s.key])));
  const niceMax = niceCeiling(max);
  const x = (i: number) => left + (points.length <= 1 ? plotW / 2 : (plotW * i) / (points.length - 1));
  const y = (v: number) => top + plotH - (plotH * v) / niceMax;
  const grid = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => {
      const v = niceMax * f;
      return `<line x1="${left}" x2="${left + plotW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eceff1"/>
  <text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="11" fill="#78909c">${compact(Math.round(v))}</text>`;
    })
    .join('\n  ');
  const labels = points
    .map(
      (p, i) =>
        `<text x="${x(i).toFixed(1)}" y="${height - 12}" text-anchor="middle" font-size="11" fill="#78909c">${escapeXml(shortDate(p.at))}</text>`,
    )
    .join('\n  ');
  const lines = series
    .map((s, si) => {
      const d = points
        .map((p, i) => `${i === 0 ? 'M' : 'L'} ${x(i).toFixed(1)} ${y(p[s.key]).toFixed(1)}`)
        .join(' ');
      const last = points[points.length - 1];
      const dots = points
        .map(
          (p, i) =>
            `<circle cx="${x(i).toFixed(1)}" cy="${y(p[s.key]).toFixed(1)}" r="3" fill="${s.colour}"/>`,
        )
        .join('');
      return `<path d="${d}" fill="none" stroke="${s.colour}" stroke-width="2.5"/>${dots}
  <text x="${left + plotW + 10}" y="${top + 14 + si * 20}" font-size="12" fill="${s.colour}" font-weight="600">● ${escapeXml(s.label)}${last ? ` ${compact(last[s.key])}` : ''}</text>`;
    })
    .join('\n  ');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" role="img" aria-label="Open exposures over the last ${points.length} weeks">
  ${grid}
  ${labels}
  ${lines}
</svg>`;
}

/** Horizontal stacked bars: one row per label, one segment per priority. */
export function stackedPriorityBars(rows: { label: string; counts: PriorityCounts }[], width = 560): string {
  const left = 110;
  const right = 50;
  const rowH = 26;
  const top = 8;
  const legendH = 26;
  const height = top + rows.length * rowH + legendH;
  const totals = rows.map((r) => priorities.reduce((n, p) => n + r.counts[p], 0));
  const max = Math.max(1, ...totals);
  const plotW = width - left - right;
  const bars = rows
    .map((r, i) => {
      let at = left;
      const yy = top + i * rowH;
      const segments = priorities
        .map((p) => {
          const w = (plotW * r.counts[p]) / max;
          const seg =
            w > 0
              ? `<rect x="${at.toFixed(1)}" y="${yy + 3}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${priorityColours[p]}"><title>${escapeXml(`${r.label}: ${r.counts[p]} ${priorityLabels[p]}`)}</title></rect>`
              : '';
          at += w;
          return seg;
        })
        .join('');
      return `<text x="${left - 8}" y="${yy + rowH / 2 + 3}" text-anchor="end" font-size="12" fill="#37474f">${escapeXml(r.label)}</text>${segments}
  <text x="${(at + 6).toFixed(1)}" y="${yy + rowH / 2 + 3}" font-size="12" fill="#263238" font-weight="600">${compact(totals[i]!)}</text>`;
    })
    .join('\n  ');
  const legend = priorities
    .map(
      (p, i) =>
        `<rect x="${left + i * 90}" y="${height - 16}" width="12" height="12" fill="${priorityColours[p]}"/><text x="${left + i * 90 + 16}" y="${height - 6}" font-size="12" fill="#37474f">${priorityLabels[p]}</text>`,
    )
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" role="img" aria-label="Open exposures by priority">
  ${bars}
  ${legend}
</svg>`;
}

/** Percent bars (SLA compliance per scope), with last week's value as a tick. */
export function percentBars(
  rows: { label: string; now: number | null; before: number | null }[],
  width = 560,
): string {
  const left = 110;
  const right = 96;
  const rowH = 26;
  const height = 8 + rows.length * rowH + 8;
  const plotW = width - left - right;
  const bars = rows
    .map((r, i) => {
      const yy = 8 + i * rowH;
      const w = r.now === null ? 0 : (plotW * r.now) / 100;
      const colour =
        r.now === null ? '#b0bec5' : r.now >= 90 ? '#2e7d32' : r.now >= 70 ? '#f9a825' : '#c62828';
      const tick =
        r.before === null
          ? ''
          : `<line x1="${(left + (plotW * r.before) / 100).toFixed(1)}" x2="${(left + (plotW * r.before) / 100).toFixed(1)}" y1="${yy + 1}" y2="${yy + rowH - 3}" stroke="#263238" stroke-width="2"><title>last week ${fmt(r.before)}%</title></line>`;
      return `<text x="${left - 8}" y="${yy + rowH / 2 + 3}" text-anchor="end" font-size="12" fill="#37474f">${escapeXml(r.label)}</text>
  <rect x="${left}" y="${yy + 3}" width="${plotW}" height="${rowH - 8}" fill="#eceff1"/>
  <rect x="${left}" y="${yy + 3}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${colour}"/>${tick}
  <text x="${left + plotW + 6}" y="${yy + rowH / 2 + 3}" font-size="12" font-weight="600" fill="#263238">${r.now === null ? 'none closed' : `${fmt(r.now)}%`}</text>`;
    })
    .join('\n  ');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" role="img" aria-label="SLA compliance by scope">
  ${bars}
</svg>`;
}

function niceCeiling(v: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * magnitude >= v) return m * magnitude;
  return 10 * magnitude;
}

function shortDate(iso: string): string {
  const d = new Date(iso);
  return `${d.toLocaleString('en-GB', { month: 'short', timeZone: 'UTC' })} ${d.getUTCDate()}`;
}
