// ctem score, ctem feeds load|sync and ctem explain, run as the CLI runs them (against this file's
// own database through DATABASE_URL), with their output as a user reads it.
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../../test/support/db.ts';
import type { Pool } from '../../runtime/pool.ts';
import { UserError } from '../errors.ts';
import { runExplain } from './explain.ts';
import { runFeedsLoad, runFeedsSync } from './feeds.ts';
import { runScore } from './score.ts';

function capture() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString()));
  return { stream, text: () => text };
}

describe('ctem score', () => {
  const score = (vector: string, opts = {}) => {
    const out = capture();
    const err = capture();
    const code = runScore(vector, opts, { stdout: out.stream, stderr: err.stream });
    return { code, out: out.text(), err: err.text() };
  };

  it('prints the scores as JSON', () => {
    const r = score('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({
      version: '3.1',
      vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
      base: 9.8,
      baseSeverity: 'critical',
      score: 9.8,
      severity: 'critical',
      nomenclature: 'CVSS-B',
    });
  });

  it('applies --cr/--ir/--ar, --modified and --exploit', () => {
    const r = score('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', {
      cr: 'h',
      modified: 'MAV:A',
      exploit: 'attacked',
    });
    expect(JSON.parse(r.out)).toMatchObject({
      score: 8.8,
      environmental: 8.8,
      nomenclature: 'CVSS-BTE',
      vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:H/CR:H/MAV:A',
    });
    const v4 = score('CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', {
      exploit: 'unreported',
    });
    expect(JSON.parse(v4.out)).toMatchObject({ base: 9.3, nomenclature: 'CVSS-BT' });
  });

  it('refuses a malformed vector or option with one sentence and exit code 2', () => {
    const bad = score('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:Q');
    expect(bad).toMatchObject({ code: 2, out: '' });
    expect(bad.err).toBe(
      'ctem: CVSS vector "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:Q": metric A has value "Q", allowed: H, L, N.\n',
    );
    expect(score('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', { cr: 'X' }).err).toBe(
      'ctem: --cr must be L, M or H, not "X"\n',
    );
    expect(score('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', { modified: 'MAV' }).err).toMatch(
      /--modified takes METRIC:VALUE pairs/,
    );
  });
});

