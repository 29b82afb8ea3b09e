import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../test/support/db.ts';
import type { Pool } from '../runtime/pool.ts';
import { parsePolicy, type Policy } from '../domain/policy/schema.ts';
import { loadEpss } from './epss.ts';
import { explainExposure } from './explain.ts';
import { loadKev } from './kev.ts';
import { loadCve5 } from './cve5.ts';
import { BUILTIN_POLICY_FILE, PolicyCatalog } from './policyFiles.ts';
import { rescoreExposures, type RescoredExposure } from './rescore.ts';

const SHARED = path.resolve(import.meta.dirname, '../../shared/data/feeds');
const NOW = new Date('2026-11-21T09:00:00Z');
const catalog = new PolicyCatalog();
const defaultPolicy = (name: string): Policy => catalog.get(name);

async function inventory(
  pool: Pool,
  exposures: { id: string; asset: string; cve: string; firstSeen: string }[],
): Promise<void> {
  await pool.query(`insert into scopes (name, config) values
    ('dmz', '{"internetFacing": true, "criticality": "critical", "cia": {"confidentiality": "H", "integrity": "H", "availability": "M"}}'),
    ('prod', '{"internetFacing": false, "cia": {"confidentiality": "M", "integrity": "H", "availability": "H"}}')
    on conflict do nothing`);
  await pool.query(`insert into assets (identity_key, kind, hostname, scope, criticality) values
    ('host:web-01', 'host', 'web-01', 'dmz', 'critical'),
    ('host:db-01', 'host', 'db-01', 'prod', 'high'),
    ('host:lab-01', 'host', 'lab-01', null, 'low')
    on conflict do nothing`);
  for (const e of exposures)
    await pool.query(
      // ctem learned of each when the scanner first saw it (the SLA clock starts at learned_at).
      `insert into exposures (id, asset_id, vuln_key, scope, first_seen, last_seen, learned_at)
       select $1, a.id, $3, a.scope, $4, $4, $4 from assets a where a.identity_key = $2`,
      [e.id, e.asset, e.cve, e.firstSeen],
    );
}

/** What the TypeScript policy says about each exposure, to compare with the SQL re-score. */
async function decisionsInTs(
  pool: Pool,
  ids: string[],
  policyFor = defaultPolicy,
): Promise<Map<string, { outcome: string; dueAt: string }>> {
  const out = new Map<string, { outcome: string; dueAt: string }>();
  for (const id of ids) {
    const e = await explainExposure(pool, id, policyFor, NOW);
    out.set(id, { outcome: e.decision.outcome, dueAt: e.decision.dueAt });
  }
  return out;
}

const byId = (rows: RescoredExposure[] | undefined) => new Map((rows ?? []).map((r) => [r.id, r]));

