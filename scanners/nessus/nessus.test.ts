import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { writeSyntheticNessus } from '../../bench/synth/nessus.ts';
import type { Finding } from '../../domain/finding.ts';
import { InputError } from '../../domain/finding.ts';
import { nessusParser } from './index.ts';

const scans = path.resolve(import.meta.dirname, '../../../shared/data/scans');
const fixtures = path.resolve(import.meta.dirname, '../../test/fixtures/scans');
const haveSamples = existsSync(path.join(scans, 'nessus'));

async function parse(file: string, input: Readable = createReadStream(file)): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const f of nessusParser.parse(input, { file })) out.push(f);
  return out;
}

function head(file: string): string {
  return readFileSync(file)
    .subarray(0, 64 * 1024)
    .toString('utf8');
}

describe.skipIf(!haveSamples)('nessus parser on real samples (../shared/data/scans absent: skipped)', () => {
  it('parses a host of informational plugins into info findings', async () => {
    const findings = await parse(path.join(scans, 'nessus/nessus_many_vuln.xml'));
    expect(findings).toHaveLength(7);
    expect(findings.every((f) => f.severity === 'info' && f.kind === 'other')).toBe(true);
    expect(findings.map((f) => f.ruleId)).toEqual([
      '19506',
      '54615',
      '45590',
      '11936',
      '12053',
      '11219',
      '11219',
    ]);
    const first = findings[0];
    expect(first?.asset).toEqual({
      kind: 'host',
      hostname: 'preprod',
      fqdn: 'preprod.boardvantage.net',
      ips: ['12.233.108.201'],
      os: 'CISCO PIX 7.0',
    });
    expect(first?.weaknessKey).toBe('nessus:19506');
    expect(first?.title).toBe('Nessus Scan Information');
    expect(first?.severityReported).toBe('0');
    expect(first?.service).toBeUndefined();
    // HOST_START is "Tue Jun 25 10:32:42 2013" without a zone: not guessed.
    expect(first?.scanTime).toBeUndefined();
    // svc_name "https?" is Nessus being unsure; the "?" is dropped.
    expect(findings[5]?.service).toEqual({ port: 443, protocol: 'tcp', name: 'https' });
    expect(findings[6]?.service).toEqual({ port: 264, protocol: 'tcp', name: 'fw1-topology-download' });
    expect(findings[5]?.evidence).toBe('Port 443/tcp was found to be open');
  });

  it('fans a multi-CVE plugin out into one finding per CVE', async () => {
    const findings = await parse(path.join(scans, 'nessus/nessus_with_cwe-.nessus'));
    expect(findings).toHaveLength(15);
    expect(findings[0]?.weaknessKey).toBe('CVE-2006-1015');
    expect(findings[14]?.weaknessKey).toBe('CVE-2007-5424');
    expect(new Set(findings.map((f) => f.ruleId))).toEqual(new Set(['31649']));
    const f = findings[0];
    expect(f?.title).toBe('PHP 5.x < 5.2 Multiple Vulnerabilities');
    expect(f?.severity).toBe('high');
    expect(f?.kind).toBe('vulnerability');
    expect(f?.asset).toMatchObject({
      fqdn: 'testphp.vulnweb.com',
      hostname: 'testphp',
      ips: ['44.228.249.3'],
    });
    expect(f?.scanTime).toBe('2022-03-23T13:31:51.000Z');
    expect(f?.cwe).toEqual(['CWE-94', 'CWE-119', 'CWE-399']);
    expect(f?.cvss).toEqual([{ version: '2.0', vector: 'AV:N/AC:L/Au:N/C:P/I:P/A:P', score: 7.5 }]);
    expect(f?.service).toEqual({ port: 80, protocol: 'tcp', name: 'www' });
    expect(f?.solution).toBe('Upgrade to PHP version 5.2.0 or later.');
    expect(f?.references).toEqual([
      'http://www.hardened-php.net/advisory_092006.133.html',
      'http://www.php.net/releases/5_2_0.php',
    ]);
    expect(f?.evidence).toMatch(/Installed version : 5\.1\.6/);
    expect(f?.cpe).toEqual(['cpe:/a:php:php']);
    expect(f?.exploitAvailable).toBe(false);
  });

  it('keys a plugin without CVE by its plugin id and keeps v2 and v3 CVSS', async () => {
    const [f, ...rest] = await parse(path.join(scans, 'nessus/issue_6992.nessus'));
    expect(rest).toHaveLength(0);
    expect(f?.weaknessKey).toBe('nessus:142591');
    expect(f?.title).toBe('PHP < 7.3.24 Multiple Vulnerabilities');
    expect(f?.severity).toBe('medium');
    expect(f?.cvss).toEqual([
      { version: '3.0', vector: 'CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H', score: 7.5 },
      { version: '2.0', vector: 'AV:N/AC:L/Au:N/C:N/I:N/A:P', score: 5 },
    ]);
    expect(f?.references).toEqual(['https://www.php.net/ChangeLog-7.php#7.3.24']);
  });

  it('reads Tenable WAS exports as application assets', async () => {
    const findings = await parse(path.join(scans, 'tenable/nessus_was/nessus_was_one_vuln.xml'));
    expect(findings).toHaveLength(1);
    const f = findings[0];
    expect(f?.asset).toEqual({ kind: 'application', url: 'http://google.com/', fqdn: 'google.com' });
    expect(f?.weaknessKey).toBe('nessus:98104');
    expect(f?.title).toBe('Cross-Site Scripting (XSS)');
    expect(f?.severity).toBe('high');
    expect(f?.cwe).toEqual(['CWE-79']);
    expect(f?.cvss).toEqual([
      { version: '3.0', score: 7.1 },
      { version: '2.0', score: 7.5 },
    ]);
    expect(f?.service).toEqual({ port: 80, protocol: 'tcp', name: 'http' });
    expect(f?.evidence).toMatch(
      /^Vulnerability has been detected on URL 'http:\/\/google\.com\/search\.jsp'/,
    );
    expect(await parse(path.join(scans, 'tenable/nessus_was/nessus_was_no_vuln.xml'))).toEqual([]);
  });

  it('detects .nessus files and no other sample format', () => {
    for (const f of [
      'nessus/nessus_many_vuln.xml',
      'nessus/issue_6992.nessus',
      'tenable/nessus_was/nessus_was_no_vuln.xml',
    ]) {
      expect(nessusParser.detect(head(path.join(scans, f)), path.basename(f))).toBe(true);
    }
    for (const f of [
      'nessus/nessus_many_vuln.csv',
      'nmap/nmap_1port.xml',
      'openvas/one_vuln.xml',
      'qualys/Qualys_Sample_Report.xml',
      'qualys_infrascan_webgui/qualys_infrascan_webgui_1.xml',
    ]) {
      expect(nessusParser.detect(head(path.join(scans, f)), path.basename(f))).toBe(false);
    }
  });

  it('refuses another scanner’s XML with a message naming both', async () => {
    await expect(parse(path.join(scans, 'nmap/nmap_1port.xml'))).rejects.toThrow(
      /expected a Nessus \.nessus \(v2\) report \(root element <NessusClientData_v2>\) but the root element is <nmaprun>/,
    );
  });
});

