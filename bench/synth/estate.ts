// A synthetic estate for the onboarding benchmark, written as one `trivy k8s -f json` report (the
// `Resources` layout): N container workloads, each running its own image built on one of a few base
// operating systems, in S scopes of T teams. Vulnerable packages are shared the way they are in a real
// estate: a team standardizes on one or two bases, every image of a base carries the base's usual
// suspects (openssl, glibc, zlib…, drawn with a Zipf skew) and a long tail of rarer ones, and each
// package brings one to four CVEs. About `fixes` distinct (OS, package) pairs exist across the estate.
// Some CVEs are real CISA KEV entries when the caller passes them, so the estate has urgent work too.
// Deterministic for a given seed; streamed, so a million findings never sit in memory.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

export interface EstateOptions {
  exposures: number;
  assets: number;
  scopes: number;
  /** Owners (teams) per scope. */
  teamsPerScope: number;
  /** Distinct fixes (OS × package) across the estate, about. */
  fixes: number;
  /** Real KEV CVE ids to give to some packages (urgent work), if any. */
  kevCves?: string[];
  seed?: number;
  /** The report's scan time. */
  createdAt: Date;
}

export interface EstateResult {
  bytes: number;
  exposures: number;
  assets: number;
  /** Distinct (OS type, package) pairs written. */
  fixes: number;
}

interface Base {
  /** Trivy result Type: the package manager family. */
  type: string;
  os: string;
}

const BASES: Base[] = [
  { type: 'debian', os: 'debian 12.4' },
  { type: 'debian', os: 'debian 11.8' },
  { type: 'ubuntu', os: 'ubuntu 22.04' },
  { type: 'ubuntu', os: 'ubuntu 20.04' },
  { type: 'alpine', os: 'alpine 3.19.1' },
  { type: 'alpine', os: 'alpine 3.18.5' },
  { type: 'redhat', os: 'redhat 9.3' },
  { type: 'redhat', os: 'redhat 8.9' },
  { type: 'amazon', os: 'amazon 2023' },
  { type: 'photon', os: 'photon 5.0' },
];
const STEMS = [
  'openssl',
  'glibc',
  'zlib',
  'curl',
  'libxml2',
  'sqlite',
  'expat',
  'krb5',
  'gnutls',
  'systemd',
  'bash',
  'tar',
  'gzip',
  'perl',
  'python3',
  'ncurses',
  'pam',
  'shadow',
  'util-linux',
  'e2fsprogs',
  'libtasn1',
  'nghttp2',
  'libssh2',
  'libpng',
  'libjpeg',
  'freetype',
  'harfbuzz',
  'pcre2',
  'libgcrypt',
  'nss',
];
const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'];
const VECTORS = [
  'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
  'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H',
  'CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N',
  'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N',
  'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H',
];

/** mulberry32: small, fast, deterministic. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An index in [0, n) drawn with a Zipf(1) skew: low indices are common, the tail is long. */
function zipf(rand: () => number, n: number, harmonic: number): number {
  let u = rand() * harmonic;
  for (let k = 1; k <= n; k++) {
    u -= 1 / k;
    if (u <= 0) return k - 1;
  }
  return n - 1;
}

/** The image repository of asset `i` (scope and team in the path, as registries are organized). */
export function imageOf(
  i: number,
  o: Pick<EstateOptions, 'scopes' | 'teamsPerScope' | 'assets'>,
): {
  repo: string;
  scope: number;
  team: number;
} {
  const teams = o.scopes * o.teamsPerScope;
  const team = i % teams;
  const scope = Math.floor(team / o.teamsPerScope);
  return {
    repo: `registry.example.com/scope-${scope}/team-${team}/svc-${i}`,
    scope,
    team,
  };
}

