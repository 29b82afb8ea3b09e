// The digest's figures on the small estate of seed.ts, each worked out by hand. Week 2026-W47 runs
// Mon 16 Nov 00:00 → Mon 23 Nov 00:00 UTC (T); the week before ends at P = 16 Nov 00:00.
//   open at T: E1 act, E4 attend, E5 track (prod), E8 act (dev)
//   open at P: E1 act, E2 act, E3 attend, E5 track, E9 track (prod), E8 act (dev)
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { computeDigestMetrics, slaCompliance, totalOf, type DigestMetrics } from '../../reporting/metrics.ts';
import { buildReport } from '../../reporting/report.ts';
import { parseWeek, previousWeek, weekContaining } from '../../reporting/week.ts';
import { explainHealthMovement, formatMovement, healthScore } from '../../domain/health.ts';
import { NOW, WEEK, reportingConfig, seedEstate } from './seed.ts';

let db: TestDatabase;
let m: DigestMetrics;
beforeAll(async () => {
  db = await testDatabase();
  await seedEstate(db.pool);
  m = await computeDigestMetrics(db.pool, reportingConfig(), parseWeek(WEEK)!, { now: NOW });
});

const scope = (name: string) => m.scopes.find((s) => s.scope === name)!;
const counts = (act: number, attend: number, trackStar: number, track: number) => ({
  act,
  attend,
  'track*': trackStar,
  track,
});

describe('ISO weeks', () => {
  it('parses YYYY-Www into Monday-to-Monday in the digest time zone', () => {
    const w = parseWeek('2026-W47')!;
    expect(w.start.toISOString()).toBe('2026-11-16T00:00:00.000Z');
    expect(w.end.toISOString()).toBe('2026-11-23T00:00:00.000Z');
    const paris = parseWeek('2026-W47', 'Europe/Paris')!;
    expect(paris.start.toISOString()).toBe('2026-11-15T23:00:00.000Z');
    expect(parseWeek('2026-W54')).toBeUndefined();
    expect(parseWeek('2026-47')).toBeUndefined();
    expect(parseWeek('2025-W53')).toBeUndefined(); // 2025 has 52 ISO weeks
    expect(parseWeek('2026-W53')!.label).toBe('2026-W53'); // 2026 starts on a Thursday: 53
  });

  it('reports the last complete week on a Monday morning, and knows the week in progress', () => {
    expect(previousWeek(NOW).label).toBe('2026-W47');
    expect(weekContaining(NOW).label).toBe('2026-W48');
    // Sunday 23:30 UTC is already Monday in Paris.
    expect(weekContaining(new Date('2026-11-22T23:30:00Z'), 'Europe/Paris').label).toBe('2026-W48');
    expect(parseWeek('2020-W53')!.label).toBe('2020-W53');
    expect(weekContaining(new Date('2021-01-01T12:00:00Z')).label).toBe('2020-W53');
  });
});

