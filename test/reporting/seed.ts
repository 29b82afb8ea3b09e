// A small estate written row by row, so every figure of the digest for week 2026-W47
// (Mon 16 Nov – Sun 22 Nov 2026, UTC) can be worked out by hand. See metrics.test.ts for the sums.
// The same estate can be written any whole number of weeks later (seedEstate's `week`), for tests
// that mix it with live workflows, which run on Temporal's real clock.
import type { Pool } from '../../runtime/pool.ts';
import { parseConfig, type Config } from '../../domain/config.ts';
import { parseWeek } from '../../reporting/week.ts';

export const WEEK = '2026-W47';
/** The digest is computed as if run on Monday 23 Nov 2026 at noon: the week is complete. */
export const NOW = new Date('2026-11-23T12:00:00Z');

/** The Monday noon after `week`: the estate's "now" when it is written for that week. */
export function nowAfter(week: string): Date {
  return new Date(parseWeek(week)!.end.getTime() + 12 * 3_600_000);
}

export function reportingConfig(extra = ''): Config {
  return parseConfig(`
version: 1
people:
  - { id: olivia, name: Olivia Owner }
  - { id: cyrus, name: Cyrus Ciso }
scopes:
  - name: prod
    cadence: 7d
    roles: { owner: [olivia], ciso: [cyrus] }
  - name: dev
    cadence: 1d
    roles: { owner: [olivia], ciso: [cyrus] }
${extra}`);
}

interface SeedExposure {
  asset: number;
  key: string;
  priority: string;
  state: string;
  firstSeen: string;
  resolvedAt?: string;
  verifiedAt?: string;
  exposureDays?: number;
  slaDue?: string;
  slaBreachedAt?: string;
  riskAcceptedUntil?: string;
  riskAcceptedBy?: string;
  owner?: string;
}

/**
 * Assets: web-01 (prod), db-01 (prod), dev-01 (dev). Scans: web-01 on 12 and 20 Nov, db-01 on 5 Nov
 * only, dev-01 on 12 and 22 Nov. KEV: CVE-2026-0001 since 1 Oct, CVE-2026-0004 since 18 Nov.
 */
