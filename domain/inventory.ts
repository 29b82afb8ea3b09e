// The asset inventory's pure rules: which identifiers an asset is known by, when an asset in a report
// is an asset the inventory already holds, and which scope an asset belongs to. No I/O; ingest feeds
// these functions what it read from the database and the report.
import type { AssetKind, AssetRef } from './finding.ts';

export type IdentifierKind = 'fqdn' | 'hostname' | 'ip' | 'mac' | 'image' | 'cloud' | 'url';

export interface AssetIdentifier {
  kind: IdentifierKind;
  value: string;
}

/** What the inventory holds about one asset: enough to decide whether a reported asset is it. */
export interface KnownAsset {
  id: number;
  kind: AssetKind;
  identityKey: string;
  hostname?: string;
  fqdn?: string;
  ips: string[];
  mac?: string;
  os?: string;
  imageRepo?: string;
  imageTag?: string;
  imageDigest?: string;
  cloudId?: string;
  url?: string;
  tags: string[];
  scope?: string;
  retired: boolean;
}

/** How strongly a reported asset matched a known one, strongest first. */
export const matchStrengths = ['identity', 'fqdn', 'mac', 'hostname', 'ip'] as const;
export type MatchStrength = (typeof matchStrengths)[number];

/** An asset keeps at most this many addresses (most recent first); older ones stay in the history. */
export const MAX_ASSET_IPS = 16;

/**
 * The image identifier: repository and digest (an image is immutable: a new digest is a new asset),
 * or repository and tag when the report gives no digest.
 */
export function imageIdentifier(
  a: Pick<AssetRef, 'imageRepo' | 'imageTag' | 'imageDigest'>,
): string | undefined {
  if (!a.imageRepo) return undefined;
  const repo = normalizeImageRepo(a.imageRepo);
  if (a.imageDigest) return `${repo}@${a.imageDigest}`;
  return `${repo}:${a.imageTag ?? 'latest'}`;
}

/** Every identifier an asset carries. */
export function assetIdentifiers(a: AssetRef | KnownAsset): AssetIdentifier[] {
  const out: AssetIdentifier[] = [];
  if (a.fqdn) out.push({ kind: 'fqdn', value: a.fqdn });
  if (a.hostname) out.push({ kind: 'hostname', value: a.hostname });
  for (const ip of a.ips ?? []) out.push({ kind: 'ip', value: ip });
  if (a.mac) out.push({ kind: 'mac', value: a.mac });
  const image = imageIdentifier(a);
  if (image) out.push({ kind: 'image', value: image });
  if (a.cloudId) out.push({ kind: 'cloud', value: a.cloudId });
  if (a.url) out.push({ kind: 'url', value: a.url });
  return out;
}

/**
 * The canonical identity key of a new asset (assets.identity_key): its strongest identifier.
 * "image:<repo>@<digest>", "cloud:<id>", "app:<url>", "repo:<url>", "host:<fqdn-or-hostname>",
 * "ip:<addr>", "mac:<mac>"; undefined when the asset carries nothing to identify it by.
 */
export function identityKey(a: AssetRef): string | undefined {
  const image = imageIdentifier(a);
  if (a.kind === 'image' && image) return `image:${image}`;
  if (a.kind === 'cloud' && a.cloudId) return `cloud:${a.cloudId}`;
  if (a.kind === 'application' && a.url) return `app:${a.url}`;
  if (a.kind === 'repository' && a.url) return `repo:${a.url}`;
  const prefix = a.kind === 'host' ? '' : `${a.kind}:`;
  if (a.fqdn) return `${prefix}host:${a.fqdn}`;
  if (a.hostname) return `${prefix}host:${a.hostname}`;
  if (a.ips?.[0]) return `${prefix}ip:${a.ips[0]}`;
  if (a.mac) return `${prefix}mac:${a.mac}`;
  if (image) return `${prefix}image:${image}`;
  if (a.cloudId) return `${prefix}cloud:${a.cloudId}`;
  if (a.url) return `${prefix}url:${a.url}`;
  return undefined;
}

/**
 * Is the reported asset this known asset, and how strongly? Images, cloud resources, applications
 * and repositories match only on their own identity. Hosts match on FQDN, else MAC, else short host
 * name, else an address — but never across a contradiction: two different FQDNs (or MACs, or short
 * names) are two machines even when they share an address (DHCP reuse, NAT), and an address alone
 * never revives a retired asset.
 */
export function matchStrength(known: KnownAsset, ref: AssetRef): MatchStrength | undefined {
  if (known.kind !== ref.kind) return undefined;
  if (ref.kind !== 'host') {
    const image = imageIdentifier(ref);
    if (image && image === imageIdentifier(known)) return 'identity';
    if (ref.cloudId && ref.cloudId === known.cloudId) return 'identity';
    if (ref.url && ref.url === known.url) return 'identity';
    if (image || ref.cloudId || ref.url) return undefined;
  }
  if (ref.fqdn && known.fqdn) return ref.fqdn === known.fqdn ? 'fqdn' : undefined;
  if (ref.mac && known.mac) return ref.mac === known.mac ? 'mac' : undefined;
  if (ref.hostname && known.hostname) return ref.hostname === known.hostname ? 'hostname' : undefined;
  if (!known.retired && ref.ips?.some((ip) => known.ips.includes(ip))) return 'ip';
  return undefined;
}

