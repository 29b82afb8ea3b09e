// `ctem exposures list` and `ctem exposure show`, run as a user runs them (the real command in a
// child process) against a database holding a lifecycle's record.
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { seedExposures } from './support.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
let db: TestDatabase;
let cwd: string;
let ids: string[];

async function ctem(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(root, 'bin/ctem.js'), ...args], {
      cwd,
      env: { ...process.env, DATABASE_URL: db.url, CTEM_CONFIG: '', CTEM_HOME: path.join(cwd, '.ctem') },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  db = await testDatabase();
  cwd = await mkdtemp(path.join(os.tmpdir(), 'ctem-cli-'));
  ({ ids } = await seedExposures(db.pool, {
    scope: 'prod',
    weaknesses: ['CVE-2099-6001', 'CVE-2099-6002', 'CVE-2099-6003'],
    host: 'web-01',
  }));
  const [a, b, c] = ids as [string, string, string];
  await db.pool.query(
    `update exposures set state = 'awaiting-decision', priority = 'act', owner = 'olivia', sla_due = '2030-01-01T00:00:00Z',
            reasons = '["in CISA KEV since 2024-01-01"]', policy_version = '2026.08.1', cvss_contextual = 9.8, kev = true
      where id = $1`,
    [a],
  );
  await db.pool.query(
    `update exposures set state = 'snoozed', priority = 'track', sla_due = '2031-01-01T00:00:00Z' where id = $1`,
    [b],
  );
  await db.pool.query(
    `update exposures set state = 'resolved', priority = 'attend', resolved_at = now(), verified_at = now(), verified_scan_id = 7,
            exposure_seconds = 93784 where id = $1`,
    [c],
  );
  for (const [type, reason] of [
    ['triaged', 'Act: in CISA KEV since 2024-01-01 → Act: fix by 2030-01-01'],
    ['validated', 'observed by scan 1'],
    ['awaiting-decision', 'owner asked to decide (new exposure)'],
  ])
    await db.pool.query(`insert into events (exposure_id, type, reason) values ($1, $2, $3)`, [
      a,
      type,
      reason,
    ]);
});

describe('ctem exposures list / ctem exposure show', () => {
  it('lists open exposures, most urgent first, as a table or JSON', async () => {
    const text = await ctem(['exposures', 'list']);
    expect(text.code).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+STATE\s+PRIORITY\s+CVSS\s+SLA DUE\s+OWNER\s+SCOPE\s+ASSET$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual([ids[0], ids[1]]);
    expect(lines[1]).toMatch(/awaiting-decision\s+Act\s+9\.8 KEV\s/);
    expect(lines[2]).toMatch(/snoozed\s+Track\s+-\s/);

    const json = await ctem(['exposures', 'list', '--json', '--all']);
    const rows = JSON.parse(json.stdout) as {
      id: string;
      state: string;
      priority: string;
      asset: string;
      cvss: number | null;
      kev: boolean;
    }[];
    expect(rows.map((r) => [r.id, r.state, r.priority])).toEqual([
      [ids[0], 'awaiting-decision', 'Act'],
      [ids[2], 'resolved', 'Attend'],
      [ids[1], 'snoozed', 'Track'],
    ]);
    expect(rows[0]!.asset).toBe('web-01');
    expect(rows.map((r) => [r.cvss, r.kev])).toEqual([
      [9.8, true],
      [null, false],
      [null, false],
    ]);
    const snoozed = JSON.parse(
      (await ctem(['exposures', 'list', '--json', '--state', 'snoozed'])).stdout,
    ) as { id: string }[];
    expect(snoozed.map((r) => r.id)).toEqual([ids[1]]);
  });

  it('shows one exposure with its reasons and timeline', async () => {
    const shown = await ctem(['exposure', 'show', ids[0]!]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`${ids[0]}  CVE-2099-6001 on web-01 (scope prod)`);
    expect(shown.stdout).toContain('priority   Act (policy 2026.08.1)');
    expect(shown.stdout).toContain('  - in CISA KEV since 2024-01-01');
    expect(shown.stdout).toMatch(
      /timeline:\n.*triaged\s+system\s+Act: in CISA KEV.*\n.*validated.*\n.*awaiting-decision/,
    );
    const resolved = JSON.parse((await ctem(['exposure', 'show', ids[2]!, '--json'])).stdout) as {
      verified: { scanId: number };
      exposureSeconds: number;
    };
    expect(resolved.verified.scanId).toBe(7);
    expect(Number(resolved.exposureSeconds)).toBe(93784);
    expect((await ctem(['exposure', 'show', ids[2]!])).stdout).toContain(
      'exposed    1d 2h (first seen → verified)',
    );
  });

  it('says what is wrong with a bad argument or an unknown id', async () => {
    const bad = await ctem(['exposures', 'list', '--state', 'sleeping']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--state sleeping is not a state; use one of open, triaged/);
    const missing = await ctem(['exposure', 'show', '999:CVE-0']);
    // Bad input, the same exit code as `ctem explain` gives for an unknown id.
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('ctem: no exposure 999:CVE-0; list them with ctem exposures list --all\n');
    const explained = await ctem(['explain', '999:CVE-0']);
    expect(explained.code).toBe(2);
  });
});
