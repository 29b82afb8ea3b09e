import { createReadStream, createWriteStream, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Finding, InputError } from '../../domain/finding.ts';
import { grypeParser } from './index.ts';

const DIR = join(import.meta.dirname, '../../../shared/data/scans/anchore_grype');
const FIXTURES = join(import.meta.dirname, '../../test/fixtures/scans');

async function parse(file: string): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const f of grypeParser.parse(createReadStream(file), { file })) out.push(f);
  return out;
}

async function parseText(text: string, file = 'grype.json'): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const f of grypeParser.parse(Readable.from([Buffer.from(text)]), { file })) out.push(f);
  return out;
}

async function inputError(run: () => Promise<unknown>): Promise<InputError> {
  try {
    await run();
  } catch (err) {
    if (err instanceof InputError) return err;
    throw err;
  }
  throw new Error('expected an InputError');
}

describe.skipIf(!existsSync(DIR))('Grype real samples (needs ../shared/data/scans/anchore_grype)', () => {
  const file = (name: string): string => join(DIR, name);

  it('image scan: every match, on the image from source (written after the matches)', async () => {
    const findings = await parse(file('check_all_fields.json'));
    expect(findings).toHaveLength(6);
    const image = {
      kind: 'image',
      imageRepo: 'docker.io/library/vulnerable-image',
      imageTag: 'latest',
      // repoDigests is empty: the image id identifies it.
      imageDigest: 'sha256:ce9898fd214aef9c994a42624b09056bdce3ff4a8e3f68dc242d967b80fcbeee',
      os: 'debian 10',
    };
    for (const f of findings) expect(f.asset).toEqual(image);
    expect(findings[0]).toMatchObject({
      scanner: 'grype',
      weaknessKey: 'CVE-2004-0971',
      ruleId: 'CVE-2004-0971',
      kind: 'vulnerability',
      title: 'CVE-2004-0971 in libgssapi-krb5-2 1.17-3+deb10u3',
      // Debian's "Negligible" is below low.
      severity: 'info',
      severityReported: 'Negligible',
      package: {
        name: 'libgssapi-krb5-2',
        version: '1.17-3+deb10u3',
        type: 'deb',
        path: '/var/lib/dpkg/status',
        purl: 'pkg:deb/debian/libgssapi-krb5-2@1.17-3+deb10u3?arch=amd64',
      },
    });
    // Grype lists ten CPE guesses for this package; the first eight are kept.
    expect(findings[0]!.cpe).toHaveLength(8);
    expect(findings[0]!.cpe?.[0]).toBe(
      'cpe:2.3:a:libgssapi-krb5-2:libgssapi-krb5-2:1.17-3+deb10u3:*:*:*:*:*:*:*',
    );
    // The CVSS comes from the related NVD record.
    expect(findings[0]!.cvss).toEqual([
      { version: '2.0', vector: 'AV:L/AC:L/Au:N/C:N/I:P/A:N', score: 2.1, source: 'nvd' },
    ]);
    expect(findings[0]!.evidence).toContain('fix state not-fixed');
  });

  it('GHSA matches are keyed by their related CVE, the GHSA kept as alias', async () => {
    const findings = await parse(file('check_all_fields.json'));
    const django = findings.filter((f) => f.package?.name === 'Django');
    expect(django).toHaveLength(2);
    expect(django[0]).toMatchObject({
      weaknessKey: 'CVE-2021-44420',
      aliases: ['GHSA-v6rh-hp5x-86rv'],
      ruleId: 'GHSA-v6rh-hp5x-86rv',
      title: 'CVE-2021-44420 in Django 3.2.9',
      severity: 'high',
      solution: 'Upgrade Django to a fixed version: 3.2.10.',
      package: { fixedVersion: '3.2.10', type: 'python', purl: 'pkg:pypi/Django@3.2.9' },
    });
    expect(django[0]!.cvss?.map((c) => [c.version, c.score])).toEqual([
      ['2.0', 7.5],
      ['3.1', 7.3],
    ]);
    // Two related CVEs: the first is the key, the other an alias.
    const [two] = await parse(file('check_all_fields_different_ids_fabricated.json'));
    expect(two).toMatchObject({
      weaknessKey: 'CVE-2021-1234',
      aliases: ['GHSA-v6rh-hp5x-86rv', 'CVE-2021-5678'],
    });
    // No related CVE: the GHSA itself, which Trivy would report the same way.
    const [none] = await parse(file('check_all_fields_no_ids_fabricated.json'));
    expect(none!.weaknessKey).toBe('GHSA-v6rh-hp5x-86rv');
    expect(none!.aliases).toBeUndefined();
    const [one] = await parse(file('check_all_fields_with_ids_fabricated.json'));
    expect(one).toMatchObject({ weaknessKey: 'CVE-2021-44420', aliases: ['GHSA-v6rh-hp5x-86rv'] });
  });

  it('fix states, scan time, and NUL bytes stripped from versions', async () => {
    const [available] = await parse(file('fix_available.json'));
    expect(available).toMatchObject({
      weaknessKey: 'CVE-2009-3882',
      scanTime: '2024-04-10T11:05:22.636338786Z',
      severity: 'high',
      // The report has "17.0.10+7\u0000-J-ms8m"; PostgreSQL text cannot hold NUL.
      package: {
        name: 'java',
        version: '17.0.10+7-J-ms8m',
        fixedVersion: '1.2.3',
        type: 'binary',
        path: '/opt/java/openjdk/bin/java',
      },
      asset: { kind: 'image', imageRepo: 'docker.io/library/redacted', os: 'ubuntu 20.04' },
    });
    const [missing] = await parse(file('fix_not_available.json'));
    expect(missing!.package?.fixedVersion).toBeUndefined();
    expect(missing!.solution).toBeUndefined();
    expect(await parse(file('issue_9942.json'))).toHaveLength(1);
  });

  it('directory scans are repositories; the same CVE at two paths is two observations', async () => {
    const findings = await parse(file('many_vulns4.json'));
    expect(findings).toHaveLength(9);
    for (const f of findings) expect(f.asset).toEqual({ kind: 'repository', url: '.' });
    expect(findings.find((f) => f.ruleId === 'GHSA-8v27-2fg9-7h62')).toMatchObject({
      weaknessKey: 'CVE-2021-23334',
      severity: 'critical',
      package: { name: 'static-eval', version: '2.1.0', path: 'components/yarn.lock' },
    });
    const paths = await parse(file('same_cve_different_paths.json'));
    expect(paths.map((f) => [f.weaknessKey, f.package?.path])).toEqual([
      ['CVE-2021-33574', '/usr/lib/x86_64-linux-gnu/libc.so.6'],
      ['CVE-2021-33574', '/lib/x86_64-linux-gnu/libc.so.6'],
    ]);
  });

  it('EPSS is read per CVE; a report without source falls back to its file name as asset', async () => {
    const [finding] = await parse(file('anchore_grype_epss_problem.json'));
    expect(finding).toMatchObject({
      weaknessKey: 'CVE-2023-39325',
      aliases: ['GHSA-4374-p667-p6c8'],
      epss: { probability: 0.00163, percentile: 0.37957 },
      asset: { kind: 'application', url: 'anchore_grype_epss_problem.json' },
      package: { name: 'golang.org/x/net', version: 'v0.9.0', fixedVersion: '0.17.0', type: 'go-module' },
    });
  });

  it('a 1509-match report keeps every match and its severity', async () => {
    const findings = await parse(file('many_vulns.json'));
    expect(findings).toHaveLength(1509);
    const count = (s: string): number => findings.filter((f) => f.severityReported === s).length;
    expect([count('High'), count('Medium'), count('Low'), count('Negligible'), count('Unknown')]).toEqual([
      32, 613, 107, 681, 76,
    ]);
    expect(findings.filter((f) => f.severity === 'info')).toHaveLength(681);
    expect(findings[0]).toMatchObject({
      weaknessKey: 'CVE-2011-3389',
      asset: { imageRepo: 'docker.io/library/python', imageTag: '3.6', os: 'debian 10' },
      package: { name: 'libgnutls-openssl27', version: '3.6.7-4+deb10u5' },
    });
  });

  it('no matches, no findings', async () => {
    expect(await parse(file('no_vuln.json'))).toEqual([]);
  });
});