/**
 * The known asset updated with what a report says about it now: missing names filled, addresses
 * merged (the report's first), OS and tags refreshed, un-retired.
 */
export function mergeAsset(known: KnownAsset, ref: AssetRef): KnownAsset {
  const ips = [...new Set([...(ref.ips ?? []), ...known.ips])].slice(0, MAX_ASSET_IPS);
  const tags = [...new Set([...known.tags, ...(ref.tags ?? [])])];
  return {
    ...known,
    fqdn: known.fqdn ?? ref.fqdn,
    hostname: known.hostname ?? ref.hostname,
    mac: known.mac ?? ref.mac,
    os: ref.os ?? known.os,
    imageRepo: known.imageRepo ?? ref.imageRepo,
    imageTag: known.imageTag ?? ref.imageTag,
    imageDigest: known.imageDigest ?? ref.imageDigest,
    cloudId: known.cloudId ?? ref.cloudId,
    url: known.url ?? ref.url,
    ips,
    tags,
    retired: false,
  };
}

/** A new known asset from a reported one (id assigned by the caller). */
export function newAsset(id: number, ref: AssetRef, key: string): KnownAsset {
  return {
    id,
    kind: ref.kind,
    identityKey: key,
    hostname: ref.hostname,
    fqdn: ref.fqdn,
    ips: [...new Set(ref.ips ?? [])].slice(0, MAX_ASSET_IPS),
    mac: ref.mac,
    os: ref.os,
    imageRepo: ref.imageRepo,
    imageTag: ref.imageTag,
    imageDigest: ref.imageDigest,
    cloudId: ref.cloudId,
    url: ref.url,
    tags: [...new Set(ref.tags ?? [])],
    retired: false,
  };
}

/**
 * Known assets indexed by identifier, for resolving a report's assets in memory after one query
 * loaded the candidates. Assets added while resolving (new ones) are found by later lookups, so two
 * descriptions of one new host in the same report become one asset.
 */
export class AssetIndex {
  private readonly assets = new Map<number, KnownAsset>();
  private readonly byIdentifier = new Map<string, Set<number>>();

  add(asset: KnownAsset): void {
    this.assets.set(asset.id, asset);
    for (const id of assetIdentifiers(asset)) {
      const k = `${id.kind}\0${id.value}`;
      let set = this.byIdentifier.get(k);
      if (!set) this.byIdentifier.set(k, (set = new Set()));
      set.add(asset.id);
    }
  }

  get(id: number): KnownAsset | undefined {
    return this.assets.get(id);
  }

  /** The best-matching known asset: strongest match, then a live asset over a retired one, then the newest. */
  resolve(ref: AssetRef): { asset: KnownAsset; via: MatchStrength } | undefined {
    const candidates = new Set<number>();
    for (const id of assetIdentifiers(ref)) {
      for (const assetId of this.byIdentifier.get(`${id.kind}\0${id.value}`) ?? []) candidates.add(assetId);
    }
    let best: { asset: KnownAsset; via: MatchStrength } | undefined;
    for (const assetId of candidates) {
      const asset = this.assets.get(assetId);
      if (!asset) continue;
      const via = matchStrength(asset, ref);
      if (!via) continue;
      if (!best || better({ asset, via }, best)) best = { asset, via };
    }
    return best;
  }
}

function better(
  a: { asset: KnownAsset; via: MatchStrength },
  b: { asset: KnownAsset; via: MatchStrength },
): boolean {
  const sa = matchStrengths.indexOf(a.via);
  const sb = matchStrengths.indexOf(b.via);
  if (sa !== sb) return sa < sb;
  if (a.asset.retired !== b.asset.retired) return !a.asset.retired;
  return a.asset.id > b.asset.id;
}

// ---- scopes ----------------------------------------------------------------------------------

/** The part of a ctem.yaml scope that decides membership. */
export interface ScopeRules {
  name: string;
  match: { cidrs: string[]; hostnames: string[]; tags: string[]; images: string[] };
}

/** What scope rules look at. */
export type ScopedAsset = Pick<AssetRef, 'ips' | 'fqdn' | 'hostname' | 'tags' | 'imageRepo'>;

interface CompiledScope {
  name: string;
  cidrs: Cidr[];
  hostnames: RegExp[];
  tags: Set<string>;
  images: RegExp[];
}

/**
 * Scope membership rules compiled once. An asset belongs to the first scope, in ctem.yaml order,
 * with any matching rule: one of its addresses in a CIDR, its FQDN or short name matching a host
 * name glob, one of its tags listed, or its image repository matching an image glob. Globs are
 * case-insensitive; `*` matches any run of characters (dots included), `?` one character.
 */
export class ScopeMatcher {
  private readonly scopes: CompiledScope[];

