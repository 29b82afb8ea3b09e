// Host identity as every network scanner reports it: a name that may be an IP, a short host name, an
// FQDN or (for web-app scans) a URL; addresses; a MAC; an OS string. Normalized here once so that
// "WEB-01.example.com", "web-01.example.com." and "10.0.0.010" do not become different assets.

import { isIPv4, isIPv6 } from 'node:net';
import type { AssetRef } from '../../domain/finding.ts';

/** Canonical text form of an IPv4/IPv6 address (IPv6 compressed, lower-case); undefined if not an IP. */
export function canonicalIp(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  let s = raw.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (isIPv4(s)) return s;
  // Zero-padded octets ("010.000.001.001", seen in some exports) are decimal, never octal, in reports.
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(s)) {
    const unpadded = s
      .split('.')
      .map((o) => String(Number(o)))
      .join('.');
    return isIPv4(unpadded) ? unpadded : undefined;
  }
  // Zone ids ("fe80::1%eth0") are host-local and not part of the address identity.
  const zone = s.indexOf('%');
  const bare = zone >= 0 ? s.slice(0, zone) : s;
  if (!isIPv6(bare)) return undefined;
  // WHATWG URL serialization is the RFC 5952 canonical form (compressed, lower-case, embedded v4 kept as hex).
  const text = new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  // RFC 5952 §5: IPv4-mapped addresses keep the dotted quad.
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(text);
  if (mapped) {
    const hi = parseInt(mapped[1] ?? '0', 16);
    const lo = parseInt(mapped[2] ?? '0', 16);
    return `::ffff:${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return text;
}

/** Upper-case, colon-separated MAC; undefined unless the input is one 48-bit MAC. */
export function canonicalMac(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const hex = raw.trim().replace(/[:\-.]/g, '');
  if (!/^[0-9a-fA-F]{12}$/.test(hex)) return undefined;
  return hex.toUpperCase().replace(/(..)(?!$)/g, '$1:');
}

/** A DNS-ish name: lower-case, trailing dot dropped; undefined when it is empty or an IP address. */
export function dnsName(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const s = raw.trim().toLowerCase().replace(/\.$/, '');
  if (s === '' || /^[\d.]+$/.test(s) || canonicalIp(s) !== undefined) return undefined;
  // Names with spaces, slashes or other punctuation are labels, not host names (e.g. "No registered hostname").
  if (!/^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/.test(s)) return undefined;
  return s;
}

export interface HostIdentity {
  /** Names in order of preference (first good FQDN wins, first short name wins). */
  names?: (string | undefined)[];
  ips?: (string | undefined)[];
  mac?: string;
  os?: string;
  tags?: string[];
}

/**
 * Build a host AssetRef. A name containing a dot fills `fqdn` (and `hostname` with its first label
 * unless a short name was given); a dotless name fills `hostname`; IP-looking names go to `ips`.
 */
export function hostAsset(id: HostIdentity): AssetRef {
  const ips: string[] = [];
  const addIp = (raw: string | undefined): void => {
    const ip = canonicalIp(raw);
    if (ip !== undefined && !ips.includes(ip)) ips.push(ip);
  };
  for (const ip of id.ips ?? []) addIp(ip);

  let fqdn: string | undefined;
  let hostname: string | undefined;
  for (const raw of id.names ?? []) {
    if (raw === undefined) continue;
    if (canonicalIp(raw) !== undefined) {
      addIp(raw);
      continue;
    }
    const name = dnsName(raw);
    if (name === undefined) continue;
    if (name.includes('.')) fqdn ??= name;
    else hostname ??= name;
  }
  if (hostname === undefined && fqdn !== undefined) hostname = fqdn.split('.')[0];

  const asset: AssetRef = { kind: 'host' };
  if (hostname !== undefined) asset.hostname = hostname;
  if (fqdn !== undefined) asset.fqdn = fqdn;
  if (ips.length > 0) asset.ips = ips;
  const mac = canonicalMac(id.mac);
  if (mac !== undefined) asset.mac = mac;
  const os = id.os?.trim();
  if (os) asset.os = os;
  if (id.tags !== undefined && id.tags.length > 0) asset.tags = id.tags;
  return asset;
}

/** True when the asset carries at least one identifier ingest can match on. */
export function isIdentified(asset: AssetRef): boolean {
  return Boolean(asset.hostname ?? asset.fqdn ?? asset.ips?.[0] ?? asset.mac ?? asset.url);
}
