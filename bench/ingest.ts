// `npm run bench:ingest [-- --findings N --assets N --format nessus|trivy|all --keep DIR]`
//
// Synthesizes a Nessus XML and a Trivy JSON report of the given size (default 1,000,000 findings over
// 20,000 assets; a Trivy image report has one asset, the image, its findings spread over `assets`
// result targets), then measures, each in its own child process so peak RSS is the phase's own:
//   parse   — parseReport only, MB/s of report                       (target ≥ 50 MB/s)
//   ingest  — ctem ingest into an empty PostgreSQL, findings/s end to end: hash, parse, COPY, resolve,
//             merge, commit                                           (target ≥ 50,000 findings/s)
//   rescan  — a later scan of the same estate into the filled inventory (updates, gone, new)
//   rss     — peak resident memory of the largest phase               (target ≤ 300 MB)
//   db      — the same number of findings generated in memory (no file, no parser) through the same
//             ingest: what the COPY + set-based merge path sustains on its own.
// Each ingest figure carries `steps`, milliseconds per ingest step (stage = parse + COPY).
// PostgreSQL is a real embedded server started by the bench (durable settings unless --ephemeral).
// One JSON line per figure on stdout, with its target; progress on stderr.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Finding } from '../domain/finding.ts';
import { writeSyntheticNessus } from './synth/nessus.ts';
import { writeTrivyReport } from './synth/trivy.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

interface PhaseResult {
  phase: 'parse' | 'ingest' | 'db';
  seconds: number;
  findings: number;
  bytes: number;
  maxRssMb: number;
  summary?: unknown;
}

const { values } = parseArgs({
  options: {
    findings: { type: 'string', default: '1000000' },
    assets: { type: 'string', default: '20000' },
    format: { type: 'string', default: 'all' },
    keep: { type: 'string' },
    ephemeral: { type: 'boolean', default: false },
    // Internal: run one phase in this (child) process.
    phase: { type: 'string' },
    file: { type: 'string' },
    url: { type: 'string' },
    assetsInMemory: { type: 'string' },
    findingsInMemory: { type: 'string' },
  },
  allowPositionals: false,
});

if (values.phase) await runPhase();
else await main();

async function main(): Promise<void> {
  const findings = Number(values.findings);
  const assets = Number(values.assets);
  if (!Number.isInteger(findings) || findings < 1 || !Number.isInteger(assets) || assets < 1)
    throw new Error('--findings and --assets must be positive integers');
  const formats = values.format === 'all' ? ['nessus', 'trivy'] : [values.format!];
  for (const f of formats)
    if (f !== 'nessus' && f !== 'trivy') throw new Error(`--format ${f}: must be nessus, trivy or all`);

  const workDir = values.keep
    ? path.resolve(values.keep)
    : mkdtempSync(path.join(os.tmpdir(), 'ctem-bench-'));
  mkdirSync(workDir, { recursive: true });
  chmodSync(workDir, 0o755);
  const { startEmbeddedPostgres, ensureDatabase } = await import('../runtime/postgres.ts');
  const { freePort } = await import('../runtime/ports.ts');
  const pgDir = path.join(workDir, `pg-${process.pid}`);
  const server = await startEmbeddedPostgres({
    dataDir: pgDir,
    port: await freePort(),
    ephemeral: values.ephemeral,
  });
  let peakRss = 0;
  try {
    for (const format of formats) {
      const [first, later] = await synthesize(format, findings, assets, workDir);
      const url = await ensureDatabase(server.url, `bench_${format}_${process.pid}`);
      const parse = await child(['--phase', 'parse', '--file', first]);
      const mb = parse.bytes / 1e6;
      figure(format, 'parse_mb_per_s', mb / parse.seconds, 'MB/s', 50, '>=', {
        megabytes: round(mb),
        findings: parse.findings,
        seconds: round(parse.seconds),
      });
      const ingest = await child(['--phase', 'ingest', '--file', first, '--url', url]);
      figure(format, 'ingest_findings_per_s', ingest.findings / ingest.seconds, 'findings/s', 50_000, '>=', {
        findings: ingest.findings,
        seconds: round(ingest.seconds),
        summary: ingest.summary,
      });
      const rescan = await child(['--phase', 'ingest', '--file', later, '--url', url]);
      figure(format, 'rescan_findings_per_s', rescan.findings / rescan.seconds, 'findings/s', 50_000, '>=', {
        findings: rescan.findings,
        seconds: round(rescan.seconds),
        summary: rescan.summary,
      });
      const rss = Math.max(parse.maxRssMb, ingest.maxRssMb, rescan.maxRssMb);
      peakRss = Math.max(peakRss, rss);
      figure(format, 'peak_rss_mb', rss, 'MB', 300, '<=', {
        parse: parse.maxRssMb,
        ingest: ingest.maxRssMb,
        rescan: rescan.maxRssMb,
        reportMegabytes: round(mb),
      });
    }
    const dbUrl = await ensureDatabase(server.url, `bench_db_${process.pid}`);
    const db = await child([
      '--phase',
      'db',
      '--url',
      dbUrl,
      '--findingsInMemory',
      String(findings),
      '--assetsInMemory',
      String(assets),
    ]);
    figure('generated', 'db_path_findings_per_s', db.findings / db.seconds, 'findings/s', 50_000, '>=', {
      findings: db.findings,
      seconds: round(db.seconds),
      maxRssMb: db.maxRssMb,
      summary: db.summary,
    });
  } finally {
    await server.stop();
    rmSync(pgDir, { recursive: true, force: true });
    if (!values.keep) rmSync(workDir, { recursive: true, force: true });
  }
}

