#!/usr/bin/env node
// Everything a fresh machine needs before `ctem` or the tests run, installed by the project itself:
//   node scripts/setup.mjs            Node 24 (when the machine's is older), npm packages (when missing
//                                     or stale), the compiled sources in dist/, the pinned Temporal CLI
//   node scripts/setup.mjs --system   the above + Debian packages the test suite uses (needs root)
//   node scripts/setup.mjs --temporal-server
//                                     the above + the pinned Temporal server and its schema tool
//                                     (`temporal-server`, `temporal-sql-tool`), for `npm run cluster`
//                                     and the tests on a production-shaped Temporal
// Plain Node with no dependencies, so it runs on an old Node before `npm ci`. Idempotent: a second
// run is quick.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureNode, envOn, npmCliScript } from './node.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TEMPORAL_CLI_VERSION = '1.5.1';
// The server release the CLI above embeds as its dev server: the same engine, with PostgreSQL.
const TEMPORAL_SERVER_VERSION = '1.29.1';
const binDir = path.join(root, '.ctem', 'bin');
const args = new Set(process.argv.slice(2));

/** Debian packages the test suite drives for real: sshd for patching, nmap for discovery, chromium for the dashboard, openssl for TLS test certificates. */
export function systemPackages() {
  return [
    { pkg: 'openssh-server', probe: '/usr/sbin/sshd' },
    { pkg: 'openssh-client', probe: '/usr/bin/ssh-keygen' },
    { pkg: 'nmap', probe: '/usr/bin/nmap' },
    { pkg: 'chromium', probe: '/usr/bin/chromium' },
    { pkg: 'openssl', probe: '/usr/bin/openssl' },
  ];
}

function say(line) {
  process.stderr.write(`setup: ${line}\n`);
}

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) return { ok: false, why: r.error.message };
  return { ok: r.status === 0, why: `${cmd} exited with ${r.status}` };
}

function fail(message) {
  say(`ERROR: ${message}`);
  process.exit(1);
}

function ensureSystemPackages() {
  const missing = systemPackages().filter((p) => !existsSync(p.probe));
  if (missing.length === 0) return say('system packages present');
  const isRoot = process.getuid?.() === 0;
  const sudo = isRoot ? [] : ['sudo', '-n'];
  if (!isRoot && spawnSync('sudo', ['-n', 'true']).status !== 0) {
    fail(
      `missing Debian packages ${missing.map((p) => p.pkg).join(', ')} and no root or passwordless sudo to install them; install them with apt-get and run again`,
    );
  }
  const names = missing.map((p) => p.pkg);
  say(`installing ${names.join(', ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (argv) =>
    sudo.length
      ? run(sudo[0], [...sudo.slice(1), 'apt-get', ...argv], { env })
      : run('apt-get', argv, { env });
  let r = apt(['update', '-q']);
  if (!r.ok) fail(`apt-get update failed (${r.why})`);
  r = apt(['install', '-y', '-q', '--no-install-recommends', ...names]);
  if (!r.ok) fail(`apt-get install ${names.join(' ')} failed (${r.why})`);
}

function lockHash() {
  const lock = path.join(root, 'package-lock.json');
  return createHash('sha256').update(readFileSync(lock)).digest('hex');
}

function ensureNpmPackages(node) {
  const stamp = path.join(root, 'node_modules', '.ctem-lock-sha256');
  const want = `${lockHash()} ${node === process.execPath ? process.version : path.relative(root, node)}`;
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return say('npm packages up to date');
  say('installing npm packages (npm ci)');
  // npm itself runs on Node 24 too, and so do the packages' install scripts (Node 24 first on PATH).
  const npm = npmCliScript();
  const argv = ['ci', '--no-audit', '--no-fund', '--loglevel=error'];
  const r = npm ? run(node, [npm, ...argv], { env: envOn(node) }) : run('npm', argv, { env: envOn(node) });
  if (!r.ok)
    fail(
      `npm ci failed (${r.why}): see npm's message above; check your network access to the npm registry, and that package-lock.json is the committed one`,
    );
  writeFileSync(stamp, want);
}

function ensureBuilt(node) {
  const r = spawnSync(node, [path.join(root, 'scripts', 'build.mjs')], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) fail(`compiling the sources into dist/ failed:\n${r.stderr}`);
  say(r.stderr.trim().replace(/^build: /, 'compiled sources: '));
}

