// Synthesizes a Trivy schema-2 JSON report of any size for benchmarks: N vulnerabilities spread over M
// targets, shaped and indented like `trivy image -f json` output (two-space MarshalIndent), written
// as a stream so a 1 GB report never sits in memory.

import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

export interface TrivySynthOptions {
  vulnerabilities: number;
  targets: number;
  /** Same seed, same bytes. */
  seed?: number;
  artifactName?: string;
}

export interface TrivySynthResult {
  bytes: number;
  vulnerabilities: number;
  targets: number;
}

const PACKAGES = [
  'openssl',
  'libssl3',
  'curl',
  'libcurl4',
  'zlib1g',
  'bash',
  'glibc',
  'libc6',
  'perl-base',
  'tar',
  'gzip',
  'libxml2',
  'sqlite3',
  'python3.11',
  'libgnutls30',
  'apt',
  'dpkg',
  'ncurses-base',
  'libpam0g',
  'systemd',
];
const STATUSES = ['affected', 'fixed', 'will_not_fix', 'fix_deferred', 'under_investigation'];
const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN'];
const WORDS = [
  'buffer',
  'overflow',
  'in',
  'the',
  'parser',
  'allows',
  'remote',
  'attackers',
  'to',
  'cause',
  'a',
  'denial',
  'of',
  'service',
  'via',
  'crafted',
  'input',
  'memory',
  'corruption',
  'when',
  'handling',
  'certificate',
  'chains',
  'with',
  'long',
  'names',
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

function vulnerability(next: () => number, n: number): object {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
  const year = 2014 + Math.floor(next() * 12);
  const id = `CVE-${year}-${String(1000 + ((n * 7919) % 98000)).padStart(5, '0')}`;
  const pkg = pick(PACKAGES);
  const status = pick(STATUSES);
  const words = Array.from({ length: 40 + Math.floor(next() * 60) }, () => pick(WORDS)).join(' ');
  const v3 = (1 + next() * 9).toFixed(1);
  return {
    VulnerabilityID: id,
    PkgID: `${pkg}@1.${n % 50}.${n % 7}-1`,
    PkgName: pkg,
    PkgIdentifier: {
      PURL: `pkg:deb/debian/${pkg}@1.${n % 50}.${n % 7}-1?arch=amd64&distro=debian-12`,
      UID: (n * 2654435761).toString(16).slice(0, 16),
    },
    InstalledVersion: `1.${n % 50}.${n % 7}-1`,
    FixedVersion: status === 'fixed' ? `1.${n % 50}.${(n % 7) + 1}-1` : '',
    Status: status,
    Layer: { DiffID: `sha256:${'ab12cd34'.repeat(8)}` },
    SeveritySource: 'debian',
    PrimaryURL: `https://avd.aquasec.com/nvd/${id.toLowerCase()}`,
    DataSource: {
      ID: 'debian',
      Name: 'Debian Security Tracker',
      URL: 'https://salsa.debian.org/security-tracker-team/security-tracker',
    },
    Title: `${pkg}: ${words.slice(0, 60)}`,
    Description: words,
    Severity: pick(SEVERITIES),
    CweIDs: [`CWE-${20 + (n % 800)}`],
    VendorSeverity: { debian: 1 + (n % 3), nvd: 1 + (n % 4) },
    CVSS: {
      nvd: { V3Vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', V3Score: Number(v3) },
      redhat: { V3Vector: 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N', V3Score: 5.5 },
    },
    References: [
      `https://access.redhat.com/security/cve/${id}`,
      `https://nvd.nist.gov/vuln/detail/${id}`,
      `https://security-tracker.debian.org/tracker/${id}`,
      `https://www.cve.org/CVERecord?id=${id}`,
    ],
    PublishedDate: `${year}-03-14T12:00:00Z`,
    LastModifiedDate: `${year + 1}-01-02T08:30:00Z`,
  };
}

function indent(json: string, spaces: number): string {
  const pad = ' '.repeat(spaces);
  return pad + json.replaceAll('\n', `\n${pad}`);
}

/** Stream a Trivy schema-2 report with `vulnerabilities` entries over `targets` results to `path`. */
export async function writeTrivyReport(path: string, options: TrivySynthOptions): Promise<TrivySynthResult> {
  const next = random(options.seed ?? 1);
  const targets = Math.max(1, options.targets);
  const out = createWriteStream(path);
  let bytes = 0;
  const write = async (text: string): Promise<void> => {
    bytes += Buffer.byteLength(text);
    if (!out.write(text)) await once(out, 'drain');
  };
  const name = options.artifactName ?? 'registry.example.com/shop/checkout:1.4.2';
  const header = {
    SchemaVersion: 2,
    CreatedAt: '2026-01-15T08:58:29.82753744Z',
    ArtifactName: name,
    ArtifactType: 'container_image',
    Metadata: {
      OS: { Family: 'debian', Name: '12.4' },
      ImageID: `sha256:${'0f1e2d3c'.repeat(8)}`,
      RepoTags: [name],
      RepoDigests: [`${name.replace(/:[^:/]+$/, '')}@sha256:${'9a8b7c6d'.repeat(8)}`],
    },
  };
  const headerJson = JSON.stringify(header, null, 2);
  await write(`${headerJson.slice(0, -2)},\n  "Results": [\n`);
  let written = 0;
  for (let t = 0; t < targets; t++) {
    const count =
      Math.floor(options.vulnerabilities / targets) + (t < options.vulnerabilities % targets ? 1 : 0);
    const target = t === 0 ? `${name} (debian 12.4)` : `app/lib${t}/package-lock.json`;
    await write(
      `    {\n      "Target": ${JSON.stringify(target)},\n      "Class": "${t === 0 ? 'os-pkgs' : 'lang-pkgs'}",\n      "Type": "${t === 0 ? 'debian' : 'npm'}",\n      "Vulnerabilities": [\n`,
    );
    let batch = '';
    for (let i = 0; i < count; i++) {
      batch +=
        indent(JSON.stringify(vulnerability(next, written++), null, 2), 8) + (i + 1 < count ? ',\n' : '\n');
      if (batch.length > 256 * 1024) {
        await write(batch);
        batch = '';
      }
    }
    await write(`${batch}      ]\n    }${t + 1 < targets ? ',' : ''}\n`);
  }
  await write('  ]\n}\n');
  out.end();
  await once(out, 'finish');
  return { bytes, vulnerabilities: written, targets };
}