  constructor(scopes: readonly ScopeRules[]) {
    this.scopes = scopes.map((s) => ({
      name: s.name,
      cidrs: s.match.cidrs.map((c) => {
        const parsed = parseCidr(c);
        if (!parsed) throw new Error(`scope ${s.name}: ${c} is not a CIDR block`);
        return parsed;
      }),
      hostnames: s.match.hostnames.map((g) => globRegExp(g.toLowerCase().replace(/\.$/, ''))),
      tags: new Set(s.match.tags),
      images: s.match.images.map((g) => globRegExp(normalizeImageRepo(g))),
    }));
  }

  scopeOf(asset: ScopedAsset): string | undefined {
    const addresses = (asset.ips ?? []).map(parseIp).filter((a): a is IpAddress => a !== undefined);
    const names = [asset.fqdn, asset.hostname].filter((n): n is string => Boolean(n));
    const image = asset.imageRepo ? normalizeImageRepo(asset.imageRepo) : undefined;
    for (const s of this.scopes) {
      if (s.cidrs.some((c) => addresses.some((a) => cidrContains(c, a)))) return s.name;
      if (s.hostnames.some((g) => names.some((n) => g.test(n)))) return s.name;
      if (asset.tags?.some((t) => s.tags.has(t))) return s.name;
      if (image && s.images.some((g) => g.test(image))) return s.name;
    }
    return undefined;
  }
}

function globRegExp(glob: string): RegExp {
  const body = glob
    .split('')
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, 'i');
}

/**
 * Docker's implicit registry and namespace made explicit, so "nginx", "library/nginx" and
 * "docker.io/library/nginx" are one repository. A tag or digest is dropped.
 */
export function normalizeImageRepo(raw: string): string {
  let s = raw.trim().toLowerCase();
  const at = s.indexOf('@');
  if (at >= 0) s = s.slice(0, at);
  const lastSlash = s.lastIndexOf('/');
  const colon = s.lastIndexOf(':');
  if (colon > lastSlash) s = s.slice(0, colon);
  if (s.startsWith('*')) return s;
  const parts = s.split('/');
  const first = parts[0] ?? '';
  const hasRegistry =
    parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost');
  let registry = hasRegistry ? first : 'docker.io';
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = 'docker.io';
  const path = hasRegistry ? parts.slice(1) : parts;
  if (registry === 'docker.io' && path.length === 1) path.unshift('library');
  return `${registry}/${path.join('/')}`;
}

// ---- addresses -------------------------------------------------------------------------------

export interface IpAddress {
  version: 4 | 6;
  value: bigint;
}

export interface Cidr {
  version: 4 | 6;
  network: bigint;
  prefix: number;
}

/** An IPv4 or IPv6 address as a number; IPv4-mapped IPv6 addresses count as IPv4. */
export function parseIp(text: string): IpAddress | undefined {
  const s = text.trim();
  const v4 = parseIpv4(s);
  if (v4 !== undefined) return { version: 4, value: v4 };
  const v6 = parseIpv6(s);
  if (v6 === undefined) return undefined;
  if (v6 >> 32n === 0xffffn) return { version: 4, value: v6 & 0xffffffffn };
  return { version: 6, value: v6 };
}

export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  const width = ip.version === 4 ? 32 : 128;
  if (prefix > width) return undefined;
  const mask = prefixMask(prefix, width);
  return { version: ip.version, network: ip.value & mask, prefix };
}

export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.version !== ip.version) return false;
  const width = cidr.version === 4 ? 32 : 128;
  return (ip.value & prefixMask(cidr.prefix, width)) === cidr.network;
}

function prefixMask(prefix: number, width: number): bigint {
  const all = (1n << BigInt(width)) - 1n;
  return prefix === 0 ? 0n : (all << BigInt(width - prefix)) & all;
}

function parseIpv4(s: string): bigint | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  let v = 0n;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) return undefined;
    v = (v << 8n) | BigInt(o);
  }
  return v;
}

function parseIpv6(raw: string): bigint | undefined {
  let s = raw;
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (!/^[0-9a-fA-F:.]+$/.test(s) || !s.includes(':')) return undefined;
  // A trailing dotted quad stands for the last two groups.
  const lastColon = s.lastIndexOf(':');
  const quad = s.slice(lastColon + 1);
  if (quad.includes('.')) {
    const v4 = parseIpv4(quad);
    if (v4 === undefined) return undefined;
    s = `${s.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string): number[] | undefined => {
    if (part === '') return [];
    const groups = part.split(':');
    const out: number[] = [];
    for (const g of groups) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parse(halves[0] ?? '');
  const rest = halves.length === 2 ? parse(halves[1] ?? '') : [];
  if (!head || !rest) return undefined;
  const explicit = head.length + rest.length;
  let groups: number[];
  if (halves.length === 2) {
    if (explicit > 7) return undefined;
    groups = [...head, ...new Array<number>(8 - explicit).fill(0), ...rest];
  } else {
    if (explicit !== 8) return undefined;
    groups = head;
  }
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}