describe('digest metrics on the seeded estate', () => {
  it('bounds the week and the comparison', () => {
    expect(m.week).toEqual({
      label: '2026-W47',
      start: '2026-11-16T00:00:00.000Z',
      end: '2026-11-23T00:00:00.000Z',
      asOf: '2026-11-23T00:00:00.000Z',
    });
    expect(m.scopes.map((s) => s.scope)).toEqual(['prod', 'dev']);
  });

  it('counts open exposures by priority, now and a week before', () => {
    expect(m.all.current.open).toEqual(counts(2, 1, 0, 1));
    expect(m.all.previous.open).toEqual(counts(3, 1, 0, 2));
    expect(scope('prod').current.open).toEqual(counts(1, 1, 0, 1));
    expect(scope('prod').previous.open).toEqual(counts(2, 1, 0, 2));
    expect(scope('dev').current.open).toEqual(counts(1, 0, 0, 0));
  });

  it('counts open exposures past their SLA (risk acceptances excluded)', () => {
    // E1 breached 8 Nov, E8 breached 22 Nov; E5 is risk-accepted. A week before only E1 was late
    // (E3 breached at noon on 16 Nov, after P).
    expect(m.all.current.overdue).toEqual(counts(2, 0, 0, 0));
    expect(m.all.previous.overdue).toEqual(counts(1, 0, 0, 0));
    expect(scope('dev').current.overdue).toEqual(counts(1, 0, 0, 0));
  });

  it('computes SLA compliance over what was closed, retirements excluded', () => {
    // Closed this week: E2 (in SLA), E3 (breached before it was fixed), E7 (false positive, in SLA).
    expect(totalOf(m.all.current.closed)).toBe(3);
    expect(totalOf(m.all.current.closedWithinSla)).toBe(2);
    expect(slaCompliance(m.all.current)).toBe(66.7);
    expect(slaCompliance(scope('prod').current)).toBe(50);
    expect(slaCompliance(scope('dev').current)).toBe(100);
    // The week before: E6 only.
    expect(slaCompliance(m.all.previous)).toBe(100);
    expect(slaCompliance(scope('prod').previous)).toBeNull();
  });

  it('computes time to remediate (first seen → verified fixed), mean and median, per priority', () => {
    expect(m.all.current.fixed).toEqual(counts(1, 1, 0, 0));
    expect(m.all.current.mttrMeanDays).toBe(13); // (8 + 18) / 2
    expect(m.all.current.mttrMedianDays).toBe(13);
    expect(m.all.current.mttrByPriority.act).toEqual({ meanDays: 8, medianDays: 8 });
    expect(m.all.current.mttrByPriority.attend).toEqual({ meanDays: 18, medianDays: 18 });
    expect(scope('dev').current.mttrMeanDays).toBeNull();
    expect(m.all.previous.mttrMedianDays).toBe(7); // E6
  });

  it('counts breaches this week and deadlines falling next week', () => {
    expect(m.all.current.breaches).toEqual(counts(1, 1, 0, 0)); // E8 (act), E3 (attend)
    expect(totalOf(m.all.previous.breaches)).toBe(0); // E1 breached on 8 Nov, before 9 Nov
    expect(m.all.current.dueNextWeek).toEqual(counts(0, 1, 0, 0)); // E4, due 27 Nov
    expect(m.all.previous.dueNextWeek).toEqual(counts(1, 0, 0, 0)); // E8, due 22 Nov
  });

  it('counts KEV exposures open by the KEV catalogue of each date', () => {
    expect(m.all.current.kevOpen).toEqual(counts(1, 1, 0, 0)); // E1, and E4 since 18 Nov
    expect(m.all.previous.kevOpen).toEqual(counts(1, 0, 0, 0));
  });

  it('lists risk acceptances expiring within the window', () => {
    expect(m.all.current.riskAcceptancesExpiring).toBe(1);
    expect(m.all.previous.riskAcceptancesExpiring).toBe(0);
    expect(m.expiring).toEqual([
      {
        exposureId: expect.stringMatching(/:CVE-2026-0005$/) as unknown as string,
        asset: 'db-01',
        weakness: 'CVE-2026-0005',
        until: '2026-12-01T00:00:00.000Z',
        by: 'cyrus',
        scope: 'prod',
      },
    ]);
  });

  it('ages open exposures', () => {
    expect(m.all.current.age['0–7 days']).toEqual(counts(0, 1, 0, 0)); // E4
    expect(m.all.current.age['8–30 days']).toEqual(counts(2, 0, 0, 0)); // E1, E8
    expect(m.all.current.age['31–90 days']).toEqual(counts(0, 0, 0, 0));
    expect(m.all.current.age['over 90 days']).toEqual(counts(0, 0, 0, 1)); // E5
  });

  it('measures scan coverage against each scope cadence', () => {
    // prod (7d): web-01 scanned 20 Nov, db-01 only 5 Nov; dev (1d): dev-01 scanned 22 Nov 10:00.
    expect([scope('prod').current.assets, scope('prod').current.assetsCovered]).toEqual([2, 1]);
    expect([scope('dev').current.assets, scope('dev').current.assetsCovered]).toEqual([1, 1]);
    // At P: web-01 last scanned 12 Nov (within 7d), dev-01 12 Nov (not within 1d).
    expect([m.all.previous.assets, m.all.previous.assetsCovered]).toEqual([3, 1]);
  });

  it('ranks assets and weaknesses by risk points (Act 10, Attend 4, Track 0.25, KEV +5)', () => {
    expect(m.topAssets.map((a) => [a.name, a.risk, a.riskBefore, a.open, a.act, a.kev])).toEqual([
      ['web-01', 15, 29, 1, 1, 1],
      ['dev-01', 10, 10, 1, 1, 0],
      ['db-01', 9.25, 0.5, 2, 0, 1],
    ]);
    expect(m.topWeaknesses.map((w) => [w.key, w.risk, w.riskBefore, w.kev, w.priority])).toEqual([
      ['CVE-2026-0001', 15, 15, true, 'act'],
      ['CVE-2026-0008', 10, 10, false, 'act'],
      ['CVE-2026-0004', 9, 0, true, 'attend'],
      ['CVE-2026-0005', 0.25, 0.25, false, 'track'],
    ]);
    expect(m.topWeaknesses[0]!.title).toBe('Weakness E1');
  });

  it('draws the eight-week trend ending at the week', () => {
    expect(m.trend).toHaveLength(8);
    expect(m.trend[7]).toEqual({
      at: '2026-11-23T00:00:00.000Z',
      open: 4,
      overdue: 2,
      act: 2,
      fixed: 2,
      breaches: 2,
    });
    expect(m.trend[6]).toEqual({
      at: '2026-11-16T00:00:00.000Z',
      open: 6,
      overdue: 1,
      act: 3,
      fixed: 1,
      breaches: 0,
    });
    // 26 Oct: E5, E9 (and nothing else yet).
    expect(m.trend[3]).toMatchObject({ at: '2026-10-26T00:00:00.000Z', open: 2, act: 0 });
  });
});