describe('Grype wrong input', () => {
  it('matches that is not a list is the wrong shape', async () => {
    const err = await inputError(() => parse(join(FIXTURES, 'grype-matches-object.json')));
    expect(err.message).toMatch(
      /grype-matches-object\.json, line 2, column 14: expected "matches" to be an array but found an object/,
    );
  });

  it('a match without vulnerability id, or a JSON with no matches, is not Grype', async () => {
    const bad = await inputError(() => parseText('{"matches": [{"artifact": {"name": "x"}}]}'));
    expect(bad.message).toBe(
      'grype.json, line 1, column 14: expected "matches[0]" to be a Grype match with vulnerability.id; is this the right --format?',
    );
    const other = await inputError(() => parseText('{"SchemaVersion": 2, "Results": []}'));
    expect(other.message).toBe(
      'grype.json: this JSON has no "matches" list, so it is not a Grype report; check the file or pass the right --format',
    );
  });
});

describe('Grype large reports', () => {
  // Created when the tests run, not when they are collected, so a filtered run leaves nothing behind.
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'grype-large-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('25,000 matches before "source" are held on disk, then all come out on the right image', async () => {
    const path = join(dir, 'large.json');
    const out = createWriteStream(path);
    out.write('{\n "matches": [\n');
    const n = 25_000;
    for (let i = 0; i < n; i++) {
      const match = {
        vulnerability: {
          id: `CVE-2024-${10000 + i}`,
          severity: 'Medium',
          description: 'x'.repeat(600),
          fix: { versions: [], state: 'not-fixed' },
        },
        relatedVulnerabilities: [],
        artifact: {
          name: `pkg${i % 100}`,
          version: '1.0',
          type: 'deb',
          locations: [{ path: '/var/lib/dpkg/status' }],
        },
      };
      if (!out.write(`  ${JSON.stringify(match)}${i + 1 < n ? ',' : ''}\n`)) await once(out, 'drain');
    }
    out.end(
      ' ],\n "source": {"type": "image", "target": {"userInput": "shop/api:9", "imageID": "sha256:' +
        'c'.repeat(64) +
        '"}},\n "distro": {"name": "debian", "version": "12"}\n}\n',
    );
    await once(out, 'finish');
    let count = 0;
    for await (const f of grypeParser.parse(createReadStream(path), { file: path })) {
      expect(f.asset).toMatchObject({ imageRepo: 'docker.io/shop/api', imageTag: '9', os: 'debian 12' });
      count++;
    }
    expect(count).toBe(n);
  });
});
