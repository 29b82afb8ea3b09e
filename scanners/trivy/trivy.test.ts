import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Finding, InputError } from '../../domain/finding.ts';
import { writeTrivyReport } from '../../bench/synth/trivy.ts';
import { parseReport } from '../registry.ts';
import { trivyParser } from './index.ts';

const DIR = join(import.meta.dirname, '../../../shared/data/scans/trivy');
const FIXTURES = join(import.meta.dirname, '../../test/fixtures/scans');

async function parse(file: string): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const f of trivyParser.parse(createReadStream(file), { file })) out.push(f);
  return out;
}

async function parseText(text: string, file = 'report.json'): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const f of trivyParser.parse(Readable.from([Buffer.from(text)]), { file })) out.push(f);
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

const byKey = (findings: Finding[], key: string): Finding => {
  const found = findings.find((f) => f.weaknessKey === key);
  if (!found) throw new Error(`no finding ${key} among ${findings.map((f) => f.weaknessKey).join(', ')}`);
  return found;
};

describe.skipIf(!existsSync(DIR))('Trivy real samples (needs ../shared/data/scans/trivy)', () => {
  const file = (name: string): string => join(DIR, name);

  it('schema 2 image report: every status but not_affected is a finding, on the image named by its OS target', async () => {
    const findings = await parse(file('all_statuses.json'));
    // 8 vulnerabilities, one of them (CVE-2019-18276, bash) "not_affected".
    expect(findings).toHaveLength(7);
    expect(findings.map((f) => f.weaknessKey)).not.toContain('CVE-2019-18276');
    const apt = byKey(findings, 'CVE-2011-3374');
    expect(apt).toMatchObject({
      scanner: 'trivy',
      scanTime: '2024-01-15T08:58:29.82753744Z',
      kind: 'vulnerability',
      ruleId: 'CVE-2011-3374',
      severity: 'low',
      severityReported: 'LOW',
      package: { name: 'apt', version: '1.8.2.3', type: 'debian' },
      cwe: ['CWE-347'],
    });
    // ArtifactName is "" and RepoTags [""]: the OS result's target names the image.
    expect(apt.asset).toEqual({
      kind: 'image',
      imageRepo: 'docker.io/noppaknopsta/example-app',
      imageTag: 'main-159',
      imageDigest: 'sha256:22ae3921bdaac434bb4cb92dbbc209e46b1f3f70e9fa0b5fbbb43ce7d452c72d',
      os: 'debian 10.13',
    });
    expect(apt.cvss).toEqual([
      { version: '3.1', vector: 'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:L/A:N', score: 3.7, source: 'nvd' },
      { version: '2.0', vector: 'AV:N/AC:M/Au:N/C:N/I:P/A:N', score: 4.3, source: 'nvd' },
    ]);
    expect(apt.references?.[0]).toBe('https://avd.aquasec.com/nvd/cve-2011-3374');
    // A Debian tracker id is not a CVE: scanner-scoped key.
    expect(byKey(findings, 'trivy:TEMP-0841856-B18BAF').package?.name).toBe('bash');
    // "fixed" means a fix exists; the package here is still vulnerable.
    expect(byKey(findings, 'CVE-2018-1000876').evidence).toContain('status fixed');
  });

  it('CVSS v4 and vendor ids: the severity source first, GHSA as alias, ReportID as scan id', async () => {
    const findings = await parse(file('cvssv4_severity_source.json'));
    expect(findings).toHaveLength(3);
    const tomcat = byKey(findings, 'CVE-2025-66614');
    expect(tomcat).toMatchObject({
      scanId: '019c8e79-cf0f-75cc-8c6e-b806652074c5',
      scanTime: '2026-02-24T07:07:53.487381Z',
      aliases: ['GHSA-fpj8-gq4v-p354'],
      severity: 'medium',
      asset: { kind: 'repository', url: 'lib/catalina.jar' },
      package: {
        name: 'org.apache.tomcat:tomcat-catalina',
        version: '9.0.109',
        fixedVersion: '11.0.14, 10.1.49, 9.0.112',
        type: 'jar',
        path: 'catalina.jar',
        purl: 'pkg:maven/org.apache.tomcat/tomcat-catalina@9.0.109',
      },
    });
    expect(tomcat.cvss?.[0]).toEqual({
      version: '4.0',
      vector: 'CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N',
      score: 6.3,
      source: 'ghsa',
    });
    expect(tomcat.cvss?.[1]).toMatchObject({ version: '3.1', score: 5.3, source: 'redhat' });
  });

  it('SBOM scans are applications; v2-only CVSS is kept as 2.0', async () => {
    const [finding] = await parse(file('issue_9263.json'));
    expect(finding).toMatchObject({
      weaknessKey: 'CVE-2013-7445',
      severity: 'high',
      asset: { kind: 'application', url: 'sbom.json' },
      package: { name: 'linux-libc-dev', version: '6.1.55-1', type: 'pip', path: 'requirements.txt' },
    });
    expect(finding!.cvss).toEqual([
      { version: '2.0', vector: 'AV:N/AC:L/Au:N/C:N/I:N/A:C', score: 7.8, source: 'nvd' },
      { version: '2.0', vector: 'AV:N/AC:M/Au:N/C:N/I:N/A:P', score: 4.3, source: 'redhat' },
    ]);
    // The reported severity word is kept verbatim; the same CVE is CRITICAL in severity_prio.json.
    expect((await parse(file('severity_prio.json'))).map((f) => f.severityReported)).toEqual([
      'LOW',
      'CRITICAL',
    ]);
    expect(await parse(file('issue_9092.json'))).toHaveLength(1);
    expect(await parse(file('cvss_severity_source.json'))).toHaveLength(2);
  });

  it('filesystem scan with misconfigurations and secrets: one key per check and file', async () => {
    const findings = await parse(file('misconfigurations_and_secrets.json'));
    expect(findings.map((f) => [f.kind, f.weaknessKey])).toEqual([
      ['vulnerability', 'CVE-2021-33503'],
      ['vulnerability', 'CVE-2021-28363'],
      ['misconfiguration', 'trivy:AVD-DS-0002@Dockerfile'],
      ['secret', 'trivy:secret/github-pat@Dockerfile'],
      ['secret', 'trivy:secret/github-pat@secret.txt'],
    ]);
    expect(findings.every((f) => f.asset.kind === 'repository' && f.asset.url === '.')).toBe(true);
    expect(byKey(findings, 'trivy:AVD-DS-0002@Dockerfile')).toMatchObject({
      ruleId: 'AVD-DS-0002',
      aliases: ['DS002'],
      title: "Image user should not be 'root'",
      severity: 'high',
      solution: "Add 'USER <non root user name>' line to the Dockerfile",
      evidence: 'Specify at least 1 USER command in Dockerfile with non-root user as argument',
      location: { path: 'Dockerfile' },
    });
    expect(byKey(findings, 'trivy:secret/github-pat@Dockerfile')).toMatchObject({
      severity: 'critical',
      location: { path: 'Dockerfile', startLine: 24, endLine: 24 },
      evidence: 'ENV GITHUB_PAT=*****',
    });
    expect(byKey(findings, 'CVE-2021-33503').package).toEqual({
      name: 'urllib3',
      version: '1.26.3',
      fixedVersion: '1.26.5',
      type: 'pip',
      path: 'requirements.txt',
    });
  });

  it('image report with several targets: OS packages and jars on the same image', async () => {
    const findings = await parse(file('scheme_2_many_vulns.json'));
    expect(findings.map((f) => f.weaknessKey)).toEqual([
      'CVE-2020-15999',
      'CVE-2020-28196',
      'CVE-2019-12900',
      'CVE-2018-11771',
      'CVE-2018-1324',
    ]);
    for (const f of findings) {
      expect(f.asset).toEqual({
        kind: 'image',
        imageRepo: 'docker.io/library/teamdojo',
        imageTag: 'latest',
        os: 'alpine 3.9.4',
      });
    }
    expect(byKey(findings, 'CVE-2019-12900')).toMatchObject({
      severity: 'critical',
      package: { name: 'libbz2', fixedVersion: '1.0.6-r7', path: 'app/libs/libbz2-1.0.6-r6', type: 'alpine' },
    });
  });

  it('Kubernetes report (Vulnerabilities/Misconfigurations layout): images for packages, resources for checks', async () => {
    const findings = await parse(file('kubernetes_fabricated_subset.json'));
    expect(findings).toHaveLength(13);
    const vulns = findings.filter((f) => f.kind === 'vulnerability');
    const checks = findings.filter((f) => f.kind === 'misconfiguration');
    expect(vulns).toHaveLength(7);
    expect(checks).toHaveLength(6);
    const follower = vulns.filter((f) => f.asset.imageRepo === 'gcr.io/google_samples/gb-redis-follower');
    expect(follower).toHaveLength(3);
    expect(follower[0]!.asset).toEqual({
      kind: 'image',
      imageRepo: 'gcr.io/google_samples/gb-redis-follower',
      imageTag: 'v2',
      os: 'debian 10.4',
      tags: [
        'k8s.cluster=arn:aws:eks:us-east-1:576036489467:cluster/monitoring-test-cluster',
        'k8s.namespace=default',
        'k8s.kind=Deployment',
        'k8s.name=redis-follower',
      ],
    });
    expect(follower[0]).toMatchObject({ weaknessKey: 'CVE-2020-27350', aliases: ['DSA-4808-1'] });
    expect(
      vulns.filter((f) => f.asset.imageRepo === 'docker.io/library/redis' && f.asset.imageTag === '6.0.5'),
    ).toHaveLength(4);
    const privilege = checks.find((f) => f.weaknessKey === 'trivy:AVD-KSV-0001');
    expect(privilege).toMatchObject({
      severity: 'medium',
      aliases: ['KSV001'],
      asset: {
        kind: 'cloud',
        cloudId:
          'k8s://arn%3Aaws%3Aeks%3Aus-east-1%3A576036489467%3Acluster%2Fmonitoring-test-cluster/default/Deployment/redis-follower',
      },
    });
    // The resource is the asset: the key needs no file suffix and there is no file location.
    expect(privilege!.location).toBeUndefined();
    expect(privilege!.evidence).toContain("Container 'follower' of Deployment 'redis-follower' should set");
  });

  it('Kubernetes report (Resources layout): every failed check of every resource', async () => {
    const findings = await parse(file('issue_10991.json'));
    // 11 resources with one failed check, then 14 and 12 failed checks.
    expect(findings).toHaveLength(37);
    expect(findings[0]).toMatchObject({
      weaknessKey: 'trivy:AVD-KSV-0116',
      title: 'Runs with a root primary or supplementary GID',
      severity: 'low',
      asset: { kind: 'cloud', cloudId: 'k8s:///default/Service/kubernetes' },
    });
    const vault = findings.filter((f) => f.asset.cloudId === 'k8s:///default/StatefulSet/vault');
    expect(vault).toHaveLength(12);
    expect(vault.find((f) => f.weaknessKey === 'trivy:AVD-KSV-0104')?.severity).toBe('medium');
  });

  it('Kubernetes report with internal duplicates keeps both observations (ingest de-duplicates)', async () => {
    const findings = await parse(file('kubernetes_fabricated_internal_duplicates.json'));
    expect(findings).toHaveLength(13);
    const apt = findings.filter((f) => f.weaknessKey === 'CVE-2020-27350');
    expect(apt).toHaveLength(2);
    expect(apt[0]).toEqual(apt[1]);
    expect(await parse(file('kubernetes_fabricated_internal_duplicates_subset.json'))).toHaveLength(5);
  });

  it('legacy list format: OS targets are images, lock files applications, id-less entries skipped', async () => {
    const findings = await parse(file('legacy_trivy_mix.json'));
    expect(findings).toHaveLength(6);
    expect(byKey(findings, 'CVE-2018-16487')).toMatchObject({
      asset: { kind: 'application', url: 'node-app/package-lock.json' },
      package: { name: 'lodash', version: '4.17.4', fixedVersion: '>=4.17.11', type: 'npm' },
      severity: 'high',
    });
    expect(byKey(findings, 'CVE-2018-16840').asset).toEqual({
      kind: 'image',
      imageRepo: 'docker.io/library/trivy-ci-test',
      os: 'alpine 3.7.1',
    });
  });

  it('reports without findings parse to nothing', async () => {
    expect(await parse(file('scheme_2_no_vuln.json'))).toEqual([]);
    expect(await parse(file('legacy_no_vuln.json'))).toEqual([]);
    // Licenses are compliance data, not exposures.
    expect(await parse(file('license_scheme.json'))).toEqual([]);
  });

  it('a re-serialized report with sorted keys (Target after the lists) gives the same findings', async () => {
    const sortKeys = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(sortKeys);
      if (value && typeof value === 'object') {
        return Object.fromEntries(
          Object.keys(value)
            .sort()
            .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
        );
      }
      return value;
    };
    for (const name of [
      'misconfigurations_and_secrets.json',
      'kubernetes_fabricated_subset.json',
      'all_statuses.json',
    ]) {
      const original = await parse(file(name));
      const sorted = JSON.stringify(sortKeys(JSON.parse(readFileSync(file(name), 'utf8'))));
      // Sorted keys put "Misconfigurations" and "Secrets" before "Target": those are held, then released.
      const reparsed = await parseText(sorted);
      expect(new Set(reparsed.map((f) => JSON.stringify(sortKeys(f))))).toEqual(
        new Set(original.map((f) => JSON.stringify(sortKeys(f)))),
      );
    }
  });
});

