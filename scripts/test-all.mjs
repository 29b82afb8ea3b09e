#!/usr/bin/env node
// The README's test command: install what the suite needs on a fresh machine (Node 24 included, when
// the machine's is older), run every test once on Node 24, and end with the plain line
// "N passed, N failed" counted from vitest's JSON report (the crash suite's test counted in; the
// skipped tests are on the line before).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { onSupportedNode } from './node.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
if (!process.env.CTEM_SETUP_DONE) {
  const setup = spawnSync(process.execPath, [path.join(root, 'scripts/setup.mjs'), '--system'], {
    stdio: 'inherit',
    cwd: root,
  });
  if (setup.status !== 0) process.exit(setup.status ?? 1);
  process.env.CTEM_SETUP_DONE = '1';
}
// Setup installed Node 24 where the machine's is older: the tests run on it (this script again, as a
// child on that Node, when this one is older).
if (onSupportedNode(fileURLToPath(import.meta.url))) runAll(process.argv.slice(2));

function runAll(args) {
  console.log(`test-all: Node ${process.version}`);
  const report = path.join(root, 'test-results', 'vitest.json');
  mkdirSync(path.dirname(report), { recursive: true });
  rmSync(report, { force: true });
  const vitest = spawnSync(
    process.execPath,
    [
      path.join(root, 'node_modules/vitest/vitest.mjs'),
      'run',
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${report}`,
      ...args,
    ],
    { stdio: 'inherit', cwd: root, env: { ...process.env, FORCE_COLOR: '0' } },
  );

  if (!existsSync(report)) {
    console.log('0 passed, 1 failed');
    console.error('test-all: vitest wrote no report (it crashed before running tests)');
    process.exit(vitest.status || 1);
  }
  // The crash suite (npm run test:chaos: at least 50 SIGKILLs of the worker, Temporal and PostgreSQL
  // restarts), on a full run only; it prints its counts ("chaos: seed …, duplicates=0 …").
  const chaosRuns = !(args.length > 0 || process.env.CTEM_SKIP_CHAOS === '1');
  const chaos = !chaosRuns
    ? { status: 0 }
    : spawnSync(
        process.execPath,
        [path.join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'vitest.chaos.config.ts'],
        { stdio: 'inherit', cwd: root, env: { ...process.env, FORCE_COLOR: '0' } },
      );
  if (chaos.status !== 0) console.error('test-all: the crash suite (npm run test:chaos) failed');
  const r = JSON.parse(readFileSync(report, 'utf8'));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  // Suites that failed to load count as failures even when no test inside them ran.
  const failedSuites = (r.testResults ?? []).filter(
    (s) => s.status === 'failed' && (s.assertionResults ?? []).length === 0,
  ).length;
  const chaosOk = chaos.status === 0;
  const passed = r.numPassedTests + (chaosRuns && chaosOk ? 1 : 0);
  const failed = (r.numFailedTests ?? 0) + failedSuites + (chaosOk ? 0 : 1);
  console.log(`${skipped} skipped`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed > 0 || vitest.status !== 0 || chaos.status !== 0 ? 1 : 0);
}
