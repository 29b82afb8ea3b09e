import { createReadStream, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../domain/finding.ts';
import { openvasParser, parseNvtTags } from './index.ts';

const scans = path.resolve(import.meta.dirname, '../../../shared/data/scans');
const fixtures = path.resolve(import.meta.dirname, '../../test/fixtures/scans');
const haveSamples = existsSync(path.join(scans, 'openvas'));

async function parse(file: string): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const f of openvasParser.parse(createReadStream(file), { file })) out.push(f);
  return out;
}

function head(file: string): string {
  return readFileSync(file)
    .subarray(0, 64 * 1024)
    .toString('utf8');
}

describe.skipIf(!haveSamples)('openvas parser on real samples (../shared/data/scans absent: skipped)', () => {
  it('fans one result out into one finding per CVE reference', async () => {
    const findings = await parse(path.join(scans, 'openvas/one_vuln.xml'));
    expect(findings).toHaveLength(12);
    expect(findings.map((f) => f.weaknessKey).slice(0, 3)).toEqual([
      'CVE-2023-4573',
      'CVE-2023-4574',
      'CVE-2023-4575',
    ]);
    expect(findings[11]?.weaknessKey).toBe('CVE-2023-4584');
    const f = findings[0];
    expect(f?.ruleId).toBe('1.3.6.1.4.1.25623.1.0.832260');
    expect(f?.title).toBe('Mozilla Firefox Security Update (mfsa_2023-32_2023-36) - Windows');
    expect(f?.asset).toEqual({ kind: 'host', ips: ['10.0.101.2'] });
    // severity 10.0 is a CVSS score: critical, although GVM's label is "High".
    expect(f?.severity).toBe('critical');
    expect(f?.severityReported).toBe('High');
    expect(f?.service).toBeUndefined(); // general/tcp
    expect(f?.scanId).toBe('0b63ae21-1a37-474a-b436-2f6561d36990');
    expect(f?.scanTime).toBe('2023-09-28T14:48:02.000Z');
    expect(f?.description).toMatch(
      /^Mozilla Firefox is prone to multiple vulnerabilities\.\n\nMultiple flaws exist due to,/,
    );
    expect(f?.solution).toBe(
      'Upgrade to version 117 or later,\nPlease see the references for more information.',
    );
    expect(f?.evidence).toMatch(/^Installed version: 116\.0\.3\nFixed version:\s+117/);
    expect(f?.references).toEqual(['https://www.mozilla.org/en-US/security/advisories/mfsa2023-34/']);
    expect(f?.cvss).toBeUndefined(); // no vector in this report, and a bare score has no version
  });

  it('reads CVSS v3 severities, the hostname and per-CVE EPSS from a GVM 22 report', async () => {
    const findings = await parse(path.join(scans, 'openvas/report_detail_v2.xml'));
    expect(findings).toHaveLength(93);
    const f = findings[0];
    expect(f?.weaknessKey).toBe('CVE-2025-49659');
    expect(f?.asset).toEqual({ kind: 'host', hostname: 'server99', ips: ['10.99.99.99'] });
    expect(f?.service).toEqual({ port: 42, protocol: 'tcp' });
    expect(f?.cvss).toEqual([
      { version: '3.1', vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', score: 9.8, source: 'nvd' },
    ]);
    expect(f?.solution).toBe(
      'The vendor has released updates. Please see\n  the references for more information.',
    );
    expect(f?.scanTime).toBe('2025-08-22T13:01:38.000Z');
    expect(f?.scanId).toBe('88bbda4b-25db-43cf-896d-b90686833b29');
    expect(f?.epss).toBeUndefined();
    const byKey = new Map(findings.map((x) => [x.weaknessKey, x]));
    expect(byKey.get('CVE-2025-47981')?.epss).toEqual({ probability: 0.00143, percentile: 0.35177 });
    expect(byKey.get('CVE-2025-49716')?.epss).toEqual({ probability: 0.09023, percentile: 0.92284 });
    expect(findings.filter((x) => x.epss !== undefined)).toHaveLength(2);
  });

  it('parses a report without results to zero findings', async () => {
    expect(await parse(path.join(scans, 'openvas/no_vuln.xml'))).toEqual([]);
  });

  it('detects OpenVAS XML and no other sample format', () => {
    for (const f of ['openvas/one_vuln.xml', 'openvas/no_vuln.xml', 'openvas/report_detail_v2.xml']) {
      expect(openvasParser.detect(head(path.join(scans, f)), path.basename(f))).toBe(true);
    }
    for (const f of [
      'openvas/one_vuln.csv',
      'nessus/nessus_many_vuln.xml',
      'nmap/nmap_1port.xml',
      'qualys/empty.xml',
    ]) {
      expect(openvasParser.detect(head(path.join(scans, f)), path.basename(f))).toBe(false);
    }
  });

  it('refuses another scanner’s XML', async () => {
    await expect(parse(path.join(scans, 'qualys/empty.xml'))).rejects.toThrow(
      /root element is <ASSET_DATA_REPORT>/,
    );
  });
});

describe('openvas parser on hand-written fixtures', () => {
  it('skips false-positive overrides, keeps Log results as info, reads the GMP wrapper', async () => {
    const findings = await parse(path.join(fixtures, 'openvas-overrides.xml'));
    expect(findings.map((f) => f.weaknessKey)).toEqual([
      'CVE-2013-2566',
      'CVE-2015-2808',
      'openvas:1.3.6.1.4.1.25623.1.0.105937',
    ]);
    const rc4 = findings[0];
    expect(rc4?.asset).toEqual({
      kind: 'host',
      hostname: 'mail',
      fqdn: 'mail.example.org',
      ips: ['10.1.1.7'],
    });
    expect(rc4?.severity).toBe('medium');
    expect(rc4?.cvss).toEqual([{ version: '2.0', vector: 'AV:N/AC:L/Au:N/C:P/I:N/A:N', score: 5 }]);
    expect(rc4?.service).toEqual({ port: 25, protocol: 'tcp' });
    expect(rc4?.references).toEqual(['https://www.rc4nomore.com/']);
    expect(rc4?.scanId).toBe('6c1f2e9a-0000-4000-8000-000000000001');
    expect(rc4?.scanTime).toBe('2024-07-02T08:00:00.000Z');
    expect(findings[2]).toMatchObject({ severity: 'info', kind: 'other', severityReported: 'Log' });
  });

  it('splits NVT tags on "|" only where a new key starts', () => {
    const tags = parseNvtTags('cvss_base_vector=AV:N/AC:L|summary=a | b\nc|solution_type=VendorFix');
    expect(tags.get('summary')).toBe('a | b\nc');
    expect(tags.get('solution_type')).toBe('VendorFix');
  });
});
