// Package-manager shims for the sshd fixture that behave like a small Debian, RHEL or SUSE host:
// they read and update a package database in $CTEM_SHIM_STATE/host.json and print what the real
// tools print (apt-get's "Inst" lines, dnf's transaction table, rpm/dpkg-query formats, reboot
// checks). Their calls are recorded by the fixture before they run.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sandboxedExec, type ShimSpec, type Sshd } from '../support/sshd.ts';

export interface FakeHostState {
  /** Installed packages: name → version (Debian) or [epoch:]version-release (rpm). */
  packages: Record<string, string>;
  /** What the repositories offer: name → version. */
  candidates: Record<string, string>;
  /** The upgrade fails like dpkg/rpm do (exit 100 / 1). */
  failUpgrade?: boolean;
  /** An upgrade leaves a reboot pending. */
  rebootAfterUpgrade?: boolean;
  /** Set by an upgrade when rebootAfterUpgrade. */
  rebootNeeded?: boolean;
  /** Debian's flag file (inside the sandbox). */
  rebootFlagFile?: string;
}

export async function setHostState(sshd: Sshd, state: FakeHostState): Promise<void> {
  await writeFile(path.join(sshd.stateDir, 'host.json'), JSON.stringify(state));
}

export async function hostState(sshd: Sshd): Promise<FakeHostState> {
  return JSON.parse(await readFile(path.join(sshd.stateDir, 'host.json'), 'utf8')) as FakeHostState;
}

const common = `
import { readFileSync, writeFileSync } from 'node:fs';
const statePath = process.env.CTEM_SHIM_STATE + '/host.json';
const state = JSON.parse(readFileSync(statePath, 'utf8'));
const save = () => writeFileSync(statePath, JSON.stringify(state));
const args = process.argv.slice(2);
const out = (s) => process.stdout.write(s + '\\n');
const err = (s) => process.stderr.write(s + '\\n');
const operands = (withValue = []) => {
  const ops = [];
  for (let i = 0; i < args.length; i++) {
    if (withValue.includes(args[i])) { i++; continue; }
    if (args[i].startsWith('-')) continue;
    ops.push(args[i]);
  }
  return ops;
};
const upgraded = (name, to) => {
  state.packages[name] = to;
  if (state.rebootAfterUpgrade) {
    state.rebootNeeded = true;
    if (state.rebootFlagFile) {
      writeFileSync(state.rebootFlagFile, '*** System restart required ***\\n');
      writeFileSync(state.rebootFlagFile + '.pkgs', name + '\\n');
    }
  }
};
`;

const aptGet = `${common}
const ops = operands(['-o', '-c', '-t']);
const [command, ...names] = ops;
if (command === 'update') {
  out('Hit:1 http://deb.debian.org/debian bookworm InRelease');
  out('Get:2 http://security.debian.org/debian-security bookworm-security InRelease [48.0 kB]');
  out('Fetched 48.0 kB in 1s (61.2 kB/s)');
  out('Reading package lists...');
  process.exit(0);
}
if (command !== 'install' || !args.includes('--only-upgrade')) { err('E: unexpected command line for this fake host: ' + args.join(' ')); process.exit(100); }
const simulate = args.includes('-s');
if (simulate) {
  out('NOTE: This is only a simulation!');
  out('      apt-get needs root privileges for real execution.');
}
out('Reading package lists...');
out('Building dependency tree...');
out('Reading state information...');
const todo = [];
for (const raw of names) {
  const name = raw.replace(/:[a-z0-9-]+$/, '');
  const have = state.packages[name];
  const offer = state.candidates[name];
  if (!have) out('Skipping ' + raw + ', it is not installed and only upgrades are requested.');
  else if (!offer || offer === have) out(name + ' is already the newest version (' + have + ').');
  else todo.push([name, have, offer]);
}
if (todo.length) {
  out('The following packages will be upgraded:');
  out('  ' + todo.map((t) => t[0]).join(' '));
}
out(todo.length + ' upgraded, 0 newly installed, 0 to remove and 0 not upgraded.');
if (simulate) {
  for (const [n, have, offer] of todo) out('Inst ' + n + ' [' + have + '] (' + offer + ' Debian-Security:12/stable-security [amd64])');
  for (const [n, , offer] of todo) out('Conf ' + n + ' (' + offer + ' Debian-Security:12/stable-security [amd64])');
  process.exit(0);
}
for (const [n, have, offer] of todo) {
  out('Preparing to unpack .../' + n + '_' + offer + '_amd64.deb ...');
  out('Unpacking ' + n + ' (' + offer + ') over (' + have + ') ...');
}
if (state.failUpgrade) {
  err('dpkg: error processing package ' + (todo[0] || ['?'])[0] + ' (--configure):');
  err(' installed ' + (todo[0] || ['?'])[0] + ' package post-installation script subprocess returned error exit status 1');
  err('E: Sub-process /usr/bin/dpkg returned an error code (1)');
  process.exit(100);
}
for (const [n, , offer] of todo) { out('Setting up ' + n + ' (' + offer + ') ...'); upgraded(n, offer); }
save();
`;

