import { describe, expect, it } from 'vitest';
import { canonicalIp, canonicalMac, dnsName, hostAsset } from './asset.ts';
import { cvssFromScoreAndVector, cvssRef, cvssScore, probability } from './cvss.ts';
import { cveIds, cweId, urls } from './ids.ts';
import { severityFromLabel, severityFromNessus, severityFromQualys, severityFromScore } from './severity.ts';
import { bounded, htmlToText, meaningful } from './text.ts';
import { isoFromEpochSeconds, isoFromZoned } from './time.ts';
import { perCve } from './weakness.ts';

describe('host identity', () => {
  it('canonicalizes IP addresses', () => {
    expect(canonicalIp(' 10.0.0.1 ')).toBe('10.0.0.1');
    expect(canonicalIp('010.000.001.001')).toBe('10.0.1.1');
    expect(canonicalIp('2001:DB8:0:0:0::1')).toBe('2001:db8::1');
    expect(canonicalIp('[fe80::1%eth0]')).toBe('fe80::1');
    expect(canonicalIp('::ffff:192.0.2.1')).toBe('::ffff:192.0.2.1');
    expect(canonicalIp('300.1.1.1')).toBeUndefined();
    expect(canonicalIp('web-01')).toBeUndefined();
  });

  it('canonicalizes MACs and DNS names', () => {
    expect(canonicalMac('00-0c-29-aa-bb-cc')).toBe('00:0C:29:AA:BB:CC');
    expect(canonicalMac('000c.29aa.bbcc')).toBe('00:0C:29:AA:BB:CC');
    expect(canonicalMac('00:0c:29')).toBeUndefined();
    expect(dnsName('WEB-01.Example.com.')).toBe('web-01.example.com');
    expect(dnsName('No registered hostname')).toBeUndefined();
    expect(dnsName('10.0.0.1')).toBeUndefined();
    expect(dnsName('010.0.0.1')).toBeUndefined();
  });

  it('prefers a given short name, else the FQDN label; IP-looking names become addresses', () => {
    expect(hostAsset({ names: ['db.corp.example', '10.1.1.1', 'DB-PRIMARY'], ips: ['10.1.1.1'] })).toEqual({
      kind: 'host',
      hostname: 'db-primary',
      fqdn: 'db.corp.example',
      ips: ['10.1.1.1'],
    });
    expect(hostAsset({ names: ['web.example.org'], mac: 'zz', os: '  ' })).toEqual({
      kind: 'host',
      hostname: 'web',
      fqdn: 'web.example.org',
    });
  });
});

describe('severity', () => {
  it('maps CVSS scores on the qualitative scale', () => {
    expect([0, 0.1, 3.9, 4, 6.9, 7, 8.9, 9, 10].map(severityFromScore)).toEqual([
      'info',
      'low',
      'low',
      'medium',
      'medium',
      'high',
      'high',
      'critical',
      'critical',
    ]);
    expect(severityFromScore(undefined)).toBe('unknown');
  });

  it('maps scanner words and levels', () => {
    expect(severityFromLabel('Log')).toBe('info');
    expect(severityFromLabel(' HIGH ')).toBe('high');
    expect(severityFromLabel('M')).toBe('medium');
    expect(severityFromLabel('sometimes')).toBeUndefined();
    expect([0, 1, 2, 3, 4, 5].map(severityFromNessus)).toEqual([
      'info',
      'low',
      'medium',
      'high',
      'critical',
      undefined,
    ]);
    expect([1, 2, 3, 4, 5, 0].map(severityFromQualys)).toEqual([
      'info',
      'low',
      'medium',
      'high',
      'critical',
      undefined,
    ]);
  });
});