describe('health score', () => {
  it('scores each scope and the estate by the documented formula, and explains the movement', () => {
    const report = buildReport(m, { now: NOW });
    // Estate now: load = 10×(2 open + 2 overdue Act) + 4×1 + 0.25×1 + 5×2 KEV = 54.25 over 3 assets;
    // 100 / (1 + 18.083/2) = 9.96, × (0.5 + 0.5 × 2/3) = 8.3 → 8.
    // Before: load = 10×(3+1) + 4 + 0.25×2 + 5 = 49.5 / 3 = 16.5 → 10.81 × (0.5 + 0.5/3) = 7.2 → 7.
    expect([report.health.score, report.health.before, report.health.delta]).toEqual([8, 7, 1]);
    const prod = report.scopeHealth.find((h) => h.scope === 'prod')!;
    expect([prod.score, prod.before]).toEqual([8, 7]); // 34.25/2 → 7.84; 39.5/2 → 6.90
    const dev = report.scopeHealth.find((h) => h.scope === 'dev')!;
    expect([dev.score, dev.before]).toEqual([9, 8]); // 20/1 → 9.09; 10/1 × 0.5 → 8.33
    // The explanation names what moved, and its points add up to the change.
    const sum = report.health.movements
      .map((t) => Number(t.split(':')[0]!.replace('−', '-').replace('±', '')))
      .reduce((a, b) => a + b, 0);
    expect(sum).toBe(1);
    expect(report.health.movements.join('\n')).toMatch(/Act exposures open 3 → 2 \(1 Act verified fixed\)/);
    expect(report.health.movements.join('\n')).toMatch(/scan coverage 33% → 67%/);
    expect(report.health.movements.join('\n')).toMatch(/known-exploited \(KEV\) exposures open 1 → 2/);
  });

  it('is 100 for a fully scanned estate with nothing open, and never below 0', () => {
    const zero = counts(0, 0, 0, 0);
    expect(healthScore({ assets: 5, assetsCovered: 5, open: zero, overdue: zero, kevOpen: 0 })).toBe(100);
    expect(healthScore({ assets: 5, assetsCovered: 0, open: zero, overdue: zero, kevOpen: 0 })).toBe(50);
    const huge = counts(1e6, 0, 0, 0);
    expect(healthScore({ assets: 1, assetsCovered: 1, open: huge, overdue: huge, kevOpen: 1e6 })).toBe(0);
  });

  it('tells a new, scanned asset as one movement, not as a loss and a gain', () => {
    const zero = counts(0, 0, 0, 0);
    const before = { assets: 0, assetsCovered: 0, open: zero, overdue: zero, kevOpen: 0 };
    const after = { assets: 1, assetsCovered: 1, open: counts(0, 0, 3, 0), overdue: zero, kevOpen: 0 };
    // 100 before (nothing to look at); after: load 3 on one scanned asset → 100 / 2.5 = 40.
    expect([healthScore(before), healthScore(after)]).toEqual([100, 40]);
    expect(
      explainHealthMovement(before, after, { fixed: zero, opened: counts(0, 0, 3, 0) }).map(formatMovement),
    ).toEqual(['−60: Track* exposures open 0 → 3 (3 new)']);
  });

  it('reports a week in progress up to now', async () => {
    const midweek = await computeDigestMetrics(db.pool, reportingConfig(), weekContaining(NOW), {
      now: NOW,
    });
    expect(midweek.week.label).toBe('2026-W48');
    expect(midweek.week.asOf).toBe(NOW.toISOString());
    expect(totalOf(midweek.all.current.open)).toBe(4);
    expect(totalOf(midweek.all.current.fixed)).toBe(0);
  });
});
