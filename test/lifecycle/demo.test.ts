// `ctem demo` as a user runs it on a fresh clone: the whole loop on the bundled sample data, on its
// own embedded stack, exiting 0 with every exposure verified fixed and the stack stopped.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');

describe('ctem demo', () => {
  it('runs discovery → triage → decision → patch → re-scan → verified, says so step by step, and stops cleanly', async () => {
    const cwd = await mkdtemp(path.join(os.tmpdir(), 'ctem-demo-test-'));
    const before = new Set((await readdir(os.tmpdir())).filter((f) => f.startsWith('ctem-demo-')));
    // Not the test run's DATABASE_URL or config: the demo brings its own embedded stack.
    const env = {
      ...process.env,
      DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
      CTEM_CONFIG: '',
      CTEM_HOME: path.join(cwd, '.ctem'),
    };
    const { stdout } = await run(process.execPath, [path.join(root, 'bin/ctem.js'), 'demo'], {
      cwd,
      env,
      timeout: 240_000,
    });
    const steps = stdout.split('\n').filter((l) => /^\d\. /.test(l));
    expect(steps.map((s) => s.slice(0, 2))).toEqual(['1.', '2.', '3.', '4.', '5.', '6.', '7.', '8.']);
    expect(stdout).toMatch(/scan 1: 3 findings on 1 asset\(s\), 3 new exposures; 3 workflows started/);
    // One decision request per remediation unit: openssl (2 CVEs) and libexpat1.
    expect(stdout.match(/\[decision-request\] to @dana/g)).toHaveLength(2);
    expect(stdout).toMatch(
      /Upgrade openssl to 3\.0\.14-1~deb12u2 or later .* fixes CVE-2024-5535, CVE-2024-6119/,
    );
    expect(stdout).toMatch(/max tries to approve .*: refused — max holds no role in scope shop/);
    expect(stdout).toContain('ticket-skipped: no ticket system configured for scope shop');
    // One plan per unit, shown to the approver and approved before anything ran.
    expect(
      stdout.match(
        / - patch-ru:shop:dana:.*: demo plan: \d package upgrade\(s\) on registry\.example\.com\/shop\/web/g,
      ),
    ).toHaveLength(2);
    expect(stdout.match(/sam approves the plan/g)).toHaveLength(2);
    expect(stdout).toMatch(
      /patch-succeeded: Patch of ru:shop:dana:.* applied on registry\.example\.com\/shop\/web/,
    );
    expect(stdout).toMatch(
      /evidence from registry\.example\.com\/shop\/web: demo executor: simulated \d upgrade\(s\); no command ran/,
    );
    expect(stdout.match(/: resolved, verified by scan \d+ at /g)).toHaveLength(3);
    expect(stdout).toContain('Done: 3 of 3 exposures verified fixed by a re-scan.');
    expect(stdout.trim().split('\n').at(-1)).toBe('Stopping the stack…');
    // Its scratch folder is gone.
    const after = (await readdir(os.tmpdir())).filter(
      (f) => f.startsWith('ctem-demo-') && !before.has(f) && !f.startsWith('ctem-demo-test-'),
    );
    expect(after).toEqual([]);
  }, 300_000);
});
