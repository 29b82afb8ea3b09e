import { createReadStream, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../domain/finding.ts';
import { qualysCsvParser } from './index.ts';

const scans = path.resolve(import.meta.dirname, '../../../shared/data/scans');
const haveSamples = existsSync(path.join(scans, 'qualys_vmdr'));

async function parse(file: string): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const f of qualysCsvParser.parse(createReadStream(file), { file })) out.push(f);
  return out;
}

function head(file: string): string {
  return readFileSync(file)
    .subarray(0, 64 * 1024)
    .toString('utf8');
}

describe.skipIf(!haveSamples)(
  'qualys-csv parser on real samples (../shared/data/scans absent: skipped)',
  () => {
    it('reads a VMDR QID export after its metadata rows, skipping FIXED detections', async () => {
      const findings = await parse(path.join(scans, 'qualys_vmdr/many_vulns_qid.csv'));
      // Five rows; QID 100003 is FIXED.
      expect(findings.map((f) => `${f.weaknessKey} ${f.severity}`)).toEqual([
        'qualys:100001 info',
        'qualys:100002 low',
        'qualys:100004 high',
        'qualys:100005 critical',
      ]);
      expect(findings[0]).toMatchObject({
        title: 'Information Disclosure Vulnerability',
        kind: 'vulnerability',
        severityReported: '1',
        service: { port: 80, protocol: 'tcp' },
        description: 'May disclose server information.',
        solution: 'Review information disclosure.',
        evidence: 'Server header exposed',
      });
      expect(findings[0]?.asset).toEqual({
        kind: 'host',
        hostname: 'webserver01',
        ips: ['10.0.0.10'],
        os: 'Ubuntu 22.04',
      });
      expect(findings[3]?.asset).toEqual({
        kind: 'host',
        hostname: 'dbserver01',
        ips: ['2001:db8::1'],
        os: 'Windows Server 2016',
      });
    });

    it('reads the CVE-first VMDR export, with or without metadata rows', async () => {
      for (const name of ['one_vuln_cve.csv', 'one_vuln_no_metadata_cve.csv']) {
        const [f, ...rest] = await parse(path.join(scans, 'qualys_vmdr', name));
        expect(rest).toHaveLength(0);
        expect(f).toMatchObject({
          weaknessKey: 'CVE-2021-44228',
          ruleId: '730143',
          title: 'Apache Log4j Remote Code Execution (Log4Shell)',
          severity: 'critical',
          service: { port: 8080, protocol: 'tcp' },
          description: 'Critical RCE via JNDI injection.',
          solution: 'Upgrade Log4j to version 2.17.0 or later.',
          evidence: 'Log4j 2.14.1 detected',
        });
        expect(f?.asset).toEqual({
          kind: 'host',
          hostname: 'javaapp01',
          ips: ['10.1.0.50'],
          os: 'Ubuntu 20.04',
        });
        expect(f?.cvss).toEqual([
          { version: '3.1', score: 10 },
          { version: '2.0', score: 9.3 },
        ]);
      }
    });

    it('parses exports without detections to zero findings', async () => {
      for (const f of [
        'qualys_vmdr/no_vuln_cve.csv',
        'qualys_vmdr/no_vuln_no_metadata_cve.csv',
        'qualys_vmdr/no_vuln_qid.csv',
        'qualys/empty.csv',
        'qualys_hacker_guardian/zero_finding.csv',
      ]) {
        expect(await parse(path.join(scans, f))).toEqual([]);
      }
    });

    it('reads PCI and HackerGuardian exports, with their letter or word severities', async () => {
      const [pci] = await parse(path.join(scans, 'qualys/monthly_pci_issue6932.csv'));
      expect(pci).toMatchObject({
        weaknessKey: 'qualys:86476',
        title: 'Web Server Stopped Responding',
        severity: 'medium',
        severityReported: 'Medium',
        service: { port: 80, protocol: 'tcp' },
        evidence:
          'The web server did not respond for 4 consecutive HTTP requests.  After these  the service was still unable to connect to the web server 2 minutes later.',
      });
      expect(pci?.asset).toEqual({
        kind: 'host',
        hostname: 'abv',
        fqdn: 'abv.xyw.com.fj',
        ips: ['192.168.0.1'],
        os: 'Linux 2.x',
      });
      expect(pci?.description).toMatch(
        /^The Web server stopped responding to 3 consecutive connection attempts/,
      );
      expect(pci?.description).not.toMatch(/</);
      expect(pci?.cvss).toBeUndefined(); // CVSS_BASE does not say which CVSS version

      const hg = await parse(path.join(scans, 'qualys_hacker_guardian/one_finding.csv'));
      expect(
        hg.map(
          (f) => `${f.asset.fqdn} ${f.service?.port} ${f.weaknessKey} ${f.severity} ${f.severityReported}`,
        ),
      ).toEqual(['help.example.co 80 qualys:150059 medium M', 'help.example.co 443 qualys:150059 medium M']);
    });

    it('detects Qualys CSV exports and nothing else', () => {
      for (const f of [
        'qualys/empty.csv',
        'qualys/monthly_pci_issue6932.csv',
        'qualys_vmdr/many_vulns_qid.csv',
        'qualys_vmdr/one_vuln_no_metadata_cve.csv',
        'qualys_hacker_guardian/zero_finding.csv',
      ]) {
        expect(qualysCsvParser.detect(head(path.join(scans, f)), path.basename(f))).toBe(true);
      }
      for (const f of [
        'nessus/nessus_many_vuln.csv',
        'openvas/many_vuln.csv',
        'qualys/Qualys_Sample_Report.xml',
      ]) {
        expect(qualysCsvParser.detect(head(path.join(scans, f)), path.basename(f))).toBe(false);
      }
    });
  },
);