/** The report of week 1 and a later one of the same estate (a few findings fixed, a few new). */
async function synthesize(
  format: string,
  findings: number,
  assets: number,
  dir: string,
): Promise<[string, string]> {
  const files: [string, string] = [
    path.join(dir, `synthetic-${findings}-${assets}.${format === 'nessus' ? 'nessus' : 'trivy.json'}`),
    path.join(dir, `synthetic-${findings}-${assets}-later.${format === 'nessus' ? 'nessus' : 'trivy.json'}`),
  ];
  for (const [i, file] of files.entries()) {
    if (existsSync(file) && statSync(file).size > 0) continue;
    const started = Date.now();
    if (format === 'nessus') {
      // `findings` is what the parser will yield (ReportItems with 1–3 CVEs fan out into one each).
      await writeSyntheticNessus(file, {
        findings,
        hosts: assets,
        cveRatio: i === 0 ? 0.6 : 0.59,
        maxCvesPerItem: 3,
      });
    } else {
      await writeTrivyReport(file, { vulnerabilities: findings, targets: assets, seed: i === 0 ? 1 : 2 });
    }
    log(
      `synthesized ${file} (${round(statSync(file).size / 1e6)} MB) in ${round((Date.now() - started) / 1000)} s`,
    );
  }
  return files;
}

function figure(
  format: string,
  name: string,
  value: number,
  unit: string,
  target: number,
  op: '>=' | '<=',
  detail: Record<string, unknown>,
): void {
  const ok = op === '>=' ? value >= target : value <= target;
  process.stdout.write(
    `${JSON.stringify({ bench: 'ingest', format, figure: name, value: round(value), unit, target: `${op} ${target}`, ok, ...detail })}\n`,
  );
}

async function child(args: string[]): Promise<PhaseResult> {
  const proc = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
  if (code !== 0) throw new Error(`bench phase ${args.join(' ')} failed with exit code ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as PhaseResult;
}

/** One phase in this process; prints one JSON line. */
async function runPhase(): Promise<void> {
  const started = process.hrtime.bigint();
  let findings = 0;
  let summary: unknown;
  if (values.phase === 'db') {
    const { createPool } = await import('../runtime/pool.ts');
    const { migrate } = await import('../runtime/migrate.ts');
    const { ingestReport } = await import('../ingest/ingest.ts');
    const pool = createPool(values.url!, 4);
    await migrate(pool);
    const t0 = process.hrtime.bigint();
    const s = await ingestReport(
      pool,
      {
        source: 'generated',
        format: 'nessus',
        findings: generatedFindings(Number(values.findingsInMemory), Number(values.assetsInMemory)),
      },
      { scopes: [] },
    );
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await pool.end();
    emit({
      phase: 'db',
      seconds,
      findings: s.findings,
      bytes: 0,
      maxRssMb: maxRssMb(),
      summary: { exposures: s.exposures, steps: s.steps },
    });
    return;
  }
  const file = values.file!;
  const bytes = statSync(file).size;
  if (values.phase === 'parse') {
    const { parseReport } = await import('../scanners/registry.ts');
    for await (const _ of parseReport(file)) findings++;
  } else {
    const { createPool } = await import('../runtime/pool.ts');
    const { migrate } = await import('../runtime/migrate.ts');
    const { ingestFile } = await import('../ingest/file.ts');
    const pool = createPool(values.url!, 4);
    await migrate(pool);
    const t0 = process.hrtime.bigint();
    const s = await ingestFile(pool, file, { scopes: [] });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await pool.end();
    findings = s.findings;
    summary = { assets: s.assets, exposures: s.exposures, skipped: s.skippedFindings, steps: s.steps };
    emit({ phase: 'ingest', seconds, findings, bytes, maxRssMb: maxRssMb(), summary });
    return;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  emit({ phase: 'parse', seconds, findings, bytes, maxRssMb: maxRssMb() });
}

/** Findings shaped like a network scanner's, built in memory: `n` over `hosts` hosts. */
async function* generatedFindings(n: number, hosts: number): AsyncIterable<Finding> {
  const assets = Array.from({ length: hosts }, (_, h) => ({
    kind: 'host' as const,
    fqdn: `host-${h}.corp.example.com`,
    hostname: `host-${h}`,
    ips: [`10.${(h >> 16) & 255}.${(h >> 8) & 255}.${h & 255}`],
  }));
  for (let i = 0; i < n; i++) {
    yield {
      scanner: 'nessus',
      asset: assets[i % hosts]!,
      weaknessKey: `CVE-20${10 + (i % 14)}-${10000 + ((i * 7) % 89999)}`,
      kind: 'vulnerability',
      title: `Synthetic Package < 1.${i % 40} Multiple Vulnerabilities`,
      severity: 'high',
      ruleId: String(100000 + (i % 50000)),
      description:
        'The version of the synthetic package installed on the remote host is affected by multiple vulnerabilities.',
      solution: `Upgrade to version 1.${(i % 40) + 1}.0 or later.`,
      service: { port: 443, protocol: 'tcp', name: 'www' },
      package: {
        name: `synthetic-${i % 200}`,
        version: `1.${i % 40}.${i % 7}`,
        fixedVersion: `1.${(i % 40) + 1}.0`,
      },
      evidence: `Installed version : 1.${i % 40}.${i % 7}\nFixed version     : 1.${(i % 40) + 1}.0`,
      cvss: [{ version: '3.1', vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N', score: 7.5 }],
    };
  }
}

function emit(r: PhaseResult): void {
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

function maxRssMb(): number {
  return round(process.resourceUsage().maxRSS / 1024);
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

function log(line: string): void {
  process.stderr.write(`bench:ingest: ${line}\n`);
}
