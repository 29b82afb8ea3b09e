import { describe, expect, it } from 'vitest';
import {
  AssetIndex,
  cidrContains,
  identityKey,
  matchStrength,
  mergeAsset,
  newAsset,
  normalizeImageRepo,
  parseCidr,
  parseIp,
  ScopeMatcher,
  type KnownAsset,
} from './inventory.ts';
import type { AssetRef } from './finding.ts';

const known = (over: Partial<KnownAsset>): KnownAsset => ({
  id: 1,
  kind: 'host',
  identityKey: 'host:x',
  ips: [],
  tags: [],
  retired: false,
  ...over,
});

describe('matching a reported asset to a known one', () => {
  const web = known({
    fqdn: 'web.example.com',
    hostname: 'web',
    ips: ['10.0.0.5'],
    mac: 'AA:BB:CC:DD:EE:01',
  });

  it('matches on FQDN first, then MAC, short name, address', () => {
    expect(matchStrength(web, { kind: 'host', fqdn: 'web.example.com' })).toBe('fqdn');
    expect(matchStrength(web, { kind: 'host', mac: 'AA:BB:CC:DD:EE:01', ips: ['10.9.9.9'] })).toBe('mac');
    expect(matchStrength(web, { kind: 'host', hostname: 'web' })).toBe('hostname');
    expect(matchStrength(web, { kind: 'host', ips: ['10.0.0.5'] })).toBe('ip');
  });

  it('never matches across a contradiction, even with a shared address', () => {
    expect(matchStrength(web, { kind: 'host', fqdn: 'db.example.com', ips: ['10.0.0.5'] })).toBeUndefined();
    expect(matchStrength(web, { kind: 'host', mac: 'AA:BB:CC:DD:EE:02', ips: ['10.0.0.5'] })).toBeUndefined();
    expect(matchStrength(web, { kind: 'host', hostname: 'db', ips: ['10.0.0.5'] })).toBeUndefined();
    expect(matchStrength(web, { kind: 'image', imageRepo: 'nginx', ips: ['10.0.0.5'] })).toBeUndefined();
  });

  it('does not revive a retired asset on an address alone', () => {
    const gone = { ...web, retired: true };
    expect(matchStrength(gone, { kind: 'host', ips: ['10.0.0.5'] })).toBeUndefined();
    expect(matchStrength(gone, { kind: 'host', fqdn: 'web.example.com' })).toBe('fqdn');
  });

  it('matches images on repository and digest only', () => {
    const img = known({ kind: 'image', imageRepo: 'docker.io/library/nginx', imageDigest: 'sha256:1' });
    expect(matchStrength(img, { kind: 'image', imageRepo: 'nginx', imageDigest: 'sha256:1' })).toBe(
      'identity',
    );
    expect(
      matchStrength(img, { kind: 'image', imageRepo: 'nginx', imageDigest: 'sha256:2' }),
    ).toBeUndefined();
  });

  it('resolves through the index to the strongest match and sees assets added meanwhile', () => {
    const index = new AssetIndex();
    index.add(known({ id: 1, ips: ['10.0.0.5'] }));
    index.add(known({ id: 2, fqdn: 'web.example.com', ips: ['10.0.0.6'] }));
    expect(index.resolve({ kind: 'host', fqdn: 'web.example.com', ips: ['10.0.0.5'] })?.asset.id).toBe(2);
    const ref: AssetRef = { kind: 'host', hostname: 'new-host', ips: ['10.7.7.7'] };
    expect(index.resolve(ref)).toBeUndefined();
    index.add(newAsset(-1, ref, identityKey(ref)!));
    expect(index.resolve({ kind: 'host', ips: ['10.7.7.7'] })?.asset.id).toBe(-1);
  });

  it('merges a sighting into the known asset: names kept, addresses most recent first', () => {
    const merged = mergeAsset(known({ hostname: 'web', ips: ['10.0.0.1'], tags: ['a'] }), {
      kind: 'host',
      fqdn: 'web.example.com',
      ips: ['10.0.0.2'],
      os: 'Debian 12',
      tags: ['b'],
    });
    expect(merged).toMatchObject({
      hostname: 'web',
      fqdn: 'web.example.com',
      ips: ['10.0.0.2', '10.0.0.1'],
      os: 'Debian 12',
      tags: ['a', 'b'],
    });
  });

  it('derives identity keys by strength', () => {
    expect(identityKey({ kind: 'host', fqdn: 'a.b.c', hostname: 'a', ips: ['1.2.3.4'] })).toBe('host:a.b.c');
    expect(identityKey({ kind: 'host', ips: ['1.2.3.4'], mac: 'AA:BB:CC:DD:EE:FF' })).toBe('ip:1.2.3.4');
    expect(identityKey({ kind: 'host', mac: 'AA:BB:CC:DD:EE:FF' })).toBe('mac:AA:BB:CC:DD:EE:FF');
    expect(identityKey({ kind: 'image', imageRepo: 'nginx', imageTag: '1.25' })).toBe(
      'image:docker.io/library/nginx:1.25',
    );
    expect(identityKey({ kind: 'cloud', cloudId: 'arn:aws:ec2:eu-west-1:1:instance/i-1' })).toBe(
      'cloud:arn:aws:ec2:eu-west-1:1:instance/i-1',
    );
    expect(identityKey({ kind: 'repository', url: 'https://git.example.com/shop' })).toBe(
      'repo:https://git.example.com/shop',
    );
    expect(identityKey({ kind: 'host' })).toBeUndefined();
  });
});

