import { createReadStream, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../domain/finding.ts';
import { openvasCsvParser } from './index.ts';

const scans = path.resolve(import.meta.dirname, '../../../shared/data/scans');
const haveSamples = existsSync(path.join(scans, 'openvas'));

async function parse(file: string, input: Readable = createReadStream(file)): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const f of openvasCsvParser.parse(input, { file })) out.push(f);
  return out;
}

function head(file: string): string {
  return readFileSync(file)
    .subarray(0, 64 * 1024)
    .toString('utf8');
}

describe.skipIf(!haveSamples)(
  'openvas-csv parser on real samples (../shared/data/scans absent: skipped)',
  () => {
    it('reads results with and without ports, one finding per CVE', async () => {
      const findings = await parse(path.join(scans, 'openvas/many_vuln.csv'));
      expect(findings.map((f) => `${f.weaknessKey} ${f.severity} ${f.service?.port ?? '-'}`)).toEqual([
        'openvas:1.3.6.1.4.1.25623.1.0.80091 low -',
        'openvas:1.3.6.1.4.1.25623.1.0.106223 medium 9200',
        'CVE-2011-3389 medium 9200',
        'CVE-2015-0204 medium 9200',
        // CVSS 9.0 is critical although the export's label says "High".
        'openvas:1.3.6.1.4.1.25623.1.0.103240 critical 9200',
      ]);
      expect(findings[0]?.asset).toEqual({ kind: 'host', hostname: 'logsrv', ips: ['192.168.118.212'] });
      expect(findings[0]).toMatchObject({
        title: 'TCP timestamps',
        severityReported: 'Low',
        scanTime: '2021-05-26T20:50:18.000Z',
      });
      expect(findings[4]?.severityReported).toBe('High');
    });

    it('maps the single-result export exactly', async () => {
      const [f, ...rest] = await parse(path.join(scans, 'openvas/one_vuln.csv'));
      expect(rest).toHaveLength(0);
      expect(f).toMatchObject({
        scanner: 'openvas',
        weaknessKey: 'openvas:1.3.6.1.4.1.25623.1.0.105611',
        ruleId: '1.3.6.1.4.1.25623.1.0.105611',
        title: 'SSH Weak Encryption Algorithms Supported',
        severity: 'medium',
        service: { port: 22, protocol: 'tcp' },
        scanTime: '2021-02-25T20:01:27.000Z',
      });
      // Summary, then the "Vulnerability Insight" column.
      expect(f?.description).toMatch(
        /^The remote SSH server is configured to allow weak encryption algorithms\.\n\nThe `arcfour` cipher is the Arcfour stream cipher/,
      );
      expect(f?.asset).toEqual({ kind: 'host', ips: ['10.0.0.8'] });
      expect(f?.evidence).toMatch(/^The following weak client-to-server encryption algorithms are supported/);
    });

    it('reads the GVM 22 export with QoD and EPSS columns', async () => {
      const findings = await parse(path.join(scans, 'openvas/report_detail_v2.csv'));
      expect(findings).toHaveLength(93);
      expect(findings[0]).toMatchObject({
        weaknessKey: 'CVE-2025-49659',
        severity: 'critical',
        severityReported: 'High',
        service: { port: 42, protocol: 'tcp' },
        scanTime: '2025-08-22T14:27:22.000Z',
      });
      expect(findings[0]?.asset).toEqual({ kind: 'host', hostname: 'server99', ips: ['10.99.99.99'] });
      // The EPSS columns belong to one unnamed CVE of the 93: not attached to any.
      expect(findings.some((f) => f.epss !== undefined)).toBe(false);
    });

    it('keeps Log results as info and parses an empty export to nothing', async () => {
      const findings = await parse(path.join(scans, 'openvas/report_using_openVAS.csv'));
      expect(findings).toHaveLength(13);
      expect(findings.filter((f) => f.severity === 'info' && f.kind === 'other')).toHaveLength(12);
      expect(await parse(path.join(scans, 'openvas/no_vuln.csv'))).toEqual([]);
    });

    it('detects OpenVAS CSV and nothing else', () => {
      for (const f of ['openvas/many_vuln.csv', 'openvas/no_vuln.csv', 'openvas/report_detail_v2.csv']) {
        expect(openvasCsvParser.detect(head(path.join(scans, f)), path.basename(f))).toBe(true);
      }
      for (const f of ['nessus/nessus_many_vuln.csv', 'qualys/empty.csv', 'openvas/one_vuln.xml']) {
        expect(openvasCsvParser.detect(head(path.join(scans, f)), path.basename(f))).toBe(false);
      }
    });
  },
);

describe('openvas-csv parser on inline input', () => {
  it('attaches the EPSS columns when the row has exactly one CVE, and skips false positives', async () => {
    const csv = [
      'IP,Hostname,Port,Port Protocol,CVSS,Severity,NVT Name,NVT OID,CVEs,Timestamp,Max Severity EPSS score,Max Severity EPSS percentile',
      '10.0.0.9,,443,tcp,7.5,High,OpenSSL DoS,1.3.6.1.4.1.25623.1.0.1,CVE-2023-0286,2024-01-01T00:00:00Z,0.0091,0.82',
      '10.0.0.9,,443,tcp,7.5,False Positive,Overridden,1.3.6.1.4.1.25623.1.0.2,CVE-2023-0215,2024-01-01T00:00:00Z,,',
    ].join('\n');
    const findings = await parse('inline.csv', Readable.from([csv]));
    expect(findings).toHaveLength(1);
    expect(findings[0]?.epss).toEqual({ probability: 0.0091, percentile: 0.82 });
  });
});