describe('Trivy hostile and wrong input', () => {
  it('a truncated report fails with the line where it ends', async () => {
    const file = join(FIXTURES, 'trivy-truncated.json.part');
    const err = await inputError(() => parse(file));
    expect(err.message).toMatch(
      /trivy-truncated\.json\.part, line 29, column 25: the file ends inside the value at Results\[0\]\.Vulnerabilities\[1\] \(started at line 27\); the report is truncated/,
    );
  });

  it('Results that is not a list is the wrong shape', async () => {
    const err = await inputError(() => parse(join(FIXTURES, 'trivy-results-object.json')));
    expect(err.message).toMatch(
      /trivy-results-object\.json, line 5, column 14: expected "Results" to be an array but found an object; is this the right --format\?$/,
    );
  });

  it('a raw control character inside a string is located', async () => {
    const err = await inputError(() => parse(join(FIXTURES, 'trivy-bad-string.json')));
    expect(err.message).toMatch(
      /line \d+, column \d+: invalid JSON in Results\[0\]\.Vulnerabilities\[0\]: expected no raw control characters/,
    );
  });

  it('a 20 MB description is refused; a 40 MB string nobody reads is skipped (both gzipped)', async () => {
    const huge = await inputError(async () => {
      for await (const _ of parseReport(join(FIXTURES, 'trivy-huge-string.json.gz'))) {
        // drain
      }
    });
    expect(huge.message).toContain('the value at Results[0].Vulnerabilities[0] is larger than 8 MiB');
    const findings: Finding[] = [];
    for await (const f of parseReport(join(FIXTURES, 'trivy-huge-skipped.json.gz'))) findings.push(f);
    expect(findings.map((f) => f.weaknessKey)).toEqual(['CVE-2023-0464', 'CVE-2023-0465']);
    expect(findings[0]!.asset).toMatchObject({
      imageRepo: 'registry.example.com/shop/api',
      imageTag: '2.3.1',
    });
  });

  it('another tool’s JSON and unsupported schema versions are refused with a sentence', async () => {
    const grype = await inputError(() => parseText('{"matches": [], "source": {}}', 'grype.json'));
    expect(grype.message).toBe(
      'grype.json: this JSON has no "SchemaVersion", "Results" or "ClusterName", so it is not a Trivy report; check the file or pass the right --format',
    );
    const v3 = await inputError(() => parseText('{"SchemaVersion": 3, "Results": []}'));
    expect(v3.message).toBe(
      'report.json, line 1, column 19: Trivy SchemaVersion 3 is not supported; export the report with a Trivy that writes schema 2 (0.20 or later)',
    );
    const item = await inputError(() =>
      parseText('{"SchemaVersion": 2, "Results": [{"Target": "x", "Vulnerabilities": ["CVE-1"]}]}'),
    );
    expect(item.message).toContain(
      'expected "Results[0].Vulnerabilities[0]" to be an object describing a vulnerability but found a string',
    );
  });
});

describe('Trivy large reports stream', () => {
  // Created when the tests run, not when they are collected, so a filtered run leaves nothing behind.
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'trivy-large-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a 20 MB synthesized report (past the whole-parse limit) gives every vulnerability', async () => {
    const path = join(dir, 'large.json');
    const written = await writeTrivyReport(path, { vulnerabilities: 9000, targets: 4, seed: 7 });
    expect(written.bytes).toBeGreaterThan(16 * 1024 * 1024);
    let count = 0;
    const targets = new Set<string | undefined>();
    for await (const f of parseReport(path)) {
      count++;
      targets.add(f.package?.type);
      expect(f.asset.imageRepo).toBe('registry.example.com/shop/checkout');
    }
    expect(count).toBe(9000);
    expect(targets).toEqual(new Set(['debian', 'npm']));
  });
});