describe('addresses and CIDR blocks', () => {
  it('parses IPv4, IPv6 (compressed, embedded IPv4, zone) and treats IPv4-mapped as IPv4', () => {
    expect(parseIp('10.0.0.1')).toEqual({ version: 4, value: 0x0a000001n });
    expect(parseIp('::1')).toEqual({ version: 6, value: 1n });
    expect(parseIp('2001:db8::1')?.value).toBe(0x20010db8000000000000000000000001n);
    expect(parseIp('::ffff:10.0.0.1')).toEqual({ version: 4, value: 0x0a000001n });
    expect(parseIp('64:ff9b::192.0.2.33')?.value).toBe(0x0064ff9b0000000000000000c0000221n);
    expect(parseIp('fe80::1%eth0')?.version).toBe(6);
    expect(parseIp('256.0.0.1')).toBeUndefined();
    expect(parseIp('1:2:3:4:5:6:7:8:9')).toBeUndefined();
    expect(parseIp('web-01')).toBeUndefined();
  });

  it('tests membership of both families', () => {
    const v4 = parseCidr('10.1.0.0/16')!;
    expect(cidrContains(v4, parseIp('10.1.255.3')!)).toBe(true);
    expect(cidrContains(v4, parseIp('10.2.0.1')!)).toBe(false);
    expect(cidrContains(parseCidr('0.0.0.0/0')!, parseIp('8.8.8.8')!)).toBe(true);
    expect(cidrContains(parseCidr('192.0.2.7/32')!, parseIp('192.0.2.7')!)).toBe(true);
    const v6 = parseCidr('2001:db8::/32')!;
    expect(cidrContains(v6, parseIp('2001:db8:ffff::1')!)).toBe(true);
    expect(cidrContains(v6, parseIp('2001:db9::1')!)).toBe(false);
    expect(cidrContains(v6, parseIp('10.0.0.1')!)).toBe(false);
    expect(parseCidr('10.0.0.0/33')).toBeUndefined();
  });
});

describe('scope rules', () => {
  const matcher = new ScopeMatcher([
    { name: 'prod', match: { cidrs: ['10.1.0.0/16'], hostnames: [], tags: [], images: [] } },
    { name: 'dmz', match: { cidrs: [], hostnames: ['*.dmz.example.com', 'GW-??'], tags: [], images: [] } },
    { name: 'k8s', match: { cidrs: [], hostnames: [], tags: ['namespace:payments'], images: [] } },
    {
      name: 'shop',
      match: { cidrs: [], hostnames: [], tags: [], images: ['registry.example.com/shop/*', 'library/nginx'] },
    },
  ]);

  it('takes the first scope with a matching rule', () => {
    expect(matcher.scopeOf({ ips: ['10.1.2.3'], fqdn: 'x.dmz.example.com' })).toBe('prod');
    expect(matcher.scopeOf({ ips: ['192.0.2.1'], fqdn: 'x.dmz.example.com' })).toBe('dmz');
    expect(matcher.scopeOf({ hostname: 'gw-01' })).toBe('dmz');
    expect(matcher.scopeOf({ hostname: 'gw-001' })).toBeUndefined();
    expect(matcher.scopeOf({ tags: ['namespace:payments'] })).toBe('k8s');
    expect(matcher.scopeOf({ imageRepo: 'registry.example.com/shop/api' })).toBe('shop');
    expect(matcher.scopeOf({ imageRepo: 'nginx' })).toBe('shop');
    expect(matcher.scopeOf({ imageRepo: 'registry.example.com/other/api' })).toBeUndefined();
    expect(matcher.scopeOf({ fqdn: 'dmz.example.com' })).toBeUndefined();
  });

  it('normalizes Docker Hub repositories', () => {
    expect(normalizeImageRepo('nginx')).toBe('docker.io/library/nginx');
    expect(normalizeImageRepo('bitnami/redis:7.2')).toBe('docker.io/bitnami/redis');
    expect(normalizeImageRepo('index.docker.io/library/nginx@sha256:1')).toBe('docker.io/library/nginx');
    expect(normalizeImageRepo('localhost:5000/app')).toBe('localhost:5000/app');
    expect(normalizeImageRepo('ghcr.io/org/app:1')).toBe('ghcr.io/org/app');
  });

  it('refuses a malformed CIDR with the scope named', () => {
    expect(
      () =>
        new ScopeMatcher([
          { name: 'bad', match: { cidrs: ['10.0.0.0/40'], hostnames: [], tags: [], images: [] } },
        ]),
    ).toThrow(/scope bad: 10.0.0.0\/40 is not a CIDR block/);
  });
});
