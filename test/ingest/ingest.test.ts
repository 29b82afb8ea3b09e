import { beforeEach, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { ingestReport, type IngestOptions } from '../../ingest/ingest.ts';
import { scanDiff, scanChanges } from '../../ingest/diff.ts';
import { exposureId } from '../../domain/exposure.ts';
import type { Finding } from '../../domain/finding.ts';
import { configWithScopes, finding, host, stream } from './findings.ts';

let db: TestDatabase;
beforeEach(async () => {
  db = await testDatabase();
});

const noScopes: IngestOptions = { scopes: [] };
let fileCounter = 0;

async function ingest(findings: Finding[], opts: Partial<IngestOptions> = {}, sha?: string) {
  return await ingestReport(
    db.pool,
    {
      source: `report-${++fileCounter}.nessus`,
      format: findings[0]?.scanner ?? 'nessus',
      findings: stream(findings),
      fileSha256: sha ?? `sha-${fileCounter}-${Math.random()}`,
    },
    { ...noScopes, ...opts },
  );
}

async function assetsRows() {
  return (
    await db.pool.query<{
      id: number;
      identity_key: string;
      fqdn: string | null;
      ips: string[];
      scope: string | null;
    }>('select id, identity_key, fqdn, ips, scope from assets order by id')
  ).rows;
}

async function exposure(assetId: number, key: string) {
  const { rows } = await db.pool.query<{
    present: boolean;
    state: string;
    first_scan_id: number;
    last_scan_id: number;
  }>('select present, state, first_scan_id, last_scan_id from exposures where id = $1', [
    exposureId(assetId, key),
  ]);
  return rows[0];
}

describe('ingest: assets', () => {
  it('makes one asset of the same host reported by name by one scanner and by address by another', async () => {
    await ingest([finding(host('web-01.example.com', '10.0.0.5'), 'CVE-2024-0001')]);
    await ingest([
      finding(host(undefined, '10.0.0.5'), 'nmap:open-port/tcp/443', { scanner: 'nmap', kind: 'open-port' }),
    ]);
    await ingest([
      finding({ kind: 'host', hostname: 'web-01', mac: '00:16:3E:00:00:01' }, 'CVE-2024-0002', {
        scanner: 'openvas',
      }),
    ]);
    const assets = await assetsRows();
    expect(assets).toHaveLength(1);
    expect(assets[0]).toMatchObject({ identity_key: 'host:web-01.example.com', ips: ['10.0.0.5'] });
    const { rows } = await db.pool.query('select vuln_key from exposures order by vuln_key');
    expect(rows.map((r) => r.vuln_key)).toEqual(['CVE-2024-0001', 'CVE-2024-0002', 'nmap:open-port/tcp/443']);
    const ids = await db.pool.query('select kind, value from asset_identifiers order by kind, value');
    expect(ids.rows).toEqual([
      { kind: 'fqdn', value: 'web-01.example.com' },
      { kind: 'hostname', value: 'web-01' },
      { kind: 'ip', value: '10.0.0.5' },
      { kind: 'mac', value: '00:16:3E:00:00:01' },
    ]);
  });

  it('keeps two machines apart when they share an address but not a name', async () => {
    await ingest([
      finding(host('a.example.com', '10.0.0.9'), 'CVE-2024-0001'),
      finding(host('b.example.com', '10.0.0.9'), 'CVE-2024-0001'),
    ]);
    expect((await assetsRows()).map((a) => a.identity_key)).toEqual([
      'host:a.example.com',
      'host:b.example.com',
    ]);
  });

  it('identifies images by repository and digest, so a rebuilt tag is a new asset', async () => {
    const image = (digest: string) => ({
      kind: 'image' as const,
      imageRepo: 'registry.example.com/shop/api',
      imageTag: '1.4',
      imageDigest: digest,
    });
    await ingest([finding(image('sha256:aaa'), 'CVE-2024-1000', { scanner: 'trivy' })]);
    await ingest([finding(image('sha256:aaa'), 'CVE-2024-1001', { scanner: 'grype' })]);
    await ingest([finding(image('sha256:bbb'), 'CVE-2024-1000', { scanner: 'trivy' })]);
    expect((await assetsRows()).map((a) => a.identity_key)).toEqual([
      'image:registry.example.com/shop/api@sha256:aaa',
      'image:registry.example.com/shop/api@sha256:bbb',
    ]);
  });

  it('skips findings whose asset carries nothing to identify it by, and says how many', async () => {
    const summary = await ingest([
      finding({ kind: 'host' }, 'CVE-2024-0001'),
      finding(host('ok.example.com'), 'CVE-2024-0001'),
    ]);
    expect(summary.findings).toBe(2);
    expect(summary.skippedFindings).toBe(1);
    expect(summary.exposures.new).toBe(1);
  });
});

describe('ingest: scopes', () => {
  const scopes = configWithScopes([
    { name: 'prod', criticality: 'critical', match: { cidrs: ['10.1.0.0/16', '2001:db8::/32'] } },
    { name: 'dmz', match: { hostnames: ['*.dmz.example.com', 'gw-??'] } },
    { name: 'k8s', match: { tags: ['namespace:payments'] } },
    { name: 'images', match: { images: ['registry.example.com/shop/*', 'nginx'] } },
  ]).scopes;

  it('assigns scopes by CIDR, host name glob, tag and image repository, first matching scope first', async () => {
    await ingest(
      [
        finding(host('db.example.com', '10.1.2.3'), 'CVE-1'),
        finding(host('v6.example.com', '2001:db8::1'), 'CVE-1'),
        finding(host('www.dmz.example.com', '192.0.2.10'), 'CVE-1'),
        finding(host('gw-01'), 'CVE-1'),
        finding(host('both.dmz.example.com', '10.1.9.9'), 'CVE-1'),
        finding({ kind: 'host', hostname: 'pod-1', tags: ['namespace:payments'] }, 'CVE-1'),
        finding(
          { kind: 'image', imageRepo: 'registry.example.com/shop/api', imageDigest: 'sha256:1' },
          'CVE-1',
        ),
        finding({ kind: 'image', imageRepo: 'docker.io/library/nginx', imageTag: '1.25' }, 'CVE-1'),
        finding(host('lonely.example.org', '198.51.100.7'), 'CVE-1'),
      ],
      { scopes },
    );
    const byKey = Object.fromEntries((await assetsRows()).map((a) => [a.identity_key, a.scope]));
    expect(byKey).toEqual({
      'host:db.example.com': 'prod',
      'host:v6.example.com': 'prod',
      'host:www.dmz.example.com': 'dmz',
      'host:gw-01': 'dmz',
      'host:both.dmz.example.com': 'prod',
      'host:pod-1': 'k8s',
      'image:registry.example.com/shop/api@sha256:1': 'images',
      'image:docker.io/library/nginx:1.25': 'images',
      'host:lonely.example.org': null,
    });
    const crit = await db.pool.query(
      `select criticality from assets where identity_key = 'host:db.example.com'`,
    );
    expect(crit.rows[0].criticality).toBe('critical');
    const exp = await db.pool.query(
      `select distinct scope from exposures where scope is not null order by scope`,
    );
    expect(exp.rows.map((r) => r.scope)).toEqual(['dmz', 'images', 'k8s', 'prod']);
  });

  it('puts every asset in the --scope given, and refuses a scope ctem.yaml does not define', async () => {
    await ingest([finding(host('lonely.example.org', '198.51.100.7'), 'CVE-1')], { scopes, scope: 'dmz' });
    expect((await assetsRows())[0]?.scope).toBe('dmz');
    await expect(
      ingest([finding(host('x.example.org'), 'CVE-1')], { scopes, scope: 'nope' }),
    ).rejects.toThrow(
      /unknown scope "nope" \(ctem.yaml scopes: prod, dmz, k8s, images\); add it under scopes in ctem.yaml/,
    );
  });
});

describe('ingest: the diff of each scan', () => {
  const web = () => host('web.example.com', '10.0.0.1');
  const db1 = () => host('db.example.com', '10.0.0.2');

  it('re-ingesting the same file changes nothing and says it was already ingested', async () => {
    const findings = [finding(web(), 'CVE-1'), finding(web(), 'CVE-2')];
    const first = await ingest(findings, {}, 'same-hash');
    const snapshot = async () =>
      (
        await db.pool.query(
          `select (select json_agg(s order by id) from scans s) as scans,
                  (select json_agg(e order by id) from exposures e) as exposures,
                  (select json_agg(o order by exposure_id) from observations o) as observations,
                  (select json_agg(a order by id) from assets a) as assets`,
        )
      ).rows[0];
    const before = await snapshot();
    const again = await ingest(findings, {}, 'same-hash');
    expect(again).toMatchObject({ status: 'already-ingested', scanId: first.scanId, findings: 2 });
    expect(await snapshot()).toEqual(before);
  });

  it('marks an exposure gone when a later scan of the same coverage no longer reports it', async () => {
    const s1 = await ingest([finding(web(), 'CVE-1'), finding(web(), 'CVE-2'), finding(db1(), 'CVE-3')]);
    expect(s1.exposures).toMatchObject({ new: 3, stillPresent: 0, gone: 0, reappeared: 0 });
    const [webAsset, dbAsset] = await assetsRows();

    // The later scan covers web only: CVE-2 is gone, db's CVE-3 is not (db was not scanned).
    const s2 = await ingest([finding(web(), 'CVE-1'), finding(web(), 'CVE-4')]);
    expect(s2.exposures).toMatchObject({ new: 1, stillPresent: 1, gone: 1, reappeared: 0 });
    expect(await exposure(webAsset!.id, 'CVE-2')).toMatchObject({ present: false });
    expect(await exposure(dbAsset!.id, 'CVE-3')).toMatchObject({ present: true });
    expect(await scanDiff(db.pool, s2.scanId)).toEqual({
      new: [exposureId(webAsset!.id, 'CVE-4')],
      gone: [exposureId(webAsset!.id, 'CVE-2')],
      reappeared: [],
      retired: [],
    });

    // Another scanner's scan of web says nothing about nessus's findings.
    const s3 = await ingest([
      finding(web(), 'nmap:open-port/tcp/22', { scanner: 'nmap', kind: 'open-port' }),
    ]);
    expect(s3.exposures.gone).toBe(0);
    expect(await exposure(webAsset!.id, 'CVE-1')).toMatchObject({ present: true });
  });

  it('reports an exposure that comes back as reappeared', async () => {
    await ingest([finding(web(), 'CVE-1'), finding(web(), 'CVE-2')]);
    await ingest([finding(web(), 'CVE-1')]);
    const s3 = await ingest([finding(web(), 'CVE-1'), finding(web(), 'CVE-2')]);
    const [asset] = await assetsRows();
    expect(s3.exposures).toMatchObject({ new: 0, stillPresent: 1, gone: 0, reappeared: 1 });
    expect((await scanDiff(db.pool, s3.scanId)).reappeared).toEqual([exposureId(asset!.id, 'CVE-2')]);
    expect(await exposure(asset!.id, 'CVE-2')).toMatchObject({ present: true, first_scan_id: 1 });
  });

  it('keeps an exposure present while another scanner that saw it has not said otherwise', async () => {
    await ingest([finding(web(), 'CVE-1')]);
    await ingest([finding(web(), 'CVE-1', { scanner: 'openvas' })]);
    const s3 = await ingest([finding(web(), 'CVE-9')]);
    const [asset] = await assetsRows();
    expect(s3.exposures.gone).toBe(0);
    expect(await exposure(asset!.id, 'CVE-1')).toMatchObject({ present: true });
    const s4 = await ingest([finding(web(), 'CVE-9', { scanner: 'openvas' })]);
    expect((await scanDiff(db.pool, s4.scanId)).gone).toEqual([exposureId(asset!.id, 'CVE-1')]);
  });

  it('does not let an older report ingested late mark newer sightings gone', async () => {
    const t = (d: string) => new Date(d);
    await ingest([finding(web(), 'CVE-1'), finding(web(), 'CVE-2')], { scanTime: t('2024-06-10T00:00:00Z') });
    const late = await ingest([finding(web(), 'CVE-1')], { scanTime: t('2024-06-01T00:00:00Z') });
    expect(late.exposures.gone).toBe(0);
    const [asset] = await assetsRows();
    expect(await exposure(asset!.id, 'CVE-2')).toMatchObject({ present: true });
    const { rows } = await db.pool.query(
      `select first_seen, last_seen from exposures where vuln_key = 'CVE-1'`,
    );
    expect(rows[0]).toEqual({ first_seen: t('2024-06-01T00:00:00Z'), last_seen: t('2024-06-10T00:00:00Z') });
  });

  it('lets a targeted check mark gone only the weaknesses it checked, on the assets it covered', async () => {
    await ingest([finding(web(), 'CVE-1'), finding(web(), 'CVE-2'), finding(db1(), 'CVE-1')]);
    const [webAsset, dbAsset] = await assetsRows();
    const check = await ingest([], {
      scanner: 'nessus',
      coveredAssetIds: [webAsset!.id],
      coveredKeys: ['CVE-1'],
    });
    expect(check.exposures.gone).toBe(1);
    expect(await exposure(webAsset!.id, 'CVE-1')).toMatchObject({ present: false });
    expect(await exposure(webAsset!.id, 'CVE-2')).toMatchObject({ present: true });
    expect(await exposure(dbAsset!.id, 'CVE-1')).toMatchObject({ present: true });
  });

  it('pages through a kind of change', async () => {
    const s = await ingest(Array.from({ length: 25 }, (_, i) => finding(web(), `CVE-2024-${1000 + i}`)));
    const page1 = await scanChanges(db.pool, s.scanId, 'new', { limit: 10 });
    const page2 = await scanChanges(db.pool, s.scanId, 'new', { limit: 10, after: page1.at(-1) });
    const page3 = await scanChanges(db.pool, s.scanId, 'new', { limit: 10, after: page2.at(-1) });
    expect([page1.length, page2.length, page3.length]).toEqual([10, 10, 5]);
    expect(new Set([...page1, ...page2, ...page3]).size).toBe(25);
  });
});

describe('ingest: one transaction per report', () => {
  it('leaves nothing behind when the report fails part-way', async () => {
    const findings = Array.from({ length: 5000 }, (_, i) =>
      finding(host(`h${i % 50}.example.com`), `CVE-2024-${i}`),
    );
    await expect(
      ingestReport(
        db.pool,
        { source: 'broken.nessus', format: 'nessus', findings: stream(findings, 4000), fileSha256: 'broken' },
        noScopes,
      ),
    ).rejects.toThrow(/line 4001: unexpected end of input/);
    const { rows } = await db.pool.query(
      `select (select count(*) from scans) + (select count(*) from assets) + (select count(*) from exposures)
            + (select count(*) from observations) + (select count(*) from asset_identifiers)
            + (select count(*) from vulnerabilities) as n`,
    );
    expect(rows[0].n).toBe(0);
    // The connection went back to the pool usable, and the same file can be ingested once fixed.
    const ok = await ingestReport(
      db.pool,
      { source: 'fixed.nessus', format: 'nessus', findings: stream(findings), fileSha256: 'broken' },
      noScopes,
    );
    expect(ok).toMatchObject({ status: 'ingested', findings: 5000 });
  });

  it('collapses one weakness reported twice on one asset into one observation', async () => {
    const web = host('web.example.com');
    const s = await ingest([
      finding(web, 'CVE-1', { severity: 'medium', package: { name: 'libssl3', version: '3.0.1' } }),
      finding(web, 'CVE-1', {
        severity: 'critical',
        package: { name: 'openssl', version: '3.0.1', fixedVersion: '3.0.7' },
      }),
    ]);
    expect(s.exposures.new).toBe(1);
    const { rows } = await db.pool.query(
      'select severity, package_name, fixed_version, instances from observations',
    );
    expect(rows).toEqual([
      { severity: 'critical', package_name: 'openssl', fixed_version: '3.0.7', instances: 2 },
    ]);
  });
});

describe('ingest: intel the report carries', () => {
  it('fills vulnerabilities without overwriting what a feed already wrote', async () => {
    await db.pool.query(
      `insert into vulnerabilities (key, title, description) values ('CVE-2021-44228', 'Log4Shell', 'From the feed')`,
    );
    await ingest([
      finding(host('a.example.com'), 'CVE-2021-44228', {
        title: 'Apache Log4j < 2.15.0 RCE',
        description: 'From the scanner',
        aliases: ['GHSA-jfh8-c2jp-5v3q'],
        cvss: [{ version: '3.1', vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H', score: 10 }],
        epss: { probability: 0.97, percentile: 0.999 },
        exploitAvailable: true,
        solution: 'Upgrade to 2.17.1',
      }),
      finding(host('a.example.com'), 'nessus:12345', { title: 'Plugin title', description: 'Plugin text' }),
    ]);
    const { rows } = await db.pool.query(
      `select key, title, description, aliases, reported_cvss, reported_epss, reported_exploit_available, reported_solution
         from vulnerabilities order by key`,
    );
    expect(rows).toEqual([
      {
        key: 'CVE-2021-44228',
        title: 'Log4Shell',
        description: 'From the feed',
        aliases: ['GHSA-jfh8-c2jp-5v3q'],
        reported_cvss: [
          { version: '3.1', vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H', score: 10 },
        ],
        reported_epss: 0.97,
        reported_exploit_available: true,
        reported_solution: 'Upgrade to 2.17.1',
      },
      {
        key: 'nessus:12345',
        title: 'Plugin title',
        description: 'Plugin text',
        aliases: [],
        reported_cvss: null,
        reported_epss: null,
        reported_exploit_available: null,
        reported_solution: null,
      },
    ]);
  });

  it('stores text with tabs, newlines, backslashes and NULs intact (NUL dropped)', async () => {
    const evidence = 'line1\n\tindented \\ back\r\nquote " and \u0000nul';
    await ingest([finding(host('a.example.com'), 'CVE-1', { evidence })]);
    const { rows } = await db.pool.query('select evidence from observations');
    expect(rows[0].evidence).toBe('line1\n\tindented \\ back\r\nquote " and nul');
  });
});

describe('ingest: an authoritative check', () => {
  it('overrides every scanner on the keys it checked, and only there', async () => {
    const web = host('web.example.com', '10.0.0.1');
    await ingest([
      finding(web, 'CVE-1'),
      finding(web, 'CVE-2'),
      finding(web, 'CVE-3', { scanner: 'openvas' }),
    ]);
    const [asset] = await assetsRows();
    // The check found CVE-2 still there (installed below the fix) and CVE-1 fixed.
    const check = await ingest(
      [
        finding(web, 'CVE-2', {
          scanner: 'ssh-package',
          package: { name: 'openssl', version: '3.0.1', fixedVersion: '3.0.7' },
        }),
      ],
      { coveredAssetIds: [asset!.id], coveredKeys: ['CVE-1', 'CVE-2'], authoritative: true },
    );
    expect(check.exposures).toMatchObject({ gone: 1, stillPresent: 1, new: 0 });
    expect(await exposure(asset!.id, 'CVE-1')).toMatchObject({ present: false });
    expect(await exposure(asset!.id, 'CVE-2')).toMatchObject({ present: true });
    expect(await exposure(asset!.id, 'CVE-3')).toMatchObject({ present: true });
    const { rows } = await db.pool.query(
      `select scanner, present from observations where vuln_key = 'CVE-2' order by scanner`,
    );
    expect(rows).toEqual([
      { scanner: 'nessus', present: true },
      { scanner: 'ssh-package', present: true },
    ]);
  });
});

describe('ingest: per-asset coverage of a check', () => {
  it('covers only the asset × key pairs it checked', async () => {
    const a = host('a.example.com');
    const b = host('b.example.com');
    await ingest([finding(a, 'CVE-1'), finding(a, 'CVE-2'), finding(b, 'CVE-1'), finding(b, 'CVE-2')]);
    const [assetA, assetB] = await assetsRows();
    const check = await ingest([], {
      scanner: 'ssh-package',
      coveredAssetIds: [assetA!.id, assetB!.id],
      coveredKeys: ['CVE-1', 'CVE-2'],
      coveredPairs: [
        { assetId: assetA!.id, key: 'CVE-1' },
        { assetId: assetB!.id, key: 'CVE-2' },
      ],
      authoritative: true,
    });
    expect((await scanDiff(db.pool, check.scanId)).gone).toEqual(
      [exposureId(assetA!.id, 'CVE-1'), exposureId(assetB!.id, 'CVE-2')].sort(),
    );
  });
});

describe('ingest: a report from the future', () => {
  const now = Date.parse('2026-12-07T12:00:00Z');
  const clock = () => now;
  const web = host('web-future.example.com', '10.9.0.5');

  it('is refused with a sentence and writes nothing; a day of clock skew is allowed', async () => {
    const before = await ingest([finding(web, 'CVE-2021-44228', { scanTime: '2026-12-07T11:00:00Z' })], {
      clock,
    });
    expect(before.exposures.new).toBe(1);
    const scans = async () =>
      (await db.pool.query<{ n: number }>('select count(*)::int as n from scans')).rows[0]!.n;
    const exposures = async () =>
      (await db.pool.query<{ present: boolean }>('select present from exposures')).rows.map((r) => r.present);

    // CreatedAt 2030: the CVE is no longer listed, which would have "fixed" it as of 2030.
    await expect(
      ingest([finding(web, 'CVE-2099-0001', { scanTime: '2030-01-01T00:00:00Z' })], { clock }),
    ).rejects.toThrow(
      /report-\d+\.nessus: the report says its scan ran at 2030-01-01T00:00:00\.000Z, 1120 days ahead of this machine's clock \(2026-12-07T12:00:00\.000Z\); more than 24 hours ahead is refused/,
    );
    expect(await scans()).toBe(1);
    expect(await exposures()).toEqual([true]);

    // Twenty hours ahead (a scanner writing local time east of Greenwich) is taken.
    const skewed = await ingest([finding(web, 'CVE-2021-44228', { scanTime: '2026-12-08T08:00:00Z' })], {
      clock,
    });
    expect(skewed.exposures.stillPresent).toBe(1);
  });
});
