import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Finding } from '../../domain/finding.ts';
import { writeTrivyReport } from '../../bench/synth/trivy.ts';
import { parseReport } from '../../scanners/registry.ts';
import { runParse } from './parse.ts';

const ROOT = join(import.meta.dirname, '../..');
const SCANS = join(ROOT, '../shared/data/scans');
const FIXTURES = join(ROOT, 'test/fixtures/scans');

// A minimal `ctem` with only this command, run from source, for the process behaviour (stdout, stderr,
// exit code, EPIPE); the real bin/ctem.js is run at the end.
const HARNESS = [
  "import { Command } from 'commander';",
  "import { defineParse } from './cli/commands/parse.ts';",
  "const program = new Command('ctem').exitOverride();",
  "defineParse(program.command('parse'));",
  'await program.parseAsync(process.argv);',
].join('\n');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function ctem(args: string[], viaBin = false): Promise<Run> {
  const argv = viaBin
    ? ['bin/ctem.js', ...args]
    : ['--import', 'tsx/esm', '--input-type=module', '-e', HARNESS, 'ctem', ...args];
  const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

async function inProcess(file: string, format?: string): Promise<Run> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const code = await runParse(file, { format }, { stdout, stderr });
  return { code, stdout: out, stderr: err };
}

async function findingsOf(file: string): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const f of parseReport(file)) out.push(f);
  return out;
}

describe('ctem parse (in process)', () => {
  it.skipIf(!existsSync(SCANS))('prints one finding per line, exactly what the parser produced', async () => {
    const file = join(SCANS, 'anchore_grype/many_vulns.json');
    const run = await inProcess(file);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    const lines = run.stdout.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(1509);
    expect(lines.map((l) => JSON.parse(l) as Finding)).toEqual(await findingsOf(file));
  });

  it('bad input: exit 2, one sentence on stderr, nothing on stdout', async () => {
    const run = await inProcess(join(FIXTURES, 'trivy-results-object.json'));
    expect(run).toEqual({
      code: 2,
      stdout: '',
      stderr: `ctem: ${join(FIXTURES, 'trivy-results-object.json')}, line 5, column 14: expected "Results" to be an array but found an object; is this the right --format?\n`,
    });
  });
});

describe('ctem parse (errors after findings)', () => {
  it('a report that breaks after its first finding prints no half result on stdout', async () => {
    // The first vulnerability is complete, the second is cut off.
    const run = await inProcess(join(FIXTURES, 'trivy-truncated.json.part'), 'trivy');
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(
      /^ctem: .*trivy-truncated\.json\.part, line 29, column 25: the file ends inside .*\n$/,
    );
  });
});

describe('ctem parse (as a process)', () => {
  // Created when the tests run, not when they are collected, so a filtered run leaves nothing behind.
  let dir = '';
  let large = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ctem-parse-'));
    large = join(dir, 'large.json');
    await writeTrivyReport(large, { vulnerabilities: 3000, targets: 2, seed: 3 });
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('streams NDJSON and exits 0', async () => {
    const run = await ctem(['parse', large]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3000);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      scanner: 'trivy',
      asset: { imageRepo: 'registry.example.com/shop/checkout' },
    });
  });

  it('--format and its errors', async () => {
    const unknown = await ctem(['parse', '--format', 'trivvy', large]);
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toMatch(
      /^ctem: unknown format "trivvy"; supported formats are trivy, trivy-operator, grype, sarif, .*\n$/,
    );
    const wrong = await ctem(['parse', '--format', 'grype', large]);
    expect(wrong.code).toBe(2);
    expect(wrong.stdout).toBe('');
    expect(wrong.stderr).toBe(
      `ctem: ${large}: this JSON has no "matches" list, so it is not a Grype report; check the file or pass the right --format\n`,
    );
    const missing = await ctem(['parse', join(dir, 'nope.json')]);
    expect(missing).toEqual({
      code: 2,
      stdout: '',
      stderr: `ctem: ${join(dir, 'nope.json')}: no such file; check the path\n`,
    });
  });

  it('stops quietly when the reader goes away (ctem parse big.json | head -1)', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx/esm', '--input-type=module', '-e', HARNESS, 'ctem', 'parse', large],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let first = '';
    for await (const chunk of child.stdout) {
      first += String(chunk);
      if (first.includes('\n')) break;
    }
    // Leaving the loop destroys our end of the pipe, as `head` exiting does.
    child.stdout.destroy();
    const [code] = (await once(child, 'close')) as [number | null];
    expect(JSON.parse(first.split('\n')[0]!)).toMatchObject({ scanner: 'trivy' });
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});

describe('bin/ctem.js parse', () => {
  it.skipIf(!existsSync(SCANS))('prints the findings of a real report and exits 0', async () => {
    const run = await ctem(['parse', join(SCANS, 'trivy/misconfigurations_and_secrets.json')], true);
    expect(run.code).toBe(0);
    expect(
      run.stdout
        .trimEnd()
        .split('\n')
        .map((l) => (JSON.parse(l) as Finding).weaknessKey),
    ).toEqual([
      'CVE-2021-33503',
      'CVE-2021-28363',
      'trivy:AVD-DS-0002@Dockerfile',
      'trivy:secret/github-pat@Dockerfile',
      'trivy:secret/github-pat@secret.txt',
    ]);
  });

  it('bad input exits 2 with one line on stderr', async () => {
    const run = await ctem(['parse', join(FIXTURES, 'trivy-truncated.json.part')], true);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/trivy-truncated\.json\.part, line 29, column 25: the file ends inside/);
  });
});