const dpkgQuery = `${common}
let missing = false;
for (const raw of operands()) {
  const name = raw.replace(/:[a-z0-9-]+$/, '');
  if (state.packages[name]) out(name + '\\tii \\t' + state.packages[name]);
  else { err('dpkg-query: no packages found matching ' + raw); missing = true; }
}
process.exit(missing ? 1 : 0);
`;

const rpm = `${common}
if (args[0] !== '-q') { err('rpm: unexpected arguments ' + args.join(' ')); process.exit(1); }
let missing = false;
for (const name of operands(['--qf', '--queryformat'])) {
  const evr = state.packages[name];
  if (!evr) { out('package ' + name + ' is not installed'); missing = true; continue; }
  out(name + '\\t' + (evr.includes(':') ? evr : '(none):' + evr));
}
process.exit(missing ? 1 : 0);
`;

const dnf = (program: string) => `${common}
const [command, ...specs] = operands();
if (command !== 'upgrade') { err('${program}: unexpected arguments ' + args.join(' ')); process.exit(2); }
const resolve = (spec) => {
  const name = Object.keys(state.packages).filter((k) => spec === k || spec.startsWith(k + '-')).sort((a, b) => b.length - a.length)[0];
  return name ? { name, version: spec === name ? undefined : spec.slice(name.length + 1) } : undefined;
};
const todo = [];
for (const spec of specs) {
  const r = resolve(spec);
  if (!r) { err('No match for argument: ' + spec); continue; }
  const offer = state.candidates[r.name];
  if (r.version && r.version === state.packages[r.name]) { out('Package ' + spec + ' is already installed.'); continue; }
  if (r.version && r.version !== offer) { err('No match for argument: ' + spec); continue; }
  if (!offer || offer === state.packages[r.name]) continue;
  todo.push([r.name, offer]);
}
out('Last metadata expiration check: 0:42:17 ago on Tue 04 Jun 2024 09:12:03 AM UTC.');
if (todo.length === 0) { out('Dependencies resolved.'); out('Nothing to do.'); out('Complete!'); process.exit(0); }
out('Dependencies resolved.');
out('================================================================================');
out(' Package          Architecture  Version               Repository           Size');
out('================================================================================');
out('Upgrading:');
for (const [n, v] of todo) out(' ' + n.padEnd(17) + 'x86_64'.padEnd(14) + v.padEnd(22) + 'rhel-9-baseos-rpms  1.2 M');
out('');
out('Transaction Summary');
out('================================================================================');
out('Upgrade  ' + todo.length + ' Package' + (todo.length > 1 ? 's' : ''));
out('');
if (args.includes('--assumeno')) { out('Operation aborted.'); process.exit(1); }
if (state.failUpgrade) { err('Error: Transaction test error:'); err('  file /usr/lib64/libssl.so.3 conflicts between attempted installs'); process.exit(1); }
out('Running transaction');
for (const [n, v] of todo) { out('  Upgrading        : ' + n + '-' + v + '.x86_64'); upgraded(n, v); }
out('Upgraded:');
out('  ' + todo.map(([n, v]) => n + '-' + v + '.x86_64').join(' '));
out('Complete!');
save();
`;