describe('nessus parser on hand-written fixtures', () => {
  it('maps host identity, CVSS v2/v3/v4, EPSS, CWE, exploit and per-CVE fan-out', async () => {
    const findings = await parse(path.join(fixtures, 'nessus-fields.nessus'));
    expect(findings.map((f) => f.weaknessKey)).toEqual([
      'CVE-2023-48795',
      'CVE-2024-4577',
      'CVE-2024-5458',
      'CVE-2024-5585',
      'nessus:19506',
      'CVE-1999-0517',
    ]);
    const terrapin = findings[0];
    expect(terrapin?.asset).toEqual({
      kind: 'host',
      hostname: 'web-01',
      fqdn: 'web-01.example.com',
      ips: ['192.168.0.100'],
      mac: '00:50:56:A1:B2:C3',
      os: 'Linux Kernel 5.15 on Ubuntu 22.04',
    });
    expect(terrapin?.scanTime).toBe('2024-07-02T10:00:00.000Z');
    expect(terrapin?.severity).toBe('medium');
    expect(terrapin?.cvss).toEqual([
      {
        version: '4.0',
        vector: 'CVSS:4.0/AV:N/AC:H/AT:N/PR:N/UI:N/VC:N/VI:H/VA:N/SC:N/SI:N/SA:N',
        score: 5.3,
      },
      { version: '3.0', vector: 'CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:N', score: 5.9 },
      { version: '2.0', vector: 'AV:N/AC:H/Au:N/C:P/I:P/A:N', score: 5.4 },
    ]);
    expect(terrapin?.epss).toEqual({ probability: 0.9637 });
    expect(terrapin?.exploitAvailable).toBe(true);
    expect(terrapin?.cwe).toEqual(['CWE-222']);
    expect(terrapin?.description).toMatch(/^The remote SSH server is vulnerable/);

    const php = findings.slice(1, 4);
    expect(
      php.every(
        (f) => f.ruleId === '200162' && f.severity === 'critical' && f.title.startsWith('PHP 8.2.x < 8.2.20'),
      ),
    ).toBe(true);
    expect(php[0]?.cvss).toEqual([
      { version: '3.1', vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', score: 9.8 },
    ]);
    expect(php[0]?.cwe).toEqual(['CWE-78']);

    const info = findings[4];
    expect(info).toMatchObject({ severity: 'info', kind: 'other', title: 'Nessus Scan Information' });
    expect(info?.solution).toBeUndefined(); // "n/a"

    const snmp = findings[5];
    expect(snmp?.asset).toEqual({ kind: 'host', ips: ['2001:db8::10'] });
    expect(snmp?.service).toEqual({ port: 161, protocol: 'udp', name: 'snmp' });
    expect(snmp?.severity).toBe('high');
  });

  it('refuses an entity-expansion bomb', async () => {
    await expect(parse(path.join(fixtures, 'xml-billion-laughs.xml'))).rejects.toThrow(InputError);
  });

  it('fails a truncated report with an InputError after the complete items', async () => {
    const seen: Finding[] = [];
    const file = path.join(fixtures, 'nessus-truncated.nessus');
    const run = async (): Promise<void> => {
      for await (const f of nessusParser.parse(createReadStream(file), { file })) seen.push(f);
    };
    await expect(run()).rejects.toThrow(
      /nessus-truncated\.nessus, line 13, column \d+: the document ends inside <description>/,
    );
    // Ingest wraps a file in one transaction, so the finding before the break is never committed.
    expect(seen.map((f) => f.weaknessKey)).toEqual(['CVE-2008-5161']);
  });

  it('refuses non-XML input', async () => {
    await expect(parse(path.join(fixtures, 'not-xml.nessus'))).rejects.toThrow(/not an XML document/);
  });

  it('bounds evidence and description, marking the cut', async () => {
    const doc = `<NessusClientData_v2><Report name="r"><ReportHost name="10.0.0.1">
<ReportItem port="0" svc_name="general" protocol="tcp" severity="1" pluginID="1" pluginName="Big">
<description>${'d'.repeat(100_000)}</description><plugin_output>${'o'.repeat(100_000)}</plugin_output>
</ReportItem></ReportHost></Report></NessusClientData_v2>`;
    const [f] = await parse('big.nessus', Readable.from([doc]));
    expect(f?.evidence).toHaveLength(16 * 1024);
    expect(f?.evidence?.endsWith('\n…[truncated]')).toBe(true);
    expect(f?.description).toHaveLength(32 * 1024);
  });
});

describe('synthetic Nessus generator (bench/synth)', () => {
  it('writes a report the parser reads back as exactly N findings over M hosts', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ctem-synth-'));
    try {
      const file = path.join(dir, 'synth.nessus');
      const result = await writeSyntheticNessus(file, { findings: 1001, hosts: 7, maxCvesPerItem: 3 });
      expect(result.findings).toBe(1001);
      expect(result.items).toBeLessThan(1001); // some items carry several CVEs
      const findings = await parse(file);
      expect(findings).toHaveLength(1001);
      expect(new Set(findings.map((f) => f.asset.ips?.[0])).size).toBe(7);
      // Every finding is a distinct exposure (host × weakness).
      expect(new Set(findings.map((f) => `${f.asset.ips?.[0]} ${f.weaknessKey}`)).size).toBe(1001);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