export async function writeEstate(file: string, o: EstateOptions): Promise<EstateResult> {
  const rand = random(o.seed ?? 20261207);
  const packagesPerBase = Math.max(1, Math.round(o.fixes / BASES.length));
  const harmonic = Array.from({ length: packagesPerBase }, (_, k) => 1 / (k + 1)).reduce((a, b) => a + b, 0);
  const teams = o.scopes * o.teamsPerScope;
  // Each team builds on one base, some on a second one too.
  const teamBases = Array.from({ length: teams }, () => {
    const first = Math.floor(rand() * BASES.length);
    return rand() < 0.3
      ? [first, (first + 1 + Math.floor(rand() * (BASES.length - 1))) % BASES.length]
      : [first];
  });
  // Package p of base b: a stable name and 1–4 CVEs (some of them real KEV entries).
  const cvesOf = new Map<string, { id: string; severity: string; vector: string; fixed: string }[]>();
  let kevNext = 0;
  const packageCves = (b: number, p: number) => {
    const key = `${b}:${p}`;
    let cves = cvesOf.get(key);
    if (!cves) {
      const n = 1 + Math.floor(rand() * 4);
      cves = Array.from({ length: n }, (_, j) => {
        const kev =
          o.kevCves && kevNext < o.kevCves.length && rand() < 0.02 ? o.kevCves[kevNext++] : undefined;
        return {
          id: kev ?? `CVE-2025-${String(10000 + b * 5000 + p * 5 + j)}`,
          severity: SEVERITIES[Math.floor(rand() * SEVERITIES.length)]!,
          vector: VECTORS[Math.floor(rand() * VECTORS.length)]!,
          fixed: `${1 + (p % 7)}.${j + 1}.${(b * 3 + p) % 10}-1`,
        };
      });
      cvesOf.set(key, cves);
    }
    return cves;
  };
  const pkgName = (p: number) =>
    `${STEMS[p % STEMS.length]}${p >= STEMS.length ? `-${Math.floor(p / STEMS.length)}` : ''}`;

  const out = createWriteStream(file);
  let bytes = 0;
  const write = async (s: string) => {
    bytes += Buffer.byteLength(s);
    if (!out.write(s)) await once(out, 'drain');
  };
  await write(
    `{\n  "ClusterName": "bench-estate",\n  "CreatedAt": "${o.createdAt.toISOString()}",\n  "Resources": [\n`,
  );
  let written = 0;
  const fixes = new Set<string>();
  for (let i = 0; i < o.assets; i++) {
    // Exactly `exposures` in all: the remainder goes to the first assets.
    const want = Math.floor(o.exposures / o.assets) + (i < o.exposures % o.assets ? 1 : 0);
    const { repo, team } = imageOf(i, o);
    const bases = teamBases[team]!;
    const b = bases[Math.floor(rand() * bases.length)]!;
    const base = BASES[b]!;
    const vulns: string[] = [];
    const seen = new Set<string>();
    for (let guard = 0; vulns.length < want && guard < want * 50; guard++) {
      const p = zipf(rand, packagesPerBase, harmonic);
      for (const cve of packageCves(b, p)) {
        if (vulns.length >= want || seen.has(cve.id)) continue;
        seen.add(cve.id);
        fixes.add(`${b}:${p}`);
        vulns.push(
          `            {\n              "VulnerabilityID": "${cve.id}",\n              "PkgName": "${pkgName(p)}",\n` +
            `              "InstalledVersion": "0.${p % 9}.${b}-1",\n              "FixedVersion": "${cve.fixed}",\n` +
            `              "Status": "fixed",\n              "Severity": "${cve.severity}",\n` +
            `              "Title": "${pkgName(p)}: synthetic weakness ${cve.id}",\n` +
            `              "CVSS": { "nvd": { "V3Vector": "${cve.vector}" } }\n            }`,
        );
      }
    }
    written += vulns.length;
    await write(
      `${i ? ',\n' : ''}    {\n      "Namespace": "team-${team}",\n      "Kind": "Deployment",\n      "Name": "svc-${i}",\n` +
        `      "Results": [\n        {\n          "Target": "${repo}:1.${i % 20} (${base.os})",\n` +
        `          "Class": "os-pkgs",\n          "Type": "${base.type}",\n          "Vulnerabilities": [\n${vulns.join(',\n')}\n          ]\n        }\n      ]\n    }`,
    );
  }
  await write(`\n  ]\n}\n`);
  out.end();
  await once(out, 'finish');
  return { bytes, exposures: written, assets: o.assets, fixes: fixes.size };
}
