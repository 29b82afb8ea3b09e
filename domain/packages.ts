// Package names, versions and advisory ids as each package manager defines them, and version
// ordering as dpkg and rpm compute it. Pure. Everything a scanner says about a package passes through
// here before it may appear in a command: a string that is not a well-formed name or version for
// the host's package manager is refused, so no scanner-provided text can ever act as an option, a
// shell word or a search operator.

export const packageManagers = ['apt', 'dnf', 'yum', 'zypper'] as const;
export type PackageManager = (typeof packageManagers)[number];
export type PackageFamily = 'deb' | 'rpm';

export function packageFamily(manager: PackageManager): PackageFamily {
  return manager === 'apt' ? 'deb' : 'rpm';
}

/** A scanner-provided value that is not acceptable where it was meant to go; `field` says which. */
export class PatchInputError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'PatchInputError';
  }
}

const maxTokenLength = 200;

// Debian Policy 5.6.1: lower-case letters, digits, + - . ; at least two characters; starts
// alphanumeric. apt-get also takes a multiarch qualifier "name:arch".
const debName = /^[a-z0-9][a-z0-9+.-]+(?::[a-z0-9][a-z0-9-]*)?$/;
// Debian Policy 5.6.12: [epoch:]upstream[-revision]; upstream starts with a digit and holds
// alphanumerics and . + ~ - ; the revision holds alphanumerics and + . ~ .
const debVersion = /^(?:\d+:)?\d[A-Za-z0-9.+~]*(?:-[A-Za-z0-9.+~-]*[A-Za-z0-9.+~])?$/;
// RPM names as Fedora's packaging guidelines allow (libstdc++, python3.11-pip, perl-Net-SSLeay).
const rpmName = /^[A-Za-z0-9_][A-Za-z0-9._+-]*$/;
// [epoch:]version[-release]; rpm forbids '-' inside version and release; ~ and ^ are rpm's
// pre-/post-release markers.
const rpmVersion = /^(?:\d+:)?[A-Za-z0-9][A-Za-z0-9._+~^]*(?:-[A-Za-z0-9][A-Za-z0-9._+~^]*)?$/;

export function parsePackageName(manager: PackageManager, name: string, field = 'package name'): string {
  const ok = packageFamily(manager) === 'deb' ? debName : rpmName;
  if (name.length > maxTokenLength || !ok.test(name))
    throw new PatchInputError(
      field,
      `${JSON.stringify(truncate(name))} is not a valid ${manager} package name; the scanner data is refused and nothing was run`,
    );
  return name;
}

export function parsePackageVersion(
  manager: PackageManager,
  version: string,
  field = 'fixed version',
): string {
  const ok = packageFamily(manager) === 'deb' ? debVersion : rpmVersion;
  if (version.length > maxTokenLength || !ok.test(version))
    throw new PatchInputError(
      field,
      `${JSON.stringify(truncate(version))} is not a valid ${manager} package version; the scanner data is refused and nothing was run`,
    );
  return version;
}

/** One package to bring up to date, after validation. */
export interface PackageSpec {
  name: string;
  /** Acceptable fixed versions (scanners list alternatives joined by ", "); empty when unknown. */
  fixedVersions: string[];
}

export function parsePackageSpec(
  manager: PackageManager,
  pkg: { name: string; fixedVersion?: string },
  field = 'packages',
): PackageSpec {
  const name = parsePackageName(manager, pkg.name, `${field}.name`);
  const fixedVersions = (pkg.fixedVersion ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v.length > 0)
    .map((v) => parsePackageVersion(manager, v, `${field}.fixedVersion`));
  return { name, fixedVersions };
}

/**
 * True when the installed version is at least one of the fixed versions (alternatives name fixes on
 * different branches; reaching any of them is what the advisory asks). Unknown fix: any version.
 */
export function satisfiesFixedVersions(family: PackageFamily, installed: string, fixed: string[]): boolean {
  if (fixed.length === 0) return true;
  return fixed.some((f) => compareVersions(family, installed, f) >= 0);
}

// ---- advisories and hosts -------------------------------------------------------------------------

export function parseCveId(id: string, field = 'cves'): string {
  if (!/^CVE-\d{4}-\d{4,7}$/.test(id))
    throw new PatchInputError(field, `${JSON.stringify(truncate(id))} is not a CVE id such as CVE-2024-3094`);
  return id;
}

/** Microsoft KB article ids, normalized to upper case ("kb5034441" → "KB5034441"). */
export function parseKbId(id: string, field = 'advisories'): string {
  const normalized = id.trim().toUpperCase();
  if (!/^KB\d{6,8}$/.test(normalized))
    throw new PatchInputError(field, `${JSON.stringify(truncate(id))} is not a KB id such as KB5034441`);
  return normalized;
}

/**
 * Errata ids as Red Hat and its rebuilds publish them (RHSA-2024:1234, ALSA-2024:1234,
 * FEDORA-2024-1a2b3c4d5e, openSUSE-SU-2024:0123-1). Only characters that are inert in a Foreman
 * scoped-search query.
 */