const needsRestarting = `${common}
if (state.rebootNeeded) {
  out('Core libraries or services have been updated since boot-up:');
  out('  * openssl-libs');
  out('');
  out('Reboot is required to fully utilize these updates.');
  out('More information: https://access.redhat.com/solutions/27943');
  process.exit(1);
}
out('No core libraries or services have been updated since boot-up.');
out('Reboot should not be necessary.');
`;

const zypper = `${common}
const [command, ...names] = operands();
if (command === 'needs-rebooting') {
  if (state.rebootNeeded) { out('Core libraries or services have been updated.'); out('Reboot is required to ensure that your system benefits from these updates.'); process.exit(102); }
  out('No core libraries or services have been updated.'); out('Reboot is probably not necessary.'); process.exit(0);
}
if (command !== 'update') { err('zypper: unexpected arguments ' + args.join(' ')); process.exit(1); }
out('Loading repository data...');
out('Reading installed packages...');
const todo = names.filter((n) => state.packages[n] && state.candidates[n] && state.candidates[n] !== state.packages[n]);
out('Resolving package dependencies...');
out('');
if (todo.length === 0) { out('Nothing to do.'); process.exit(0); }
out('The following ' + todo.length + ' package' + (todo.length > 1 ? 's are' : ' is') + ' going to be upgraded:');
out('  ' + todo.join(' '));
out('');
out(todo.length + ' package' + (todo.length > 1 ? 's' : '') + ' to upgrade.');
if (args.includes('--dry-run')) { out('Continue? [y/n/v/...? shows all options] (y): y'); out('(dry run)'); process.exit(0); }
if (state.failUpgrade) { err('Installation of ' + todo[0] + ' failed:'); err('Error: Subprocess failed. Error: RPM failed: error: unpacking of archive failed'); process.exit(8); }
for (const n of todo) { out('(1/' + todo.length + ') Installing: ' + n + '-' + state.candidates[n] + '.x86_64 ...[done]'); upgraded(n, state.candidates[n]); }
save();
`;

/** Shims for a host of the given family; sudo runs only other shims. */
export function fakeHostShims(manager: 'apt' | 'dnf' | 'yum' | 'zypper'): Record<string, ShimSpec> {
  const base: Record<string, ShimSpec> = { sudo: sandboxedExec };
  if (manager === 'apt') return { ...base, 'apt-get': { js: aptGet }, 'dpkg-query': { js: dpkgQuery } };
  if (manager === 'zypper') return { ...base, zypper: { js: zypper }, rpm: { js: rpm } };
  return {
    ...base,
    [manager]: { js: dnf(manager) },
    rpm: { js: rpm },
    'needs-restarting': { js: needsRestarting },
  };
}

/** Make the sshd's sandbox one host family: installs its shims and removes the others. */
export async function becomeHost(
  sshd: Sshd,
  manager: 'apt' | 'dnf' | 'yum' | 'zypper',
  state: FakeHostState,
): Promise<void> {
  for (const program of ['apt-get', 'dpkg-query', 'dnf', 'yum', 'zypper', 'rpm', 'needs-restarting'])
    await sshd.removeShim(program);
  for (const [name, spec] of Object.entries(fakeHostShims(manager))) await sshd.setShim(name, spec);
  await setHostState(sshd, state);
  await sshd.clearCalls();
}