describe('CVSS', () => {
  it('reads the version from the vector, prefixing bare v3 vectors', () => {
    expect(cvssRef('CVSS2#AV:N/AC:L/Au:N/C:P/I:P/A:P', 7.5, undefined)).toEqual({
      version: '2.0',
      vector: 'AV:N/AC:L/Au:N/C:P/I:P/A:P',
      score: 7.5,
    });
    expect(cvssRef('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', undefined, '3.0')?.version).toBe('3.1');
    expect(cvssRef('AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N', 5.9, '3.0')?.vector).toBe(
      'CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N',
    );
    expect(cvssRef(undefined, undefined, '3.0')).toBeUndefined();
    expect(cvssRef('garbage', 5, undefined)).toBeUndefined();
    expect(cvssFromScoreAndVector('9.3 (AV:N/AC:M/Au:N/C:C/I:C/A:C)', '2.0')).toEqual({
      version: '2.0',
      vector: 'AV:N/AC:M/Au:N/C:C/I:C/A:C',
      score: 9.3,
    });
    expect(cvssFromScoreAndVector('-', '3.1')).toBeUndefined();
  });

  it('drops scores and probabilities out of range instead of guessing', () => {
    expect(cvssScore('7.5')).toBe(7.5);
    expect(cvssScore('75')).toBeUndefined();
    expect(cvssScore('n/a')).toBeUndefined();
    expect(probability('0.9637')).toBe(0.9637);
    expect(probability('3833')).toBeUndefined();
  });
});

describe('identifiers and text', () => {
  it('extracts CVE, CWE ids and URLs', () => {
    expect(cveIds('CVE-2021-44228, cve-2021-45046', 'CVE-2021-44228')).toEqual([
      'CVE-2021-44228',
      'CVE-2021-45046',
    ]);
    expect([cweId('CWE:79'), cweId('CWE-0079'), cweId('79'), cweId('NVD-CWE-noinfo')]).toEqual([
      'CWE-79',
      'CWE-79',
      'CWE-79',
      undefined,
    ]);
    expect(urls('see https://a.example/x, and\nhttp://b.example/y')).toEqual([
      'https://a.example/x',
      'http://b.example/y',
    ]);
  });

  it('bounds text with a visible marker and treats placeholders as absent', () => {
    const cut = bounded('x'.repeat(100), 50);
    expect(cut).toHaveLength(50);
    expect(cut?.endsWith('…[truncated]')).toBe(true);
    expect(bounded('  ', 10)).toBeUndefined();
    expect(meaningful('n/a')).toBeUndefined();
    expect(meaningful(' fix it ')).toBe('fix it');
  });

  it('turns Qualys HTML into text', () => {
    expect(htmlToText('Line one<BR>Line &quot;two&quot;<P> <A HREF="http://x">link</A> &#65;&amp;')).toBe(
      'Line one\nLine "two"\n link A&',
    );
  });
});

describe('time', () => {
  it('converts only unambiguous timestamps', () => {
    expect(isoFromEpochSeconds('1648042311')).toBe('2022-03-23T13:31:51.000Z');
    expect(isoFromZoned('2025-08-22T15:01:38+02:00')).toBe('2025-08-22T13:01:38.000Z');
    expect(isoFromZoned('2021-03-12T12:34:30.12031+00:00')).toBe('2021-03-12T12:34:30.120Z');
    expect(isoFromZoned('Tue Jun 25 10:32:42 2013')).toBeUndefined();
    expect(isoFromZoned('2024-01-01 10:00:00')).toBeUndefined();
  });
});

describe('perCve', () => {
  it('fans out one finding per CVE, or keys by rule without CVE', () => {
    const base = {
      scanner: 'x',
      asset: { kind: 'host' as const },
      kind: 'vulnerability' as const,
      title: 't',
      severity: 'low' as const,
    };
    expect(perCve(base, ['CVE-1', 'CVE-2'], 'x:1').map((f) => f.weaknessKey)).toEqual(['CVE-1', 'CVE-2']);
    expect(perCve(base, [], 'x:1').map((f) => f.weaknessKey)).toEqual(['x:1']);
  });
});
