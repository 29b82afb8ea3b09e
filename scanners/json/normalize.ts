// Normalization the JSON scanner parsers add to the shared ../normalize/ module: image references,
// advisory-id weakness keys, byte-bounded text. Nothing here is JSON-specific; it lives beside the
// reader because the JSON parsers are its only users today.

import type { AssetRef, CvssRef, Severity } from '../../domain/finding.ts';
import { cveIds } from '../normalize/ids.ts';
import { severityFromLabel, severityFromScore } from '../normalize/severity.ts';

export const LIMITS = {
  title: 1024,
  /** Description, solution and evidence: bounded so one finding can never be megabytes. */
  text: 16 * 1024,
  references: 32,
  reference: 2048,
  aliases: 64,
} as const;

// Words the JSON scanners use beyond the shared vocabulary: Red Hat's "Important", Debian's and
// Grype's "Negligible", Trivy's "UNKNOWN".
const EXTRA_SEVERITY_WORDS: Readonly<Record<string, Severity>> = {
  important: 'high',
  severe: 'high',
  minor: 'low',
  negligible: 'info',
  unknown: 'unknown',
};

/** Map a scanner's severity word (any case) to ours; unrecognized words are 'unknown'. */
export function normalizeSeverity(raw: string | undefined): Severity {
  if (raw === undefined) return 'unknown';
  return severityFromLabel(raw) ?? EXTRA_SEVERITY_WORDS[raw.trim().toLowerCase()] ?? 'unknown';
}

export { severityFromScore };

// C0 controls except tab, LF, CR, plus DEL: PostgreSQL rejects NUL in text and the rest only confuse
// terminals and chat messages.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
// eslint-disable-next-line no-control-regex
const CONTROL_ALL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;

/** Strip control characters and surrounding blanks; undefined for empty results. */
export function cleanText(text: string | undefined): string | undefined {
  if (text === undefined || text === '') return undefined;
  // Called for every field of every finding: skip the copies when there is nothing to remove.
  let cleaned = CONTROL.test(text) ? text.replace(CONTROL_ALL, '') : text;
  if (cleaned.charCodeAt(0) <= 32 || cleaned.charCodeAt(cleaned.length - 1) <= 32) cleaned = cleaned.trim();
  return cleaned === '' ? undefined : cleaned;
}

/** Clean and cut to at most `maxBytes` of UTF-8, marking the cut with "…". */
export function boundText(text: string | undefined, maxBytes: number = LIMITS.text): string | undefined {
  const cleaned = cleanText(text);
  if (cleaned === undefined) return undefined;
  // Fast path: a UTF-16 unit is at most 3 UTF-8 bytes.
  if (cleaned.length * 3 <= maxBytes || Buffer.byteLength(cleaned) <= maxBytes) return cleaned;
  const cut = Buffer.from(cleaned)
    .subarray(0, maxBytes - 3)
    .toString('utf8');
  return `${cut.replace(/\uFFFD+$/, '')}…`;
}

/** Distinct, cleaned, bounded list; undefined when empty. */
export function boundList(
  items: Iterable<string | undefined>,
  maxItems: number,
  maxBytes = LIMITS.reference,
): string[] | undefined {
  const seen = new Set<string>();
  for (const item of items) {
    if (seen.size >= maxItems) break;
    const cleaned = item === undefined ? undefined : boundText(item, maxBytes);
    if (cleaned !== undefined) seen.add(cleaned);
  }
  return seen.size > 0 ? [...seen] : undefined;
}

const GHSA_RE = /^GHSA(-[23456789cfghjmpqrvwx]{4}){3}$/i;

export function isCve(id: string): boolean {
  return /^CVE-\d{4}-\d{4,}$/i.test(id);
}

/** Every CVE id mentioned in `text`, upper-cased, in order of appearance. */
export function cvesIn(text: string): string[] {
  return cveIds(text);
}

/**
 * Weakness key for a vulnerability known by several ids (primary first). The CVE wins when there is
 * one, so Trivy, Grype and the feeds (EPSS, KEV, NVD are all CVE-keyed) meet on the same exposure.
 * Without a CVE, a GHSA id is used bare: it is a global advisory id both Trivy and Grype report, so
 * they still correlate. Anything else (distro TEMP ids, vendor ids) is scanner-scoped: "trivy:TEMP-…".
 */
export function vulnerabilityKey(
  scanner: string,
  ids: readonly (string | undefined)[],
): { weaknessKey: string; aliases: string[] | undefined } | undefined {
  // Most vulnerabilities have exactly one id and it is a CVE: answer those without the general path.
  if (ids.length === 1) {
    const only = ids[0];
    if (only !== undefined && only.startsWith('CVE-') && isCve(only))
      return { weaknessKey: only, aliases: undefined };
  }
  const all: string[] = [];
  for (const raw of ids) {
    const id = cleanText(raw);
    if (id === undefined) continue;
    // CVE ids are upper-case by convention, GHSA ids lower-case after the prefix.
    const canonical = isCve(id)
      ? id.toUpperCase()
      : GHSA_RE.test(id)
        ? `GHSA${id.slice(4).toLowerCase()}`
        : id;
    if (!all.includes(canonical)) all.push(canonical);
  }
  if (all.length === 0) return undefined;
  const key = all.find(isCve) ?? all.find((id) => GHSA_RE.test(id)) ?? all[0]!;
  const weaknessKey = isCve(key) || GHSA_RE.test(key) ? key : `${scanner}:${key}`;
  const aliases = all.filter((id) => id !== key).slice(0, LIMITS.aliases);
  return { weaknessKey, aliases: aliases.length > 0 ? aliases : undefined };
}