export function parseErratumId(id: string, field = 'advisories'): string {
  if (!/^[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*-\d{4}[:-][A-Za-z0-9]+(?:-\d+)?$/.test(id) || id.length > 64)
    throw new PatchInputError(
      field,
      `${JSON.stringify(truncate(id))} is not an erratum id such as RHSA-2024:1234`,
    );
  return id;
}

/** A DNS name or an IP address literal, as the inventory knows a host. */
export function parseHostName(host: string, field = 'host'): string {
  const label = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
  const dns = new RegExp(`^${label}(?:\\.${label})*\\.?$`);
  const ipv4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;
  const ipv6 = /^[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*$/;
  if (host.length > 253 || !(dns.test(host) || ipv4.test(host) || ipv6.test(host)))
    throw new PatchInputError(field, `${JSON.stringify(truncate(host))} is not a host name or IP address`);
  return host;
}

function truncate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

// ---- version ordering -----------------------------------------------------------------------------

/** Negative, zero or positive as a sorts before, with or after b in the family's version order. */
export function compareVersions(family: PackageFamily, a: string, b: string): number {
  return family === 'deb' ? compareDebianVersions(a, b) : compareRpmVersions(a, b);
}

interface Evr {
  epoch: number;
  version: string;
  release?: string;
}

function splitEvr(text: string): Evr {
  const colon = text.indexOf(':');
  const epoch = colon > 0 && /^\d+$/.test(text.slice(0, colon)) ? Number(text.slice(0, colon)) : 0;
  const rest = colon > 0 ? text.slice(colon + 1) : text;
  const dash = rest.lastIndexOf('-');
  return dash > 0
    ? { epoch, version: rest.slice(0, dash), release: rest.slice(dash + 1) }
    : { epoch, version: rest };
}

/** dpkg's ordering (lib/dpkg/version.c): epoch, then upstream version, then Debian revision. */
export function compareDebianVersions(a: string, b: string): number {
  const x = splitEvr(a);
  const y = splitEvr(b);
  if (x.epoch !== y.epoch) return x.epoch - y.epoch;
  return dpkgVerrevcmp(x.version, y.version) || dpkgVerrevcmp(x.release ?? '', y.release ?? '');
}

const isDigit = (c: string) => c >= '0' && c <= '9';
const isAlpha = (c: string) => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');

/** dpkg's character weight: '~' before the end, the end before letters, letters before the rest. */
function dpkgOrder(c: string): number {
  if (c === '') return 0;
  if (isDigit(c)) return 0;
  if (isAlpha(c)) return c.charCodeAt(0);
  if (c === '~') return -1;
  return c.charCodeAt(0) + 256;
}

function dpkgVerrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  const at = (s: string, k: number) => (k < s.length ? s[k]! : '');
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigit(at(a, i))) || (j < b.length && !isDigit(at(b, j)))) {
      const ac = dpkgOrder(at(a, i));
      const bc = dpkgOrder(at(b, j));
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (at(a, i) === '0') i++;
    while (at(b, j) === '0') j++;
    while (isDigit(at(a, i)) && isDigit(at(b, j))) {
      if (!firstDiff) firstDiff = at(a, i).charCodeAt(0) - at(b, j).charCodeAt(0);
      i++;
      j++;
    }
    if (isDigit(at(a, i))) return 1;
    if (isDigit(at(b, j))) return -1;
    if (firstDiff) return firstDiff;
  }
  return 0;
}

/**
 * rpm's ordering (rpmvercmp and rpmVersionCompare): epoch, version, then release. A side without a
 * release matches any release, as `dnf upgrade name-1.2` does.
 */
export function compareRpmVersions(a: string, b: string): number {
  const x = splitEvr(a);
  const y = splitEvr(b);
  if (x.epoch !== y.epoch) return x.epoch < y.epoch ? -1 : 1;
  const v = rpmvercmp(x.version, y.version);
  if (v !== 0 || x.release === undefined || y.release === undefined) return v;
  return rpmvercmp(x.release, y.release);
}

function rpmvercmp(a: string, b: string): number {
  if (a === b) return 0;
  const isAlnum = (c: string) => isDigit(c) || isAlpha(c);
  let i = 0;
  let j = 0;
  const at = (s: string, k: number) => (k < s.length ? s[k]! : '');
  while (i < a.length || j < b.length) {
    while (i < a.length && !isAlnum(at(a, i)) && at(a, i) !== '~' && at(a, i) !== '^') i++;
    while (j < b.length && !isAlnum(at(b, j)) && at(b, j) !== '~' && at(b, j) !== '^') j++;
    // '~' sorts before everything, even the end of the string.
    if (at(a, i) === '~' || at(b, j) === '~') {
      if (at(a, i) !== '~') return 1;
      if (at(b, j) !== '~') return -1;
      i++;
      j++;
      continue;
    }
    // '^' sorts after the end of the string but before anything else.
    if (at(a, i) === '^' || at(b, j) === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (at(a, i) !== '^') return 1;
      if (at(b, j) !== '^') return -1;
      i++;
      j++;
      continue;
    }
    if (!(i < a.length && j < b.length)) break;
    const numeric = isDigit(at(a, i));
    const takes = numeric ? isDigit : isAlpha;
    let ei = i;
    let ej = j;
    while (ei < a.length && takes(at(a, ei))) ei++;
    while (ej < b.length && takes(at(b, ej))) ej++;
    // A numeric segment is newer than an alphabetic one.
    if (ej === j) return numeric ? 1 : -1;
    let segA = a.slice(i, ei);
    let segB = b.slice(j, ej);
    if (numeric) {
      segA = segA.replace(/^0+/, '');
      segB = segB.replace(/^0+/, '');
      if (segA.length !== segB.length) return segA.length > segB.length ? 1 : -1;
    }
    if (segA !== segB) return segA < segB ? -1 : 1;
    i = ei;
    j = ej;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}