function temporalWorks(bin) {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function goVersionOk() {
  const r = spawnSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' });
  if (r.status !== 0) return false;
  // GOTOOLCHAIN=auto lets an older go fetch the toolchain the module asks for from the module proxy.
  return /^go1\.(2[1-9]|[3-9]\d)/.test(r.stdout.trim());
}

function ensureTemporal() {
  const bundled = path.join(binDir, 'temporal');
  for (const candidate of [process.env.CTEM_TEMPORAL_BIN, bundled].filter(Boolean)) {
    const v = existsSync(candidate) ? temporalWorks(candidate) : undefined;
    if (v) return say(`Temporal CLI: ${candidate} (${v})`);
  }
  const onPath = temporalWorks('temporal');
  if (onPath) return say(`Temporal CLI on PATH (${onPath})`);
  if (goVersionOk()) {
    say(`building Temporal CLI ${TEMPORAL_CLI_VERSION} into .ctem/bin with go install (a few minutes, once)`);
    mkdirSync(binDir, { recursive: true });
    const r = run(
      'go',
      [
        'install',
        '-ldflags',
        `-X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_CLI_VERSION}`,
        `github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}`,
      ],
      { env: { ...process.env, GOBIN: binDir, CGO_ENABLED: '0', GOTOOLCHAIN: 'auto', GOFLAGS: '-mod=mod' } },
    );
    if (r.ok && temporalWorks(bundled)) return say(`Temporal CLI built: ${temporalWorks(bundled)}`);
    say(`go install failed (${r.why})`);
  } else {
    say('no Go >= 1.21 toolchain found');
  }
  // Last resort: at run time @temporalio/testing downloads the dev server (where the network allows).
  say(
    'no Temporal CLI could be installed: ctem will try to let @temporalio/testing download one when it starts. ' +
      'To avoid that, install Go >= 1.25 and run `npm run setup` again, put `temporal` on PATH, or set CTEM_TEMPORAL_BIN',
  );
}

/** The real Temporal server and temporal-sql-tool, built from the Go module go.temporal.io/server. */
function ensureTemporalServer() {
  const wanted = [
    { name: 'temporal-server', pkg: 'cmd/server', built: 'server' },
    { name: 'temporal-sql-tool', pkg: 'cmd/tools/sql', built: 'sql' },
  ];
  const version = (bin) => {
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : '';
  };
  const current = wanted.every((w) => version(path.join(binDir, w.name)).includes(TEMPORAL_SERVER_VERSION));
  if (current)
    return say(`Temporal server ${TEMPORAL_SERVER_VERSION} and temporal-sql-tool present in .ctem/bin`);
  if (!goVersionOk())
    fail(
      `building the Temporal server ${TEMPORAL_SERVER_VERSION} needs Go >= 1.21 (the module proxy fetches the rest): install Go and run again`,
    );
  say(
    `building Temporal server ${TEMPORAL_SERVER_VERSION} and temporal-sql-tool with go install (a few minutes, once)`,
  );
  const tmp = path.join(root, '.ctem', 'go-build-bin');
  mkdirSync(tmp, { recursive: true });
  const r = run(
    'go',
    ['install', ...wanted.map((w) => `go.temporal.io/server/${w.pkg}@v${TEMPORAL_SERVER_VERSION}`)],
    { env: { ...process.env, GOBIN: tmp, CGO_ENABLED: '0', GOTOOLCHAIN: 'auto', GOFLAGS: '-mod=mod' } },
  );
  if (!r.ok) fail(`go install of the Temporal server failed (${r.why}); see go's message above`);
  mkdirSync(binDir, { recursive: true });
  for (const w of wanted) renameSync(path.join(tmp, w.built), path.join(binDir, w.name));
  rmSync(tmp, { recursive: true, force: true });
  say(`Temporal server built: ${version(path.join(binDir, 'temporal-server'))}`);
}

if (args.has('--system')) ensureSystemPackages();
let node;
try {
  node = ensureNode();
} catch (err) {
  fail(err.message);
}
ensureNpmPackages(node);
ensureBuilt(node);
ensureTemporal();
if (args.has('--temporal-server')) ensureTemporalServer();