describe('ctem feeds and ctem explain', () => {
  let pool: Pool;
  let dir: string;
  const env = () => ({ ...process.env });

  beforeAll(async () => {
    const db = await testDatabase();
    pool = db.pool;
    process.env.DATABASE_URL = db.url;
    process.env.CTEM_CONFIG = '';
    dir = await mkdtemp(path.join(os.tmpdir(), 'ctem-cli-intel-'));
    // No `ctem up` stack here: re-scoring finds no Temporal to hand changes to.
    process.env.CTEM_HOME = dir;
    await writeFile(
      path.join(dir, 'kev.json'),
      JSON.stringify({
        catalogVersion: '2026.11.20',
        dateReleased: '2026-11-20T12:00:00Z',
        count: 1,
        vulnerabilities: [
          {
            cveID: 'CVE-2021-44228',
            vendorProject: 'Apache',
            product: 'Log4j2',
            vulnerabilityName: 'Log4Shell',
            dateAdded: '2021-12-10',
            dueDate: '2021-12-24',
            knownRansomwareCampaignUse: 'Known',
          },
        ],
      }),
    );
    await writeFile(
      path.join(dir, 'epss.csv'),
      '#model_version:v2025.03.14,score_date:2026-11-20T00:00:00Z\ncve,epss,percentile\nCVE-2021-44228,0.94358,0.99962\n',
    );
    await import('node:fs/promises').then((fs) => fs.mkdir(path.join(dir, 'cves'), { recursive: true }));
    await writeFile(
      path.join(dir, 'cves', 'CVE-2021-44228.json'),
      JSON.stringify({
        dataType: 'CVE_RECORD',
        cveMetadata: {
          cveId: 'CVE-2021-44228',
          state: 'PUBLISHED',
          datePublished: '2021-12-10T00:00:00Z',
          dateUpdated: '2024-08-04T14:00:00Z',
        },
        containers: {
          cna: {
            title:
              'Apache Log4j2 JNDI features do not protect against attacker controlled LDAP and other JNDI related endpoints',
            metrics: [
              {
                cvssV3_1: {
                  version: '3.1',
                  vectorString: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H',
                  baseScore: 10,
                },
              },
            ],
            providerMetadata: { orgId: 'apache', shortName: 'apache' },
          },
          adp: [
            {
              providerMetadata: { orgId: 'cisa', shortName: 'CISA-ADP' },
              metrics: [
                {
                  other: {
                    type: 'ssvc',
                    content: {
                      options: [
                        { Exploitation: 'active' },
                        { Automatable: 'yes' },
                        { 'Technical Impact': 'total' },
                      ],
                    },
                  },
                },
              ],
            },
          ],
        },
      }),
    );
    await pool.query(
      `insert into scopes (name, config) values ('dmz', '{"internetFacing": true, "cia": {"confidentiality": "H", "integrity": "H", "availability": "H"}}')`,
    );
    await pool.query(
      `insert into assets (identity_key, kind, hostname, fqdn, scope, criticality) values ('host:web-01.example.com', 'host', 'web-01', 'web-01.example.com', 'dmz', 'critical')`,
    );
    await pool.query(
      `insert into exposures (id, asset_id, vuln_key, scope, first_seen, last_seen, learned_at) select 'exp-log4shell', id, 'CVE-2021-44228', 'dmz', '2026-11-19T00:00:00Z', '2026-11-19T00:00:00Z', '2026-11-19T00:00:00Z' from assets`,
    );
  });

  it('ctem feeds load kev FILE: reports the run and what it re-prioritizes (no Temporal: says so)', async () => {
    const out = capture();
    const err = capture();
    await runFeedsLoad(
      'kev',
      path.join(dir, 'kev.json'),
      {},
      { stdout: out.stream, stderr: err.stream, env: env() },
    );
    expect(out.text()).toMatch(
      /^kev: 1 records \(2026\.11\.20 of 2026-11-20T12:00:00\.000Z\): 1 added, 0 changed, 0 unchanged, 0 removed in \d+\.\d s\n {2}newly listed: CVE-2021-44228\nre-score: 1 of 1 open exposures change priority or deadline\n$/,
    );
    expect(err.text()).toBe(
      'Temporal is not reachable (Temporal is not running: start `ctem up` in another terminal, or set temporal.address in ctem.yaml): the 1 changed decisions were neither applied nor handed to their workflows; run `ctem feeds rescore` once Temporal is up (the daily feed sync also does it)\n',
    );
  });

  it('ctem feeds load --json prints the run as JSON', async () => {
    const out = capture();
    await runFeedsLoad(
      'epss',
      path.join(dir, 'epss.csv'),
      { json: true },
      { stdout: out.stream, env: env() },
    );
    expect(JSON.parse(out.text())).toMatchObject({
      feed: 'epss',
      records: 1,
      added: 1,
      sourceVersion: 'v2025.03.14',
      rescore: { examined: 1, changed: 1 },
    });
  });

  it('ctem feeds load cve5 FOLDER', async () => {
    const out = capture();
    await runFeedsLoad(
      'cve5',
      path.join(dir, 'cves'),
      { rescore: false },
      { stdout: out.stream, env: env() },
    );
    expect(out.text()).toMatch(
      /^cve5: 1 records \(CVE JSON 5 of 2024-08-04T14:00:00\.000Z\): 1 added, 0 changed, 0 unchanged, 0 removed in \d+\.\d s\n$/,
    );
  });

  it('refuses an unknown feed or a missing file as a user error', async () => {
    const out = capture();
    await expect(runFeedsLoad('osv', 'x', {}, { stdout: out.stream, env: env() })).rejects.toThrow(
      new UserError('unknown feed "osv": use one of kev, epss, cve5, nvd', 2),
    );
    await expect(
      runFeedsLoad('kev', path.join(dir, 'missing.json'), {}, { stdout: out.stream, env: env() }),
    ).rejects.toThrow(`${path.join(dir, 'missing.json')} does not exist`);
  });

  it('ctem explain EXPOSURE-ID: the decision, the summary and every reason', async () => {
    const out = capture();
    await runExplain('exp-log4shell', {}, { stdout: out.stream }, new Date('2026-11-21T00:00:00Z'));
    const text = out.text();
    expect(text).toContain(
      'CVE-2021-44228 on web-01.example.com (scope dmz, critical criticality) — exposure exp-log4shell',
    );
    expect(text).toMatch(/^Act: fix by 2026-11-22 — policy default 2026\.08\.1 \([0-9a-f]{12}\)$/m);
    expect(text).toContain(
      'in CISA KEV since 2021-12-10; EPSS 0.94 (99.9th pct); internet-facing; automatable; total technical impact; critical asset; CVSS-BTE 10.0 → Act: fix by 2026-11-22',
    );
    expect(text).toContain(
      "  - Exploitation active: in CISA KEV since 2021-12-10, used in ransomware campaigns; CISA's SSVC assessment says exploitation active; EPSS 0.94 (99.9th pct) meets probability ≥ 0.5.",
    );
    expect(text).toContain(
      'Recorded on the exposure: no priority yet, state open — differs from the decision above until the next re-score',
    );
  });

  it('ctem explain --cve --asset, as JSON and as of a date before the intel', async () => {
    const out = capture();
    await runExplain(
      undefined,
      { cve: 'cve-2021-44228', asset: 'web-01', json: true },
      { stdout: out.stream },
      new Date('2026-11-21T00:00:00Z'),
    );
    const now = JSON.parse(out.text()) as {
      exposureId: string;
      decision: { outcome: string; points: { exploitation: { value: string } } };
    };
    expect(now.exposureId).toBe('exp-log4shell');
    expect(now.decision.outcome).toBe('act');

    const before = capture();
    await runExplain('exp-log4shell', { asOf: '2024-01-01', json: true }, { stdout: before.stream });
    // Before the KEV/EPSS loads' source dates and the CVE record's last update: nothing known.
    const then = JSON.parse(before.text()) as {
      intel: { kev: unknown; epss: unknown; record: unknown };
      decision: { points: { exploitation: { value: string } } };
    };
    expect(then.intel.kev).toBeNull();
    expect(then.intel.epss).toBeNull();
    expect(then.intel.record).toBeNull();
    expect(then.decision.points.exploitation.value).toBe('none');
  });

  it('explains what it cannot find in one sentence', async () => {
    const out = capture();
    await expect(runExplain('nope', {}, { stdout: out.stream })).rejects.toThrow(
      'no exposure has the id "nope" (see ctem exposures list)',
    );
    await expect(
      runExplain(undefined, { cve: 'CVE-2021-44228', asset: 'db-99' }, { stdout: out.stream }),
    ).rejects.toThrow(/no asset matches "db-99"/);
    await expect(runExplain(undefined, { cve: 'CVE-2021-44228' }, { stdout: out.stream })).rejects.toThrow(
      'give an exposure id, or --cve ID together with --asset A',
    );
  });

  it('ctem feeds sync loads the feeds configured in ctem.yaml', async () => {
    const config = path.join(dir, 'ctem.yaml');
    await writeFile(config, `version: 1\nfeeds:\n  kev: { path: kev.json }\n  epss: { path: epss.csv }\n`);
    const out = capture();
    await runFeedsSync({ config }, { stdout: out.stream, stderr: capture().stream, env: env() });
    expect(
      out
        .text()
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(':')[0]),
    ).toEqual(['kev', 'epss', 're-score']);
    expect(out.text()).toContain(
      'kev: 1 records (2026.11.20 of 2026-11-20T12:00:00.000Z): 0 added, 0 changed, 1 unchanged',
    );

    await writeFile(
      config,
      `version: 1\nfeeds:\n  kev: { path: kev.json, url: https://example.com/kev.json }\n`,
    );
    await expect(runFeedsSync({ config }, { stdout: out.stream, env: env() })).rejects.toThrow(
      'ctem.yaml: feeds.kev: give exactly one of url or path',
    );
  });
});
