#!/usr/bin/env node
// The README's test command: install what the suite needs on a fresh machine (Node 24 included, when
// the machine's is older), run every test once on Node 24, and end with the plain line
// "N passed, N failed" counted from vitest's JSON reports (the Temporal-facing files a second time on
// the real Temporal server with PostgreSQL, and the crash suite's test, counted in; the skipped tests
// are on the line before).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { onSupportedNode } from './node.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
if (!process.env.CTEM_SETUP_DONE) {
  const setup = spawnSync(
    process.execPath,
    [path.join(root, 'scripts/setup.mjs'), '--system', '--temporal-server'],
    {
      stdio: 'inherit',
      cwd: root,
    },
  );
  if (setup.status !== 0) process.exit(setup.status ?? 1);
  process.env.CTEM_SETUP_DONE = '1';
}

/**
 * The files that drive workflows — every workflow type (campaign, patch rollout, ticket poller,
 * schedules, health probe), every update, signal and query, the chat and ticket paths, the worker
 * crash tests and two `ctem up` processes sharing the work (test/cluster) — run again on the real
 * Temporal server (PostgreSQL persistence and visibility, 4 shards). Also `npm run test:server`.
 */
export const SERVER_SUBSET = [
  'test/lifecycle',
  'test/chat',
  'test/itsm',
  'test/patching',
  'test/reporting',
  'test/cli',
  'test/foundation.test.ts',
  'test/feeds/rescore-handoff.test.ts',
  'test/operability/observability.test.ts',
  'test/ingest/cli.test.ts',
  'test/ingest/nmapConnector.test.ts',
  'test/cluster',
];

function vitestRun(report, args, env = {}) {
  mkdirSync(path.dirname(report), { recursive: true });
  rmSync(report, { force: true });
  const status = spawnSync(
    process.execPath,
    [
      path.join(root, 'node_modules/vitest/vitest.mjs'),
      'run',
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${report}`,
      ...args,
    ],
    { stdio: 'inherit', cwd: root, env: { ...process.env, FORCE_COLOR: '0', ...env } },
  ).status;
  if (!existsSync(report)) {
    console.error(
      `test-all: vitest wrote no report ${path.relative(root, report)} (it crashed before running tests)`,
    );
    return { status: status || 1, passed: 0, failed: 1, skipped: 0 };
  }
  const r = JSON.parse(readFileSync(report, 'utf8'));
  // Suites that failed to load count as failures even when no test inside them ran.
  const failedSuites = (r.testResults ?? []).filter(
    (s) => s.status === 'failed' && (s.assertionResults ?? []).length === 0,
  ).length;
  return {
    status,
    passed: r.numPassedTests,
    failed: (r.numFailedTests ?? 0) + failedSuites,
    skipped: (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0),
  };
}

function runAll(args) {
  console.log(`test-all: Node ${process.version}`);
  const serverOnly = args[0] === '--server';
  const full = args.length === 0 && process.env.CTEM_SKIP_CHAOS !== '1';
  const runs = [];
  if (!serverOnly) runs.push(vitestRun(path.join(root, 'test-results', 'vitest.json'), args));
  if (serverOnly || (args.length === 0 && process.env.CTEM_SKIP_SERVER !== '1')) {
    console.log('test-all: the Temporal-facing files again, on the real Temporal server with PostgreSQL');
    const server = vitestRun(
      path.join(root, 'test-results', 'vitest-server.json'),
      [...(serverOnly ? args.slice(1) : []), ...(serverOnly && args.length > 1 ? [] : SERVER_SUBSET)],
      { CTEM_TEST_TEMPORAL: 'server' },
    );
    if (server.failed > 0 || server.status !== 0)
      console.error('test-all: the run on the Temporal server failed');
    runs.push(server);
  }
  // The crash suite (npm run test:chaos: at least 50 SIGKILLs of the worker, Temporal and PostgreSQL
  // restarts), on a full run only; it prints its counts ("chaos: seed …, duplicates=0 …").
  if (full) {
    const chaos = spawnSync(
      process.execPath,
      [path.join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'vitest.chaos.config.ts'],
      { stdio: 'inherit', cwd: root, env: { ...process.env, FORCE_COLOR: '0' } },
    );
    if (chaos.status !== 0) console.error('test-all: the crash suite (npm run test:chaos) failed');
    runs.push({
      status: chaos.status,
      passed: chaos.status === 0 ? 1 : 0,
      failed: chaos.status === 0 ? 0 : 1,
      skipped: 0,
    });
  }
  const sum = (k) => runs.reduce((n, r) => n + r[k], 0);
  console.log(`${sum('skipped')} skipped`);
  console.log(`${sum('passed')} passed, ${sum('failed')} failed`);
  process.exit(sum('failed') > 0 || runs.some((r) => r.status !== 0) ? 1 : 0);
}

// Setup installed Node 24 where the machine's is older: the tests run on it (this script again, as a
// child on that Node, when this one is older).
if (onSupportedNode(fileURLToPath(import.meta.url))) runAll(process.argv.slice(2));