/** "CWE-79" from "CWE-79", "cwe-079", "external/cwe/cwe-079" or "CWE-327: Use of a Broken…". */
export function normalizeCwe(raw: string): string | undefined {
  const match = /cwe[-_/ ]?0*(\d+)/i.exec(raw);
  return match ? `CWE-${match[1]}` : undefined;
}

export function cweList(items: Iterable<string>): string[] | undefined {
  const out = new Set<string>();
  for (const item of items) {
    const cwe = normalizeCwe(item);
    if (cwe) out.add(cwe);
  }
  return out.size > 0 ? [...out] : undefined;
}

/** CVSS version from the vector prefix; vectors without one are v2 ("AV:N/AC:L/Au:N/…"). */
export function cvssVersion(vector: string | undefined, hint?: string): CvssRef['version'] | undefined {
  const prefix = vector ? /^CVSS:(\d\.\d)\//.exec(vector)?.[1] : undefined;
  const version = prefix ?? hint;
  if (version === '3.1' || version === '3.0' || version === '4.0') return version;
  if (version === '2.0' || version === '2') return '2.0';
  if (vector && /^\(?AV:[LAN]\/AC:[HML]\/Au:[MSN]/.test(vector)) return '2.0';
  return undefined;
}

export interface ImageReference {
  imageRepo: string;
  imageTag?: string;
  imageDigest?: string;
}

/**
 * Split "nginx:1.25", "ghcr.io/org/app:v1@sha256:…" or "library/redis" into repository, tag and
 * digest, normalizing Docker Hub names to their full form ("nginx" → "docker.io/library/nginx") so
 * the same image reads the same from every scanner.
 */
export function parseImageReference(reference: string): ImageReference | undefined {
  let ref = reference.trim();
  if (ref === '' || /\s/.test(ref)) return undefined;
  let imageDigest: string | undefined;
  const at = ref.indexOf('@');
  if (at >= 0) {
    const digest = ref.slice(at + 1);
    if (/^[a-z0-9]+:[a-f0-9]{32,}$/i.test(digest)) imageDigest = digest.toLowerCase();
    ref = ref.slice(0, at);
  }
  let imageTag: string | undefined;
  const lastSlash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > lastSlash) {
    imageTag = ref.slice(colon + 1) || undefined;
    ref = ref.slice(0, colon);
  }
  if (ref === '' || !/^[A-Za-z0-9._\-/:]+$/.test(ref)) return undefined;
  return { imageRepo: normalizeRepository(ref), imageTag, imageDigest };
}

/** Rejects names scanners use for inputs that are not registry references: tarballs, paths, bare ids. */
export function isImageReference(name: string | undefined): name is string {
  if (!name || /\s/.test(name)) return false;
  if (/^(\.{0,2}\/|sha256:)/.test(name) || /\.(tar|tgz|tar\.gz|oci)$/i.test(name)) return false;
  return parseImageReference(name) !== undefined;
}

/** Docker Hub's implicit registry and "library/" namespace made explicit. */
export function normalizeRepository(repository: string, registry?: string): string {
  let repo = repository.replace(/^\/+|\/+$/g, '');
  const first = repo.split('/')[0]!;
  const hasRegistry =
    repo.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasRegistry && registry) repo = `${registry.replace(/\/+$/, '')}/${repo}`;
  else if (!hasRegistry) repo = `docker.io/${repo}`;
  repo = repo.replace(
    /^(index\.docker\.io|registry-1\.docker\.io|registry\.hub\.docker\.com)\//,
    'docker.io/',
  );
  if (/^docker\.io\/[^/]+$/.test(repo)) repo = repo.replace(/^docker\.io\//, 'docker.io/library/');
  return repo.toLowerCase();
}

/** An image asset from a reference, or undefined when it does not parse as one. */
export function imageAsset(
  reference: string | undefined,
  extra: Partial<AssetRef> = {},
): AssetRef | undefined {
  const parsed = reference ? parseImageReference(reference) : undefined;
  if (!parsed) return undefined;
  return { kind: 'image', ...parsed, ...extra };
}

/** The digest part of "repo@sha256:…". */
export function digestOf(repoDigest: string | undefined): string | undefined {
  const match = repoDigest ? /@([a-z0-9]+:[a-f0-9]{32,})$/i.exec(repoDigest) : undefined;
  return match?.[1]?.toLowerCase();
}
