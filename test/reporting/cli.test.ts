// `ctem digest` as a user runs it (the real command in a child process) on the seeded estate.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { NOW, seedEstate } from './seed.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
let db: TestDatabase;
let cwd: string;

// The command runs as on the estate's Monday noon (seed.ts), whatever the date the test runs.
async function ctem(
  args: string[],
  env: NodeJS.ProcessEnv = { CTEM_NOW: NOW.toISOString() },
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(root, 'bin/ctem.js'), ...args], {
      cwd,
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        CTEM_CONFIG: '',
        CTEM_HOME: path.join(cwd, '.ctem'),
        ...env,
      },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  db = await testDatabase();
  await seedEstate(db.pool);
  cwd = await mkdtemp(path.join(os.tmpdir(), 'ctem-digest-cli-'));
  await writeFile(
    path.join(cwd, 'ctem.yaml'),
    `version: 1
people:
  - { id: olivia, name: Olivia Owner }
scopes:
  - { name: prod, cadence: 7d, roles: { owner: [olivia] } }
  - { name: dev, cadence: 1d, roles: { owner: [olivia] } }
`,
  );
});

describe('ctem digest', { timeout: 180_000 }, () => {
  it('says in a sentence that the --out folder does not exist, before any work', async () => {
    const r = await ctem(['digest', '--week', '2026-W47', '--out', 'no-such-folder/digest.html']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `ctem: --out no-such-folder/digest.html: the folder ${path.join(cwd, 'no-such-folder')} does not exist; create it first (nothing was written)\n`,
    );
  });

  it('writes the standalone page of the asked week to --out', async () => {
    const r = await ctem(['digest', '--week', '2026-W47', '--out', 'digest.html']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /^ctem: digest 2026-W47 written to digest\.html \(health \d+, [+-]\d+ vs last week\)\n$/,
    );
    const html = await readFile(path.join(cwd, 'digest.html'), 'utf8');
    expect(html).toContain('<h1>CTEM weekly digest · 2026-W47</h1>');
    expect(html.match(/<svg /g)?.length).toBeGreaterThanOrEqual(4);
    // Self-contained: no script, stylesheet link, remote image or font.
    expect(html).not.toMatch(/<script|<link|<img|url\(|src="|href="http/i);
    expect(html).toContain('Weakness E1'); // top weaknesses by title
    // Written whole: no partial file left beside it.
    expect((await readdir(cwd)).filter((f) => f.includes('.partial'))).toEqual([]);
  });

  it('gives the figures as JSON', async () => {
    const r = await ctem(['digest', '--week', '2026-W47', '--format', 'json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as {
      health: { score: number; before: number };
      metrics: { all: { current: { open: Record<string, number> } } };
    };
    expect([report.health.score, report.health.before]).toEqual([8, 7]);
    expect(report.metrics.all.current.open).toEqual({ act: 2, attend: 1, 'track*': 0, track: 1 });
  });

  it('refuses a week that is not one, or has not started, with one clear sentence', async () => {
    const bad = await ctem(['digest', '--week', '2026-47']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--week 2026-47 is not an ISO week; write it as YYYY-Www/);
    const future = await ctem(['digest', '--week', '2026-W49']);
    expect(future.code).toBe(2);
    expect(future.stderr).toBe(
      'ctem: --week 2026-W49 has not started yet; pick a past or the current week\n',
    );
    expect(future.stdout).toBe('');
  });

  it('takes the last complete week from its clock, and refuses a CTEM_NOW that is not an instant', async () => {
    const last = await ctem(['digest', '--format', 'json']);
    expect(last.code).toBe(0);
    expect((JSON.parse(last.stdout) as { metrics: { week: { label: string } } }).metrics.week.label).toBe(
      '2026-W47',
    );
    const bad = await ctem(['digest'], { CTEM_NOW: 'next monday' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(
      'ctem: CTEM_NOW="next monday" is not an instant; write it as an ISO 8601 date and time with its zone, e.g. 2026-11-23T12:00:00Z, or unset it\n',
    );
  });
});
