// `ctem demo` as a user runs it on a fresh clone: the whole loop on the bundled sample data, on its
// own embedded stack, exiting 0 with every exposure verified fixed (but the one whose risk it accepts) and the stack stopped.
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
    expect(stdout).toMatch(/scan 1: 10 findings on 3 image\(s\), 10 new exposures/);
    // Ten exposures, three fixes: three campaigns and three workflows, not ten.
    expect(stdout).toContain('10 exposures → 3 campaigns, 3 durable workflows');
    // Only the KEV campaign (libwebp7, CVE-2023-4863) is urgent: one message at once, before the queue.
    const urgent = stdout.match(/\[decision-request\] to @dana: .*/g) ?? [];
    expect(urgent).toHaveLength(1);
    expect(urgent[0]).toMatch(/Upgrade libwebp7 .* in CISA KEV/);
    // Everything else waits for one daily queue message listing every campaign.
    expect(stdout.match(/\[queue\] to @dana: .*/g)).toEqual([
      expect.stringMatching(/3 campaigns, 10 exposures waiting for your decision/),
    ]);
    expect(stdout).toMatch(/max tries to approve .*: refused — max holds no role in scope shop/);
    // An exception on one exposure, then one decision per campaign for the rest.
    expect(stdout).toMatch(/sam accepts the risk of 3:CVE-2024-45492 .*: risk-accepted/);
    expect(stdout).toMatch(/dana approves "Upgrade libexpat1 .*": 1 exposure\(s\) now remediating/);
    expect(stdout).toMatch(/dana approves "Upgrade openssl .*": 6 exposure\(s\) now remediating/);
    expect(stdout).toContain('ticket-skipped');
    // One rollout per campaign, canary first where there is more than one image, each plan approved.
    expect(stdout).toMatch(
      /Upgrade openssl .* on 3 assets: 3 image\(s\), canary first \(registry\.example\.com\/shop\/web\), then the rest/,
    );
    expect(stdout).toMatch(
      /Upgrade libexpat1 .*: 1 image\(s\), all at once \(a single image needs no canary\)/,
    );
    expect(stdout.match(/sam approves the plan/g)).toHaveLength(3);
    expect(stdout).toMatch(
      /patch-succeeded\s+system\s+Patch of cmp:shop:dana:\S+ applied on registry\.example\.com\/shop\/web/,
    );
    expect(stdout).toMatch(
      /evidence from registry\.example\.com\/shop\/web: demo executor: simulated \d upgrade\(s\); no command ran/,
    );
    expect(stdout.match(/: resolved, verified by scan \d+ at /g)).toHaveLength(9);
    expect(stdout).toMatch(/3:CVE-2024-45492: risk-accepted by sam until /);
    expect(stdout).toContain(
      'Done: 9 of 10 exposures verified fixed by a re-scan, in 3 campaigns; 1 risk accepted until it expires.',
    );
    expect(stdout.trim().split('\n').at(-1)).toBe('Stopping the stack…');
    // Its scratch folder is gone.
    const after = (await readdir(os.tmpdir())).filter(
      (f) => f.startsWith('ctem-demo-') && !before.has(f) && !f.startsWith('ctem-demo-test-'),
    );
    expect(after).toEqual([]);
  }, 300_000);
});