export async function seedEstate(pool: Pool, week = WEEK): Promise<Record<string, string>> {
  const shiftMs = parseWeek(week)!.start.getTime() - parseWeek(WEEK)!.start.getTime();
  /** A date of the 2026-W47 estate, moved to `week`. */
  const d = (iso: string): string => {
    const moved = new Date(Date.parse(iso.length === 10 ? `${iso}T00:00:00Z` : iso) + shiftMs).toISOString();
    return iso.length === 10 ? moved.slice(0, 10) : moved;
  };
  await pool.query(`insert into scopes (name) values ('prod'), ('dev') on conflict do nothing`);
  const asset = async (host: string, scope: string) =>
    (
      await pool.query<{ id: number }>(
        `insert into assets (identity_key, kind, hostname, scope, criticality, first_seen, last_seen)
         values ($1, 'host', $2, $3, 'high', $4, $5) returning id`,
        [`host:${host}`, host, scope, d('2026-10-01T00:00:00Z'), d('2026-11-22T00:00:00Z')],
      )
    ).rows[0]!.id;
  const web = await asset('web-01', 'prod');
  const db = await asset('db-01', 'prod');
  const dev = await asset('dev-01', 'dev');
  const scan = async (at: string, assets: number[]) => {
    const id = (
      await pool.query<{ id: number }>(
        `insert into scans (scanner, format, source, started_at, finished_at) values ('trivy', 'json', 'seed', $1, $1) returning id`,
        [at],
      )
    ).rows[0]!.id;
    for (const a of assets)
      await pool.query('insert into scan_assets (scan_id, asset_id) values ($1, $2)', [id, a]);
  };
  await scan(d('2026-11-05T10:00:00Z'), [db]);
  await scan(d('2026-11-12T10:00:00Z'), [web, dev]);
  await scan(d('2026-11-20T10:00:00Z'), [web]);
  await scan(d('2026-11-22T10:00:00Z'), [dev]);

  const run = (
    await pool.query<{ id: number }>(
      `insert into feed_runs (feed, source, status) values ('kev', 'seed', 'succeeded') returning id`,
    )
  ).rows[0]!.id;
  await pool.query(
    `insert into kev_entries (cve, date_added, valid_from, run_id) values
       ('CVE-2026-0001', $2, $3, $1),
       ('CVE-2026-0004', $4, $5, $1)`,
    [run, d('2026-10-01'), d('2026-10-01T00:00:00Z'), d('2026-11-18'), d('2026-11-18T00:00:00Z')],
  );

  const exposures: Record<string, SeedExposure> = {
    // Act, KEV, breached on 8 Nov and still open: overdue in both weeks.
    E1: {
      asset: web,
      key: 'CVE-2026-0001',
      priority: 'act',
      state: 'awaiting-decision',
      firstSeen: d('2026-11-01T00:00:00Z'),
      slaDue: d('2026-11-08T00:00:00Z'),
      slaBreachedAt: d('2026-11-08T00:00:00Z'),
      owner: 'olivia',
    },
    // Act, fixed and verified on 18 Nov within its SLA: 8 days to fix.
    E2: {
      asset: web,
      key: 'CVE-2026-0002',
      priority: 'act',
      state: 'resolved',
      firstSeen: d('2026-11-10T00:00:00Z'),
      resolvedAt: d('2026-11-18T00:00:00Z'),
      verifiedAt: d('2026-11-18T00:00:00Z'),
      exposureDays: 8,
    },
    // Attend, breached on 16 Nov at noon, then fixed on 20 Nov: 18 days to fix, closed late.
    E3: {
      asset: web,
      key: 'CVE-2026-0003',
      priority: 'attend',
      state: 'resolved',
      firstSeen: d('2026-11-02T00:00:00Z'),
      resolvedAt: d('2026-11-20T00:00:00Z'),
      verifiedAt: d('2026-11-20T00:00:00Z'),
      exposureDays: 18,
      slaBreachedAt: d('2026-11-16T12:00:00Z'),
    },
    // Attend, new this week, KEV since 18 Nov, due on 27 Nov (next week).
    E4: {
      asset: db,
      key: 'CVE-2026-0004',
      priority: 'attend',
      state: 'awaiting-decision',
      firstSeen: d('2026-11-17T00:00:00Z'),
      slaDue: d('2026-11-27T00:00:00Z'),
    },
    // Track, first seen in August, risk accepted until 1 Dec (expiring within 14 days).
    E5: {
      asset: db,
      key: 'CVE-2026-0005',
      priority: 'track',
      state: 'risk-accepted',
      firstSeen: d('2026-08-01T00:00:00Z'),
      riskAcceptedUntil: d('2026-12-01T00:00:00Z'),
      riskAcceptedBy: 'cyrus',
    },
    // Track*, fixed the week before (12 Nov), within SLA: 7 days to fix.
    E6: {
      asset: dev,
      key: 'CVE-2026-0006',
      priority: 'track*',
      state: 'resolved',
      firstSeen: d('2026-11-05T00:00:00Z'),
      resolvedAt: d('2026-11-12T00:00:00Z'),
      verifiedAt: d('2026-11-12T00:00:00Z'),
      exposureDays: 7,
    },
    // Attend, new this week, closed as a false positive the next day (closed, within SLA, not fixed).
    E7: {
      asset: dev,
      key: 'CVE-2026-0007',
      priority: 'attend',
      state: 'false-positive',
      firstSeen: d('2026-11-20T00:00:00Z'),
      resolvedAt: d('2026-11-21T00:00:00Z'),
    },
    // Act, first seen 15 Nov, breached on 22 Nov, still open.
    E8: {
      asset: dev,
      key: 'CVE-2026-0008',
      priority: 'act',
      state: 'remediating',
      firstSeen: d('2026-11-15T00:00:00Z'),
      slaDue: d('2026-11-22T00:00:00Z'),
      slaBreachedAt: d('2026-11-22T00:00:00Z'),
      owner: 'olivia',
    },
    // Track, closed because its asset was retired on 19 Nov: not a remediation, not "closed".
    E9: {
      asset: db,
      key: 'CVE-2026-0009',
      priority: 'track',
      state: 'retired',
      firstSeen: d('2026-10-01T00:00:00Z'),
      resolvedAt: d('2026-11-19T00:00:00Z'),
    },
  };
  const ids: Record<string, string> = {};
  for (const [name, e] of Object.entries(exposures)) {
    const id = `${e.asset}:${e.key}`;
    ids[name] = id;
    await pool.query(
      `insert into exposures (id, asset_id, vuln_key, scope, state, priority, sla_due, owner, first_seen, last_seen, resolved_at,
                              verified_at, exposure_seconds, sla_breached_at, risk_accepted_until, risk_accepted_by, reasons)
       select $1, $2, $3, a.scope, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12, $13, $14, $15 from assets a where a.id = $2`,
      [
        id,
        e.asset,
        e.key,
        e.state,
        e.priority,
        e.slaDue ?? null,
        e.owner ?? null,
        e.firstSeen,
        e.resolvedAt ?? null,
        e.verifiedAt ?? null,
        e.exposureDays === undefined ? null : e.exposureDays * 86_400,
        e.slaBreachedAt ?? null,
        e.riskAcceptedUntil ?? null,
        e.riskAcceptedBy ?? null,
        JSON.stringify([`seeded as ${name}`]),
      ],
    );
    await pool.query(
      `insert into vulnerabilities (key, title) values ($1, $2) on conflict (key) do nothing`,
      [e.key, `Weakness ${name}`],
    );
  }
  return ids;
}