describe('re-scoring small, hand-made intel', () => {
  let pool: Pool;
  let dir: string;
  const kev = (entries: { cve: string; added: string }[], released: string) =>
    JSON.stringify({
      title: 'CISA Catalog of Known Exploited Vulnerabilities',
      catalogVersion: released.slice(0, 10).replaceAll('-', '.'),
      dateReleased: released,
      count: entries.length,
      vulnerabilities: entries.map((e) => ({
        cveID: e.cve,
        vendorProject: 'Example',
        product: 'Example',
        vulnerabilityName: 'Example',
        dateAdded: e.added,
        shortDescription: 'x',
        requiredAction: 'Apply updates.',
        dueDate: e.added,
        knownRansomwareCampaignUse: 'Unknown',
        notes: '',
      })),
    });
  const record = (id: string, vector: string, ssvc: { e: string; a: string; t: string }) =>
    JSON.stringify({
      dataType: 'CVE_RECORD',
      dataVersion: '5.1',
      cveMetadata: {
        cveId: id,
        state: 'PUBLISHED',
        datePublished: '2026-01-01T00:00:00Z',
        dateUpdated: '2026-06-01T00:00:00Z',
      },
      containers: {
        cna: {
          title: id,
          metrics: [{ cvssV3_1: { version: '3.1', vectorString: vector, baseScore: 0 } }],
          providerMetadata: { orgId: 'x', shortName: 'x' },
        },
        adp: [
          {
            providerMetadata: { orgId: 'y', shortName: 'CISA-ADP' },
            metrics: [
              {
                other: {
                  type: 'ssvc',
                  content: {
                    options: [
                      { Exploitation: ssvc.e },
                      { Automatable: ssvc.a },
                      { 'Technical Impact': ssvc.t },
                    ],
                  },
                },
              },
            ],
          },
        ],
      },
    });

  const exposures = [
    { id: 'e-web-a', asset: 'host:web-01', cve: 'CVE-2026-1000', firstSeen: '2026-11-01T00:00:00Z' },
    { id: 'e-web-b', asset: 'host:web-01', cve: 'CVE-2026-2000', firstSeen: '2026-11-02T00:00:00Z' },
    { id: 'e-db-a', asset: 'host:db-01', cve: 'CVE-2026-1000', firstSeen: '2026-10-01T00:00:00Z' },
    { id: 'e-db-c', asset: 'host:db-01', cve: 'CVE-2026-3000', firstSeen: '2026-09-15T00:00:00Z' },
    { id: 'e-lab-b', asset: 'host:lab-01', cve: 'CVE-2026-2000', firstSeen: '2026-11-10T00:00:00Z' },
    { id: 'e-lab-rule', asset: 'host:lab-01', cve: 'nessus:19506', firstSeen: '2026-11-10T00:00:00Z' },
  ];

  beforeAll(async () => {
    ({ pool } = await testDatabase());
    dir = await mkdtemp(path.join(os.tmpdir(), 'ctem-rescore-'));
    await writeFile(
      path.join(dir, 'kev-1.json'),
      kev([{ cve: 'CVE-2026-3000', added: '2026-09-01' }], '2026-11-01T00:00:00Z'),
    );
    await writeFile(
      path.join(dir, 'epss.csv'),
      '#model_version:v2025.03.14,score_date:2026-11-01T00:00:00Z\ncve,epss,percentile\nCVE-2026-1000,0.02,0.6\nCVE-2026-2000,0.2,0.97\nCVE-2026-3000,0.9,0.999\n',
    );
    await import('node:fs/promises').then((fs) => fs.mkdir(path.join(dir, 'cve5'), { recursive: true }));
    await writeFile(
      path.join(dir, 'cve5', 'CVE-2026-1000.json'),
      record('CVE-2026-1000', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', {
        e: 'none',
        a: 'yes',
        t: 'total',
      }),
    );
    await writeFile(
      path.join(dir, 'cve5', 'CVE-2026-2000.json'),
      record('CVE-2026-2000', 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N', {
        e: 'poc',
        a: 'no',
        t: 'partial',
      }),
    );
    await writeFile(
      path.join(dir, 'cve5', 'CVE-2026-3000.json'),
      record('CVE-2026-3000', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H', {
        e: 'active',
        a: 'yes',
        t: 'total',
      }),
    );
    await loadKev(pool, path.join(dir, 'kev-1.json'));
    await loadEpss(pool, path.join(dir, 'epss.csv'));
    await loadCve5(pool, path.join(dir, 'cve5'));
    await inventory(pool, exposures);
    // A scanner rule with no feed intel: what the scanner reported stands in.
    await pool.query(
      `insert into vulnerabilities (key, reported_cvss, reported_exploit_available) values ('nessus:19506', $1, true)`,
      [
        JSON.stringify([
          {
            version: '3.1',
            vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
            score: 9.8,
            source: 'nessus',
          },
        ]),
      ],
    );
  });

  it('first re-score decides every open exposure, exactly as the TypeScript policy does', async () => {
    const r = await rescoreExposures(pool, { policy: defaultPolicy, apply: true, now: NOW });
    expect(r.examined).toBe(6);
    expect(r.changed).toBe(6);
    const expected = await decisionsInTs(
      pool,
      exposures.map((e) => e.id),
    );
    const got = byId(r.rows);
    for (const [id, d] of expected)
      expect(got.get(id)?.next, id).toMatchObject({
        outcome: d.outcome,
        dueAt: d.dueAt,
        policyVersion: '2026.08.1',
      });
    expect(got.get('e-db-c')?.next.outcome).toBe('attend'); // KEV, internal, automatable, high × total
    // Scanner-reported exploit (public poc), internal, automatable per its CVSS, low asset → Track*.
    expect(got.get('e-lab-rule')?.next.outcome).toBe('track*');
    const stored = await pool.query<{ id: string; priority: string; policy_hash: string }>(
      `select id, priority, policy_hash from exposures order by id`,
    );
    expect(
      stored.rows.every(
        (s) => s.policy_hash === defaultPolicy('default').hash && s.priority === got.get(s.id)!.next.outcome,
      ),
    ).toBe(true);
  });

  it('a second re-score with nothing new finds nothing', async () => {
    const r = await rescoreExposures(pool, { policy: defaultPolicy, apply: true, now: NOW });
    expect(r).toMatchObject({ changed: 0, restamped: 0, rows: [] });
  });

  it('a CVE newly in KEV escalates at once: exactly its exposures come back', async () => {
    const before = await decisionsInTs(pool, ['e-web-a', 'e-db-a']);
    await writeFile(
      path.join(dir, 'kev-2.json'),
      kev(
        [
          { cve: 'CVE-2026-3000', added: '2026-09-01' },
          { cve: 'CVE-2026-1000', added: '2026-11-20' },
        ],
        '2026-11-20T12:00:00Z',
      ),
    );
    const load = await loadKev(pool, path.join(dir, 'kev-2.json'));
    expect(load.addedKeys).toEqual(['CVE-2026-1000']);
    const r = await rescoreExposures(pool, { policy: defaultPolicy, apply: true, now: NOW });
    expect(r.rows?.map((x) => x.id).sort()).toEqual(['e-db-a', 'e-web-a']);
    const after = await decisionsInTs(pool, ['e-web-a', 'e-db-a']);
    for (const row of r.rows!) {
      expect(row.next).toMatchObject(after.get(row.id)!);
      expect(row.previous.outcome).toBe(before.get(row.id)!.outcome);
    }
    // web-01: active, open, automatable, very high → Act; KEV + exposed + total: 3 days from the KEV date.
    expect(byId(r.rows).get('e-web-a')?.next).toMatchObject({
      outcome: 'act',
      dueAt: '2026-11-08T00:00:00.000Z',
    });
    expect(byId(r.rows).get('e-db-a')?.next).toMatchObject({
      outcome: 'attend',
      dueAt: '2026-10-31T00:00:00.000Z',
    });
  });

  it('a policy change finds the exposures whose deadline moves, and re-stamps the rest', async () => {
    const text = readFileSync(BUILTIN_POLICY_FILE, 'utf8')
      .replace("version: '2026.08.1'", "version: '2026.12.0'")
      .replace('attend: { slaDays: 30 }', 'attend: { slaDays: 21 }');
    const changed = parsePolicy(text, 'stricter.yaml');
    const stored = new Map(
      (
        await pool.query<{ id: string; priority: string; sla_due: Date }>(
          `select id, priority, sla_due from exposures`,
        )
      ).rows.map((x) => [x.id, { outcome: x.priority, dueAt: x.sla_due.toISOString() }]),
    );
    const expected = await decisionsInTs(
      pool,
      exposures.map((e) => e.id),
      () => changed,
    );
    const r = await rescoreExposures(pool, { policy: () => changed, apply: true, now: NOW });
    const moved = [...expected]
      .filter(([id, d]) => d.dueAt !== stored.get(id)!.dueAt || d.outcome !== stored.get(id)!.outcome)
      .map(([id]) => id);
    // Only Attend's SLA changed; e-db-c is Attend too, but its KEV deadline comes first either way.
    expect(moved).toEqual(['e-db-a']);
    expect(r.rows?.map((x) => x.id)).toEqual(moved);
    expect(r.rows?.[0]?.next).toMatchObject({ ...expected.get('e-db-a'), policyVersion: '2026.12.0' });
    expect(r.changed + r.restamped).toBe(6);
    const versions = await pool.query<{ v: string }>(`select distinct policy_version v from exposures`);
    expect(versions.rows).toEqual([{ v: '2026.12.0' }]);
  });

  it('a resolved exposure is no longer re-scored', async () => {
    await pool.query(`update exposures set state = 'resolved' where id = 'e-lab-b'`);
    const r = await rescoreExposures(pool, { policy: defaultPolicy, now: NOW });
    expect(r.examined).toBe(5);
    expect(r.rows?.some((x) => x.id === 'e-lab-b')).toBe(false);
  });
});

