import { createReadStream, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../domain/finding.ts';
import { InputError } from '../../domain/finding.ts';
import { nessusCsvParser } from './index.ts';

const scans = path.resolve(import.meta.dirname, '../../../shared/data/scans');
const haveSamples = existsSync(path.join(scans, 'nessus'));

async function parse(file: string, input: Readable = createReadStream(file)): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const f of nessusCsvParser.parse(input, { file })) out.push(f);
  return out;
}

function head(file: string): string {
  return readFileSync(file)
    .subarray(0, 64 * 1024)
    .toString('utf8');
}

describe.skipIf(!haveSamples)(
  'nessus-csv parser on real samples (../shared/data/scans absent: skipped)',
  () => {
    it('reads a Tenable.sc export, skipping its empty ",,,," rows', async () => {
      const findings = await parse(path.join(scans, 'nessus/nessus_many_vuln.csv'));
      // 4 data rows among 529 empty ones; plugin 65821 lists two CVEs.
      expect(findings.map((f) => `${f.ruleId} ${f.weaknessKey}`)).toEqual([
        '35291 CVE-2004-2761',
        '51192 nessus:51192',
        '57582 nessus:57582',
        '65821 CVE-2013-2566',
        '65821 CVE-2015-2808',
      ]);
      const f = findings[0];
      expect(f).toMatchObject({
        scanner: 'nessus',
        title: 'SSL Certificate Signed Using Weak Hashing Algorithm',
        severity: 'medium',
        severityReported: 'Medium',
        kind: 'vulnerability',
        service: { port: 443, protocol: 'tcp' },
        solution: 'Contact the Certificate Authority to have the SSL certificate reissued.',
        exploitAvailable: true,
        cwe: ['CWE-310'],
        cpe: ['cpe:/a:ietf:md5', 'cpe:/a:ietf:x.509_certificate'],
      });
      expect(f?.asset).toEqual({ kind: 'host', ips: ['10.1.1.1'] });
      expect(f?.cvss).toEqual([
        { version: '3.0', vector: 'CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N/E:P/RL:O/RC:C', score: 7.5 },
        { version: '2.0', vector: 'AV:N/AC:L/Au:N/C:N/I:P/A:N/E:POC/RL:OF/RC:C', score: 5 },
      ]);
      expect(f?.references?.[0]).toBe('https://tools.ietf.org/html/rfc3279');
      expect(f?.references).toHaveLength(6);
      // Tenable.sc's "Plugin Output:" label is not part of the evidence.
      expect(f?.evidence).toMatch(/^The following certificates were part of the certificate chain/);
    });

    it('reads Nessus "default" and "all" exports alike', async () => {
      for (const name of ['nessus_many_vuln2-default.csv', 'nessus_many_vuln2-all.csv']) {
        const findings = await parse(path.join(scans, 'nessus', name));
        expect(findings).toHaveLength(30);
        expect(findings.filter((f) => f.severity === 'info')).toHaveLength(29);
        const tls10 = findings.find((f) => f.ruleId === '104743');
        expect(tls10).toMatchObject({
          weaknessKey: 'nessus:104743',
          severity: 'medium',
          title: 'TLS Version 1.0 Protocol Detection',
        });
        expect(tls10?.asset).toEqual({ kind: 'host', ips: ['52.208.101.182'] });
        // A CVE on an informational ("None") plugin is still a CVE finding.
        expect(findings.find((f) => f.ruleId === '95631')).toMatchObject({
          weaknessKey: 'CVE-2004-2761',
          severity: 'info',
          kind: 'vulnerability',
        });
        expect(findings.find((f) => f.ruleId === '10287')?.service).toBeUndefined(); // port 0
      }
    });

    it('uses "Risk" over "Risk Factor" and drops scores outside 0–10 instead of guessing', async () => {
      const findings = await parse(path.join(scans, 'nessus/nessus-template.csv'));
      expect(findings.map((f) => `${f.weaknessKey} ${f.severity}`)).toEqual([
        'CVE-2016-2183 high',
        'CVE-2003-1567 medium',
        'CVE-2023-48795 medium',
        'CVE-2024-4577 critical',
        'CVE-2024-23443 medium',
      ]);
      // This template wrote 7.5 as "75" and EPSS 0.3833 as "3833".
      expect(findings.every((f) => f.cvss === undefined && f.epss === undefined)).toBe(true);
      expect(findings[1]?.cwe).toEqual(['CWE-16', 'CWE-200']);
    });

    it('reads Tenable.io exports with MAC and NetBIOS names', async () => {
      const findings = await parse(path.join(scans, 'tenable/issue_9612.csv'));
      expect(findings).toHaveLength(3);
      expect(findings[0]).toMatchObject({
        weaknessKey: 'nessus:73756',
        severity: 'critical',
        service: { port: 1433, protocol: 'tcp' },
        solution: 'Upgrade to a version of Microsoft SQL Server that is currently supported.',
        exploitAvailable: false,
      });
      expect(findings[0]?.asset).toEqual({
        kind: 'host',
        hostname: 'ecodarchdb',
        ips: ['2.3.4.5'],
        mac: '9C:8E:99:1B:8B:DC',
      });
      const sweet32 = await parse(path.join(scans, 'tenable/issue_11102.csv'));
      expect(
        sweet32.map((f) => `${f.asset.ips?.[0]}:${f.service?.port} ${f.weaknessKey} ${f.severity}`),
      ).toEqual([
        '1.2.3.4:443 CVE-2016-2183 high',
        '2.3.4.5:443 CVE-2016-2183 high',
        '1.2.3.4:8443 CVE-2016-2183 high',
      ]);
      expect(sweet32[0]?.solution).toMatch(/^Reconfigure the affected application/); // "Steps to Remediate"
    });

    it('reads Tenable WAS exports as application findings', async () => {
      const findings = await parse(path.join(scans, 'tenable/nessus_was/nessus_was_many_vuln.csv'));
      expect(findings.map((f) => `${f.weaknessKey} ${f.severity}`)).toEqual([
        'nessus:98104 high',
        'nessus:112491 info',
        'nessus:98060 low',
        'nessus:115540 low',
        'nessus:112551 low',
      ]);
      expect(findings[0]?.asset).toEqual({
        kind: 'application',
        url: 'http://google.com/',
        fqdn: 'google.com',
      });
      expect(findings[0]?.cvss).toEqual([
        { version: '3.0', score: 7.1 },
        { version: '2.0', score: 7.5 },
      ]);
      expect(await parse(path.join(scans, 'tenable/nessus_was/nessus_was_no_vuln.csv'))).toEqual([]);
      expect(await parse(path.join(scans, 'tenable/nessus_was/nessus_was_one_vuln.csv'))).toHaveLength(1);
    });

    it('detects Nessus CSV exports and not OpenVAS or Qualys ones', () => {
      for (const f of [
        'nessus/nessus_many_vuln.csv',
        'nessus/nessus-template.csv',
        'tenable/issue_9612.csv',
        'tenable/nessus_was/nessus_was_no_vuln.csv',
      ]) {
        expect(nessusCsvParser.detect(head(path.join(scans, f)), path.basename(f))).toBe(true);
      }
      for (const f of [
        'openvas/many_vuln.csv',
        'qualys/empty.csv',
        'qualys_hacker_guardian/one_finding.csv',
        'nessus/nessus_many_vuln.xml',
      ]) {
        expect(nessusCsvParser.detect(head(path.join(scans, f)), path.basename(f))).toBe(false);
      }
    });

    it('refuses another scanner’s CSV, naming what it expected', async () => {
      await expect(parse(path.join(scans, 'openvas/one_vuln.csv'))).rejects.toThrow(
        /one_vuln\.csv: no header row recognized in the first 1 row\(s\); expected a Nessus\/Tenable CSV export/,
      );
    });
  },
);

describe('nessus-csv parser on inline input', () => {
  it('names the line of a row without plugin id', async () => {
    const csv =
      'Plugin ID,CVE,Risk,Host,Protocol,Port,Name\n19506,,None,10.0.0.1,tcp,0,Scan Info\n,,High,10.0.0.2,tcp,22,Broken\n';
    await expect(parse('inline.csv', Readable.from([csv]))).rejects.toThrow(
      /inline\.csv, line 3: row has no numeric "Plugin ID"\/"Plugin" value/,
    );
  });

  it('reports unterminated quotes as malformed CSV with a line', async () => {
    const csv = 'Plugin ID,CVE,Risk,Host,Protocol,Port,Name\n19506,,None,10.0.0.1,tcp,0,"Scan Info\n';
    const err = await parse('bad.csv', Readable.from([csv])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).message).toMatch(/^bad\.csv, line \d+: malformed CSV/);
  });

  it('says an empty file is empty', async () => {
    await expect(parse('empty.csv', Readable.from([]))).rejects.toThrow(/empty\.csv: the file is empty/);
  });
});
