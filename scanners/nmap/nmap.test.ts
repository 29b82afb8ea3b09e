import { createReadStream, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../domain/finding.ts';
import { InputError } from '../../domain/finding.ts';
import { nmapParser } from './index.ts';

const scans = path.resolve(import.meta.dirname, '../../../shared/data/scans');
const fixtures = path.resolve(import.meta.dirname, '../../test/fixtures/scans');
const haveSamples = existsSync(path.join(scans, 'nmap'));

async function parse(file: string): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const f of nmapParser.parse(createReadStream(file), { file })) out.push(f);
  return out;
}

function head(file: string): string {
  return readFileSync(file)
    .subarray(0, 64 * 1024)
    .toString('utf8');
}

describe.skipIf(!haveSamples)('nmap parser on real samples (../shared/data/scans absent: skipped)', () => {
  it('turns the one open port into an open-port finding', async () => {
    const findings = await parse(path.join(scans, 'nmap/nmap_1port.xml'));
    expect(findings).toEqual([
      {
        scanner: 'nmap',
        asset: { kind: 'host', hostname: 'localhost', fqdn: 'localhost.localdomain', ips: ['127.0.0.1'] },
        service: { port: 5432, protocol: 'tcp', name: 'postgresql' },
        scanTime: '2014-03-29T14:46:56.000Z',
        weaknessKey: 'nmap:open-port/tcp/5432',
        kind: 'open-port',
        title: 'Open port 5432/tcp (postgresql)',
        severity: 'info',
        evidence: '5432/tcp open (postgresql)',
      },
    ]);
  });

  it('gives no findings for a host without open ports', async () => {
    expect(await parse(path.join(scans, 'nmap/nmap_0port.xml'))).toEqual([]);
  });

  it('reads several hosts, prefers the scanned name, skips filtered ports', async () => {
    const findings = await parse(path.join(scans, 'nmap/issue12411.xml'));
    expect(findings.map((f) => `${f.asset.fqdn} ${f.weaknessKey}`)).toEqual([
      'google.com nmap:open-port/tcp/80',
      'google.com nmap:open-port/tcp/443',
      'amazon.com nmap:open-port/tcp/80',
      'amazon.com nmap:open-port/tcp/443',
    ]);
    expect(findings[0]?.asset).toEqual({
      kind: 'host',
      hostname: 'google',
      fqdn: 'google.com',
      ips: ['172.217.18.238'],
    });
    expect(findings[2]?.asset.ips).toEqual(['54.239.28.85']);
  });

  it('turns vulners CVE entries into CVE findings on the port', async () => {
    const findings = await parse(path.join(scans, 'nmap/nmap_script_vulners.xml'));
    expect(findings.map((f) => f.weaknessKey)).toEqual([
      'nmap:open-port/tcp/5022',
      'CVE-2018-15919',
      'CVE-2017-15906',
    ]);
    const [port, cve] = findings;
    expect(port?.service).toEqual({
      port: 5022,
      protocol: 'tcp',
      name: 'ssh',
      product: 'OpenSSH',
      version: '7.4',
    });
    expect(port?.cpe).toEqual(['cpe:/a:openbsd:openssh:7.4']);
    expect(port?.evidence).toBe('5022/tcp open (ssh)\nservice: OpenSSH 7.4 protocol 2.0');
    expect(cve).toMatchObject({
      ruleId: 'vulners',
      kind: 'vulnerability',
      title: 'CVE-2018-15919 in OpenSSH 7.4',
      severity: 'medium',
      severityReported: '5',
      exploitAvailable: false,
      references: ['https://vulners.com/cve/CVE-2018-15919'],
    });
    expect(cve?.asset).toEqual({ kind: 'host', ips: ['192.168.0.1'] });
    expect(cve?.scanTime).toBe('2020-02-17T09:07:30.000Z');
  });

  it('detects Nmap XML and no other sample format', () => {
    for (const f of ['nmap/nmap_1port.xml', 'nmap/nmap_script_vulners.xml', 'nmap/issue12411.xml']) {
      expect(nmapParser.detect(head(path.join(scans, f)), path.basename(f))).toBe(true);
    }
    for (const f of ['nessus/nessus_many_vuln.xml', 'openvas/one_vuln.xml', 'qualys/empty.xml']) {
      expect(nmapParser.detect(head(path.join(scans, f)), path.basename(f))).toBe(false);
    }
  });
});

describe('nmap parser on hand-written fixtures', () => {
  it('skips down hosts and non-open ports, reads IPv6, MAC, OS, exploit references', async () => {
    const findings = await parse(path.join(fixtures, 'nmap-hosts.xml'));
    expect(findings.map((f) => f.weaknessKey)).toEqual([
      'nmap:open-port/tcp/80',
      'CVE-2021-41773',
      'CVE-2021-42013',
    ]);
    const [port, traversal, rce] = findings;
    expect(port?.asset).toEqual({
      kind: 'host',
      hostname: 'app-02',
      fqdn: 'app-02.example.net',
      ips: ['10.0.0.2', 'fe80::2'],
      mac: '00:0C:29:AA:BB:CC',
      os: 'Linux 5.0 - 5.4',
    });
    expect(port?.scanTime).toBe('2024-07-02T10:00:02.000Z');
    expect(port?.evidence).toBe(
      '80/tcp open (http)\nservice: Apache httpd 2.4.49 (Unix)\nvulners exploit references: EDB-ID:50383',
    );
    expect(traversal).toMatchObject({
      severity: 'high',
      exploitAvailable: true,
      title: 'CVE-2021-41773 in Apache httpd 2.4.49',
    });
    expect(rce).toMatchObject({ severity: 'critical', exploitAvailable: false });
  });

  it('refuses an XXE attempt', async () => {
    await expect(parse(path.join(fixtures, 'xml-xxe.xml'))).rejects.toThrow(InputError);
  });
});
