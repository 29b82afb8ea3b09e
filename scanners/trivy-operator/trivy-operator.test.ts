import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { type Finding, InputError } from '../../domain/finding.ts';
import { trivyOperatorParser } from './index.ts';

const DIR = join(import.meta.dirname, '../../../shared/data/scans/trivy_operator');

async function parse(file: string): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const f of trivyOperatorParser.parse(createReadStream(file), { file })) out.push(f);
  return out;
}

async function parseText(text: string, file = 'reports.json'): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const f of trivyOperatorParser.parse(Readable.from([Buffer.from(text)]), { file })) out.push(f);
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

describe.skipIf(!existsSync(DIR))(
  'Trivy Operator real samples (needs ../shared/data/scans/trivy_operator)',
  () => {
    const file = (name: string): string => join(DIR, name);

    it('VulnerabilityReport: one finding per vulnerability, on the image, tagged with the workload', async () => {
      const findings = await parse(file('vulnerabilityreport_extended.json'));
      expect(findings.map((f) => [f.weaknessKey, f.package?.name])).toEqual([
        ['CVE-2024-0553', 'libgnutls30'],
        ['CVE-2024-22365', 'libpam-modules'],
        ['CVE-2024-22365', 'libpam-modules-bin'],
        ['CVE-2024-22365', 'libpam-runtime'],
        ['CVE-2024-22365', 'libpam0g'],
      ]);
      expect(findings[0]).toMatchObject({
        scanner: 'trivy',
        scanTime: '2024-01-23T13:43:55Z',
        kind: 'vulnerability',
        title: 'gnutls: incomplete fix for CVE-2023-5981',
        severity: 'medium',
        package: { version: '3.6.13-2ubuntu1.9', fixedVersion: '3.6.13-2ubuntu1.10', type: 'ubuntu' },
        cvss: [{ version: '3.1', score: 5.9, source: 'trivy-operator' }],
        references: ['https://avd.aquasec.com/nvd/cve-2024-0553'],
      });
      expect(findings[0]!.asset).toEqual({
        kind: 'image',
        imageRepo: 'docker.io/library/ubuntu',
        imageTag: '20.04',
        imageDigest: 'sha256:f78909c2b360d866b3220655c0b079838258b8891a12ac25fc670f0cbb54229f',
        os: 'ubuntu 20.04',
        tags: ['k8s.namespace=lbc', 'k8s.kind=Pod', 'k8s.name=ubuntu', 'k8s.container=ubuntu'],
      });
      const [single] = await parse(file('vulnerabilityreport_single_vuln.json'));
      expect(single).toMatchObject({
        weaknessKey: 'CVE-2023-23914',
        severity: 'critical',
        asset: { imageRepo: 'docker.io/library/nginx', imageTag: 'alpine' },
        package: { name: 'curl', version: '7.87.0-r1', fixedVersion: '7.87.0-r2' },
      });
    });

    it('ConfigAuditReport: failed checks on the workload, keyed like `trivy k8s` checks', async () => {
      const findings = await parse(file('configauditreport_with_remediation.json'));
      expect(findings).toHaveLength(2);
      expect(findings[0]).toMatchObject({
        weaknessKey: 'trivy:AVD-KSV-0014',
        ruleId: 'AVD-KSV-0014',
        aliases: ['KSV014'],
        kind: 'misconfiguration',
        title: 'Root file system is not read-only',
        severity: 'low',
        solution: "Set 'securityContext.readOnlyRootFilesystem' to true.",
        evidence:
          "Container 'nginx' of Deployment 'nginx-app' should set 'securityContext.readOnlyRootFilesystem' to true",
        asset: {
          kind: 'cloud',
          cloudId: 'k8s:///production/Deployment/nginx-app',
          tags: ['k8s.namespace=production', 'k8s.kind=Deployment', 'k8s.name=nginx-app'],
        },
      });
      expect(findings[1]!.weaknessKey).toBe('trivy:AVD-KSV-0003');
      expect((await parse(file('configauditreport_single_vuln.json')))[0]?.weaknessKey).toBe(
        'trivy:AVD-KSV-0014',
      );
    });

    it('a check without checkID is keyed by its title', async () => {
      const [finding] = await parse(file('configauditreport_missing_checkid.json'));
      expect(finding).toMatchObject({
        weaknessKey: 'trivy:check/Missing checkID test',
        severity: 'medium',
        asset: { cloudId: 'k8s:///default/ReplicaSet/test-deployment-12345' },
      });
      expect(finding!.ruleId).toBeUndefined();
    });

    it('ExposedSecretReport: one finding per secret file in the image', async () => {
      const findings = await parse(file('exposedsecretreport_many.json'));
      expect(findings.map((f) => [f.weaknessKey, f.severity, f.location?.path])).toEqual([
        ['trivy:secret/aws-secret-access-key@root/aws_secret.txt', 'critical', 'root/aws_secret.txt'],
        ['trivy:secret/github-pat@root/github_secret.txt', 'critical', 'root/github_secret.txt'],
      ]);
      expect(findings[0]!.asset).toMatchObject({
        kind: 'image',
        imageRepo: 'docker.io/library/secret',
        imageTag: 'latest',
      });
      expect(findings[0]!.evidence).toBe('AWS_secret_KEY="****************************************"');
      expect(await parse(file('exposedsecretreport_single_vuln.json'))).toHaveLength(1);
    });

    it('a list of mixed reports: 13 failed checks and 5 vulnerabilities', async () => {
      const findings = await parse(file('findings_in_list.json'));
      expect(findings.filter((f) => f.kind === 'misconfiguration')).toHaveLength(13);
      expect(findings.filter((f) => f.kind === 'vulnerability')).toHaveLength(5);
      expect(findings.find((f) => f.weaknessKey === 'trivy:AVD-KSV-0012')?.severity).toBe('medium');
    });

    it('reports without findings parse to nothing', async () => {
      for (const name of [
        'configauditreport_no_vuln.json',
        'exposedsecretreport_no_vuln.json',
        'vulnerabilityreport_no_vuln.json',
      ]) {
        expect(await parse(file(name))).toEqual([]);
      }
    });

    it('ClusterComplianceReport is refused with what to export instead', async () => {
      for (const name of ['clustercompliancereport.json', 'compliance_severity.json']) {
        const err = await inputError(() => parse(file(name)));
        expect(err.message).toBe(
          `${file(name)}: ClusterComplianceReport is not supported: it summarizes or inventories rather than reporting findings; export VulnerabilityReport, ConfigAuditReport or ExposedSecretReport resources instead (kubectl get vulnerabilityreports -A -o json)`,
        );
      }
    });

    it('JSON that is not a Kubernetes resource is refused', async () => {
      const err = await inputError(() => parseText('{"report": {"vulnerabilities": []}}'));
      expect(err.message).toBe(
        'reports.json: this JSON has no "kind", so it is not a Trivy Operator resource; export it with kubectl get <kind> -o json or pass the right --format',
      );
      expect(await parseText('{"apiVersion": "v1", "kind": "List", "items": []}')).toEqual([]);
    });

    it('a kubectl List with the report before its metadata still names the workload', async () => {
      const report = JSON.parse(readFileSync(file('configauditreport_single_vuln.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      const { report: body, ...rest } = report;
      // "report" first, then kind and metadata: the checks are held until the resource ends.
      const reordered = { report: body, ...rest };
      const findings = await parseText(
        JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [reordered, reordered] }),
      );
      expect(findings).toHaveLength(2);
      expect(findings[0]).toMatchObject({
        weaknessKey: 'trivy:AVD-KSV-0014',
        asset: { cloudId: 'k8s:///default/ReplicaSet/nginx-deployment-965685897' },
      });
    });
  },
);
