import { createReadStream, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../domain/finding.ts';
import { qualysParser } from './index.ts';
import { SpillQueue } from './spill.ts';

const scans = path.resolve(import.meta.dirname, '../../../shared/data/scans');
const fixtures = path.resolve(import.meta.dirname, '../../test/fixtures/scans');
const haveSamples = existsSync(path.join(scans, 'qualys'));

async function parse(file: string): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const f of qualysParser.parse(createReadStream(file), { file })) out.push(f);
  return out;
}

function head(file: string): string {
  return readFileSync(file)
    .subarray(0, 64 * 1024)
    .toString('utf8');
}

function count<T extends string>(values: T[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

describe.skipIf(!haveSamples)('qualys parser on real samples (../shared/data/scans absent: skipped)', () => {
  it('joins Asset Data Report detections with the glossary that follows them', async () => {
    const findings = await parse(path.join(scans, 'qualys/Qualys_Sample_Report.xml'));
    // 301 VULN_INFO, none Fixed; QIDs with CVEs fan out (counted independently from the XML).
    expect(findings).toHaveLength(353);
    expect(count(findings.map((f) => f.severity))).toEqual({
      info: 217,
      low: 42,
      medium: 57,
      high: 18,
      critical: 19,
    });

    const first = findings[0];
    expect(first).toMatchObject({
      weaknessKey: 'qualys:6',
      ruleId: '6',
      title: 'DNS Host Name',
      severity: 'info',
      kind: 'other',
      scanTime: '2019-07-31T21:57:48.000Z',
      evidence: 'IP address\tHost name\n64.41.200.243\tdemo13.s02.sjc01.qualys.com',
    });
    expect(first?.asset).toEqual({
      kind: 'host',
      hostname: 'demo13',
      fqdn: 'demo13.s02.sjc01.qualys.com',
      ips: ['64.41.200.243'],
      os: 'Ubuntu / Tiny Core Linux / Linux 2.6.x',
    });

    const onFirstHost = findings.filter((f) => f.asset.ips?.[0] === '64.41.200.243');
    const ssh = onFirstHost.find((f) => f.ruleId === '38738');
    expect(ssh).toMatchObject({
      weaknessKey: 'qualys:38738',
      title: 'SSH Server Public Key Too Small',
      severity: 'low',
      severityReported: '2',
      service: { port: 22, protocol: 'tcp', name: 'ssh' },
      evidence: 'Algorithm\tLength\nssh-dss\t1024 bits',
    });
    const amd = onFirstHost.filter((f) => f.ruleId === '370876');
    expect(amd[0]?.weaknessKey).toBe('CVE-2018-8930');
    expect(amd[0]).toMatchObject({
      severity: 'high',
      kind: 'vulnerability',
      scanTime: '2021-04-19T02:35:28.000Z',
    });
    expect(amd[0]?.cvss).toEqual([
      { version: '3.1', vector: 'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:H/A:H', score: 9 },
      { version: '2.0', vector: 'AV:N/AC:M/Au:N/C:C/I:C/A:C', score: 9.3 },
    ]);

    const libxml = findings.filter((f) => f.ruleId === '11803');
    expect(libxml).toHaveLength(16);
    expect(libxml.every((f) => f.asset.ips?.[0] === '64.41.200.250' && f.severity === 'medium')).toBe(true);
    expect(libxml[0]?.exploitAvailable).toBe(true);
    expect(libxml[0]?.description).toMatch(/^libxml2 is prone to multiple vulnerabilities:-\n/);
    expect(libxml[0]?.description).not.toMatch(/<BR>/);
  });

  it('parses an Asset Data Report without hosts to zero findings', async () => {
    expect(await parse(path.join(scans, 'qualys/empty.xml'))).toEqual([]);
  });

  it('reads the scan report layout, with the scan id and date from its header', async () => {
    const java = await parse(path.join(scans, 'qualys_infrascan_webgui/qualys_infrascan_webgui_1.xml'));
    expect(java).toHaveLength(19);
    expect(java[0]).toMatchObject({
      weaknessKey: 'CVE-2014-6601',
      ruleId: '123168',
      title: 'Oracle Java SE Critical Patch Update - January 2015',
      severity: 'critical',
      scanId: 'scan/1222134912.63524',
      scanTime: '2019-04-02T10:14:53.000Z',
      description: 'some diagnosis\n\nSome impact',
      solution: 'some solution',
      evidence: 'some output',
      exploitAvailable: true,
    });
    expect(java[0]?.asset).toEqual({
      kind: 'host',
      hostname: 'host1',
      fqdn: 'host1.example.com',
      ips: ['10.1.10.1'],
      os: 'Ubuntu 11',
    });
    expect(java[0]?.cvss).toEqual([
      { version: '3.1', score: 3.4 },
      { version: '2.0', score: 10 },
    ]);

    const [udp, ...rest] = await parse(
      path.join(scans, 'qualys_infrascan_webgui/qualys_infrascan_webgui_3.xml'),
    );
    expect(rest).toHaveLength(0);
    expect(udp).toMatchObject({ weaknessKey: 'CVE-2002-0510', ruleId: '82024', severity: 'low' });
    // "No registered hostname" is a label, not a name.
    expect(udp?.asset).toEqual({ kind: 'host', ips: ['10.1.10.1'], os: 'Linux 2.6' });
    expect(udp?.cvss).toEqual([{ version: '2.0', score: 5 }]);

    expect(await parse(path.join(scans, 'qualys_infrascan_webgui/qualys_infrascan_webgui_0.xml'))).toEqual(
      [],
    );
  });

  it('refuses WAS web-application reports with a clear message', async () => {
    await expect(parse(path.join(scans, 'qualys_webapp/qualys_webapp_one_vuln.xml'))).rejects.toThrow(
      /Qualys WAS \(web application scan\) reports are not supported/,
    );
  });

  it('detects Qualys VM XML and nothing else', () => {
    for (const f of [
      'qualys/Qualys_Sample_Report.xml',
      'qualys/empty.xml',
      'qualys_infrascan_webgui/qualys_infrascan_webgui_0.xml',
      'qualys_infrascan_webgui/qualys_infrascan_webgui_3.xml',
    ]) {
      expect(qualysParser.detect(head(path.join(scans, f)), path.basename(f))).toBe(true);
    }
    for (const f of [
      'qualys_webapp/qualys_webapp_no_vuln.xml',
      'qualys/empty.csv',
      'nessus/nessus_many_vuln.xml',
      'nmap/nmap_1port.xml',
      'openvas/one_vuln.xml',
    ]) {
      expect(qualysParser.detect(head(path.join(scans, f)), path.basename(f))).toBe(false);
    }
  });
});

describe('qualys parser on hand-written fixtures', () => {
  it('reads host detection output, skipping Fixed detections', async () => {
    const findings = await parse(path.join(fixtures, 'qualys-host-detection.xml'));
    expect(findings.map((f) => `${f.asset.ips?.[0]} ${f.weaknessKey} ${f.severity} ${f.kind}`)).toEqual([
      '10.20.30.40 qualys:38739 medium vulnerability',
      '10.20.30.40 qualys:45017 info other',
      '10.20.30.41 qualys:91847 high vulnerability',
    ]);
    expect(findings[0]?.asset).toEqual({
      kind: 'host',
      hostname: 'db-01',
      fqdn: 'db-01.corp.example.com',
      ips: ['10.20.30.40'],
      os: 'Ubuntu Linux 22.04',
    });
    expect(findings[0]).toMatchObject({
      title: 'Qualys QID 38739',
      service: { port: 22, protocol: 'tcp' },
      evidence: 'Type\tName\ncipher\t3des-cbc',
      scanTime: '2024-07-01T22:00:00.000Z',
    });
    expect(findings[2]?.asset).toEqual({ kind: 'host', ips: ['10.20.30.41'] });
  });

  it('reports a Qualys API error response as such', async () => {
    await expect(parse(path.join(fixtures, 'qualys-api-error.xml'))).rejects.toThrow(
      /this is a Qualys API error response, not a report: 1920 Please wait until your previous API request completes/,
    );
  });
});

describe('SpillQueue', () => {
  it('keeps order whether it stays in memory or spills to disk', async () => {
    for (const limit of [1_000_000, 100]) {
      const q = new SpillQueue<{ n: number; s: string }>(limit);
      for (let n = 0; n < 500; n++) await q.push({ n, s: `item ${n}` });
      expect(q.spilled).toBe(limit === 100);
      const out: number[] = [];
      for await (const item of q.drain()) out.push(item.n);
      await q.dispose();
      expect(out).toEqual([...Array(500).keys()]);
    }
  });
});