describe.skipIf(
  !existsSync(path.join(SHARED, 'kev')) || !existsSync(path.join(SHARED, 'nvd/cve5-vulnrichment')),
)('re-scoring on the shared feeds', () => {
  it('after loading the newer KEV catalog, returns exactly the exposures whose decision or deadline changed', async () => {
    const { pool } = await testDatabase();
    const OLD = path.join(SHARED, 'kev/known_exploited_vulnerabilities-2025-08-25.cisagov-kev-data.json');
    const NEW = path.join(SHARED, 'kev/known_exploited_vulnerabilities.json');
    await loadKev(pool, OLD);
    await loadCve5(pool, path.join(SHARED, 'nvd/cve5-vulnrichment'));
    const older = new Set(
      (JSON.parse(readFileSync(OLD, 'utf8')) as { vulnerabilities: { cveID: string }[] }).vulnerabilities.map(
        (v) => v.cveID,
      ),
    );
    const newerIds = (
      JSON.parse(readFileSync(NEW, 'utf8')) as { vulnerabilities: { cveID: string }[] }
    ).vulnerabilities.map((v) => v.cveID);
    const added = newerIds.filter((id) => !older.has(id));
    // Exposures on 40 newly listed CVEs, 40 already listed and 40 never listed, on two assets.
    const records = await pool.query<{ cve: string }>(
      `select cve from cve_records where cve <> all ($1) order by cve limit 40`,
      [newerIds],
    );
    const keys = [...added.slice(0, 40), ...[...older].slice(0, 40), ...records.rows.map((r) => r.cve)];
    const exposures = keys.flatMap((cve, i) => [
      {
        id: `w-${cve}`,
        asset: 'host:web-01',
        cve,
        firstSeen: new Date(Date.parse('2025-06-01T00:00:00Z') + i * 86_400_000).toISOString(),
      },
      { id: `d-${cve}`, asset: 'host:db-01', cve, firstSeen: '2026-08-01T00:00:00Z' },
    ]);
    await inventory(pool, exposures);
    await rescoreExposures(pool, { policy: defaultPolicy, apply: true, now: NOW });
    const before = await decisionsInTs(
      pool,
      exposures.map((e) => e.id),
    );

    const load = await loadKev(pool, NEW);
    expect(load.addedKeys?.length).toBe(added.length);
    const r = await rescoreExposures(pool, { policy: defaultPolicy, apply: true, now: NOW });
    const after = await decisionsInTs(
      pool,
      exposures.map((e) => e.id),
    );
    const expected = exposures
      .map((e) => e.id)
      .filter(
        (id) =>
          before.get(id)!.outcome !== after.get(id)!.outcome ||
          before.get(id)!.dueAt !== after.get(id)!.dueAt,
      )
      .sort();
    expect(expected.length).toBeGreaterThan(0);
    expect(r.rows?.map((x) => x.id).sort()).toEqual(expected);
    // Only KEV changed between the two scores, so only exposures on newly listed CVEs moved.
    expect(r.rows?.every((x) => added.includes(x.vulnKey))).toBe(true);
    for (const x of r.rows!) expect(x.next).toMatchObject(after.get(x.id)!);
  });
});
