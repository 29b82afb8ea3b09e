// A real OpenSSH sshd for tests: Debian's /usr/sbin/sshd on a free loopback port, in the foreground
// (-D -e) as a child of the test process, with its own generated host key, one authorized generated
// client key, and a sandbox PATH whose first entry holds "shims": small executables standing in for
// apt-get, dnf, powershell… Every shim call is recorded, with its exact argument vector, as one JSON
// line in a log the test reads back. Sessions find only the shims (no /usr/bin on their PATH), and
// startup refuses to go on if a real package tool is reachable, so a test can never patch the machine
// it runs on. Nothing here touches the machine's own sshd or its config.
//
//   const sshd = await testSshd({ shims: { 'apt-get': { sh: 'echo "Reading package lists..."' } } });
//   … connect to sshd.host:sshd.port as sshd.user with sshd.privateKey, pinning sshd.hostKeyFingerprint …
//   expect((await sshd.calls('apt-get')).map((c) => c.argv)).toEqual([['install', …]]);
//
// One sshd per test file is cheap (0.3–0.7 s here: two key generations and one check over ssh);
// stop() kills only the sshd this fixture started. Running as root, it creates /run/sshd (sshd's
// privilege-separation directory) when missing, as Debian's service would.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll } from 'vitest';
import { freePort } from '../../runtime/ports.ts';

const run = promisify(execFile);
const sshdBinary = '/usr/sbin/sshd';
const keygenBinary = '/usr/bin/ssh-keygen';
const sshBinary = '/usr/bin/ssh';

/**
 * What a shim does after its call was recorded: a POSIX sh script body (arguments in "$@"), or an
 * ES module body run by Node (arguments in `process.argv.slice(2)`). Both see $CTEM_SHIM_STATE, a
 * directory for state kept between calls (an installed-versions database, a flag file…).
 */
export type ShimSpec = { sh: string } | { js: string };

/** One recorded shim call. */
export interface ShimCall {
  shim: string;
  /** Exactly the argument vector the program received (argv[1..]). */
  argv: string[];
  at: string;
}

export interface SshdOptions {
  shims?: Record<string, ShimSpec>;
  /** More public keys ("ssh-ed25519 AAAA…") to authorize, e.g. another fixture's client key. */
  authorizedKeys?: string[];
  /**
   * Put /usr/local/bin:/usr/bin:/bin on the sessions' PATH after the shims. Off by default: sessions
   * then find only the shims and a few text tools (bash, env, cat, sed…), so no test can reach the
   * machine's real apt-get.
   */
  systemPath?: boolean;
  /** Extra environment for sessions (names and values without whitespace). */
  env?: Record<string, string>;
}

export interface Sshd {
  host: string;
  port: number;
  /** The account sessions log in as (the user running the tests). */
  user: string;
  /** The authorized client key, OpenSSH private key format, and its file. */
  privateKey: string;
  privateKeyPath: string;
  /** Its public half, as an authorized_keys line. */
  publicKey: string;
  /** "ssh-ed25519 AAAA…" of the server's current host key. */
  hostPublicKey: string;
  /** "SHA256:…", as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  /** A known_hosts file that pins the current host key for [host]:port. */
  knownHostsPath: string;
  /** Sandbox layout: shims in binDir (first on the sessions' PATH), state in stateDir. */
  dir: string;
  binDir: string;
  stateDir: string;
  /** Add or replace a shim; takes effect for the next call. */
  setShim(name: string, spec: ShimSpec): Promise<void>;
  /** Remove a shim: the program is then not found at all. */
  removeShim(name: string): Promise<void>;
  /** Recorded calls, oldest first, optionally of one shim only. */
  calls(shim?: string): Promise<ShimCall[]>;
  clearCalls(): Promise<void>;
  /** Run a command through the real OpenSSH client (for checks independent of the code under test). */
  ssh(command: string): Promise<{ stdout: string; stderr: string }>;
  /** Give the server a new host key (restarts sshd on the same port); known_hosts is NOT updated. */
  rotateHostKey(): Promise<void>;
  /** The sshd's log so far (stderr), for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

/** Start an sshd for the current test file and stop it after the file's tests. */
export async function testSshd(options: SshdOptions = {}): Promise<Sshd> {
  const sshd = await startSshd(options);
  afterAll(async () => await sshd.stop());
  return sshd;
}

export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  for (const bin of [sshdBinary, keygenBinary, sshBinary])
    if (!existsSync(bin))
      throw new Error(
        `${bin} is missing; install Debian's openssh-server and openssh-client (npm run setup -- --system)`,
      );
  ensurePrivilegeSeparationDir();

  const dir = await mkdtemp(path.join(os.tmpdir(), 'ctem-sshd-'));
  if (/\s/.test(dir))
    throw new Error(`the temp dir ${dir} contains whitespace, which sshd_config cannot hold`);
  const binDir = path.join(dir, 'bin');
  const toolsDir = path.join(dir, 'tools');
  const stateDir = path.join(dir, 'state');
  const logPath = path.join(dir, 'calls.jsonl');
  const recorder = path.join(dir, 'record.mjs');
  mkdirSync(binDir, { recursive: true, mode: 0o755 });
  mkdirSync(stateDir, { recursive: true, mode: 0o777 });
  await linkHarmlessTools(toolsDir);
  await writeFile(logPath, '');
  await writeFile(recorder, recorderSource);

  const user = os.userInfo().username;
  const hostKeyPath = path.join(dir, 'ssh_host_ed25519_key');
  const privateKeyPath = path.join(dir, 'id_ed25519');
  await generateKey(hostKeyPath, 'ctem-test-host');
  await generateKey(privateKeyPath, 'ctem-test-client');
  const publicKey = (await readFile(`${privateKeyPath}.pub`, 'utf8')).trim();
  await writeFile(
    path.join(dir, 'authorized_keys'),
    [publicKey, ...(options.authorizedKeys ?? [])].join('\n') + '\n',
  );
  await chmod(dir, 0o755);

  const port = await freePort();
  const knownHostsPath = path.join(dir, 'known_hosts');
  const sessionEnv = {
    PATH: options.systemPath ? `${binDir}:/usr/local/bin:/usr/bin:/bin` : `${binDir}:${toolsDir}`,
    CTEM_SHIM_STATE: stateDir,
    ...options.env,
  };
  for (const [k, v] of Object.entries(sessionEnv))
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || /[\s"'\\]/.test(v))
      throw new Error(
        `sshd session environment ${k}=${v}: names must be identifiers and values free of whitespace and quotes`,
      );
  const configPath = path.join(dir, 'sshd_config');
  await writeFile(
    configPath,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKeyPath}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      // The sandbox lives under /tmp, which StrictModes would reject as group/world-writable.
      'StrictModes no',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      // Without PAM, session environment is exactly what SetEnv says (no /etc/environment).
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      `AllowUsers ${user}`,
      'AllowTcpForwarding no',
      'AllowAgentForwarding no',
      'X11Forwarding no',
      'PermitTTY no',
      'PrintMotd no',
      'PrintLastLog no',
      'UseDNS no',
      'MaxStartups 100:30:200',
      'MaxSessions 50',
      'LogLevel INFO',
      `SetEnv ${Object.entries(sessionEnv)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
      '',
    ].join('\n'),
  );
  // A configuration sshd refuses is reported with sshd's own words, before anything listens.
  await run(sshdBinary, ['-t', '-f', configPath]).catch((err: Error & { stderr?: string }) => {
    throw new Error(`sshd refused the generated ${configPath}: ${err.stderr ?? err.message}`);
  });

  let hostPublicKey = '';
  let hostKeyFingerprint = '';
  const readHostKey = async () => {
    hostPublicKey = (await readFile(`${hostKeyPath}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
    hostKeyFingerprint = fingerprintOf(hostPublicKey);
  };
  await readHostKey();
  await writeFile(knownHostsPath, `[127.0.0.1]:${port} ${hostPublicKey}\n`);

  let child: ChildProcess | undefined;
  let stderr = '';
  const start = async () => {
    stderr = '';
    const proc = spawn(sshdBinary, ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`sshd did not start listening on 127.0.0.1:${port} within 10 s:\n${stderr}`)),
        10_000,
      );
      proc.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes(`Server listening on 127.0.0.1 port ${port}`)) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`sshd exited (${code ?? signal}) before listening:\n${stderr}`));
      });
    });
  };
  const stopChild = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    });
  };

  const writeShim = async (name: string, spec: ShimSpec) => {
    if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(name))
      throw new Error(`shim name ${name} is not a plain program name`);
    const shimPath = path.join(binDir, name);
    // Shim bodies may use coreutils, but programs they run resolve to shims first.
    const record = [
      `${q(process.execPath)} ${q(recorder)} ${q(logPath)} ${q(name)} "$@" || exit 97`,
      `PATH=${q(`${binDir}:/usr/local/bin:/usr/bin:/bin`)}; export PATH`,
      `CTEM_SHIM_BIN=${q(binDir)}; export CTEM_SHIM_BIN`,
    ].join('\n');
    let body: string;
    if ('sh' in spec) body = spec.sh;
    else {
      const modulePath = path.join(binDir, `.${name}.mjs`);
      await writeFile(modulePath, spec.js);
      body = `exec ${q(process.execPath)} ${q(modulePath)} "$@"`;
    }
    await writeFile(shimPath, `#!/bin/sh\n${record}\n${body}\n`, { mode: 0o755 });
  };
  for (const [name, spec] of Object.entries(options.shims ?? {})) await writeShim(name, spec);

  const sshd: Sshd = {
    host: '127.0.0.1',
    port,
    user,
    privateKey: await readFile(privateKeyPath, 'utf8'),
    privateKeyPath,
    publicKey,
    get hostPublicKey() {
      return hostPublicKey;
    },
    get hostKeyFingerprint() {
      return hostKeyFingerprint;
    },
    knownHostsPath,
    dir,
    binDir,
    stateDir,
    setShim: writeShim,
    removeShim: async (name) => {
      await rm(path.join(binDir, name), { force: true });
      await rm(path.join(binDir, `.${name}.mjs`), { force: true });
    },
    calls: async (shim) => {
      const text = await readFile(logPath, 'utf8');
      const all = text
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as ShimCall);
      return shim === undefined ? all : all.filter((c) => c.shim === shim);
    },
    clearCalls: async () => await writeFile(logPath, ''),
    ssh: async (command) =>
      await run(sshBinary, [
        '-p',
        String(port),
        '-i',
        privateKeyPath,
        '-o',
        `UserKnownHostsFile=${knownHostsPath}`,
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        'BatchMode=yes',
        '-o',
        'IdentitiesOnly=yes',
        '-F',
        '/dev/null',
        `${user}@127.0.0.1`,
        command,
      ]),
    rotateHostKey: async () => {
      await stopChild();
      await rm(hostKeyPath, { force: true });
      await rm(`${hostKeyPath}.pub`, { force: true });
      await generateKey(hostKeyPath, 'ctem-test-host-rotated');
      await readHostKey();
      await start();
    },
    log: () => stderr,
    stop: async () => {
      await stopChild();
      await rm(dir, { recursive: true, force: true });
    },
  };

  try {
    await start();
    await assertNoRealPackageTools(sshd);
  } catch (err) {
    await sshd.stop();
    throw err;
  }
  return sshd;
}

/** Programs that change a machine: in a session they must be a shim or absent. */
const guardedPrograms = [
  'apt-get',
  'apt',
  'dpkg',
  'dnf',
  'yum',
  'zypper',
  'rpm',
  'needs-restarting',
  'powershell',
  'pwsh',
  'sudo',
];

/**
 * The login shell's rc files could put the real /usr/bin on the session PATH, and then a test would
 * run the real apt-get. Refuse to go on unless every guarded program is a shim or is not found.
 */
async function assertNoRealPackageTools(sshd: Sshd): Promise<void> {
  const { stdout } = await sshd.ssh(
    `for p in ${guardedPrograms.join(' ')}; do printf '%s=%s\\n' "$p" "$(command -v "$p")"; done`,
  );
  for (const line of stdout.trim().split('\n')) {
    const [program, found = ''] = line.split('=');
    if (found !== '' && found !== path.join(sshd.binDir, program!))
      throw new Error(
        `an sshd session finds ${program} at ${found}, outside the shim sandbox ${sshd.binDir}; ` +
          "shim it (setShim) or keep the system PATH off, and check the login shell's rc files",
      );
  }
  await sshd.clearCalls();
}

/** A shim for sudo or env: runs its arguments, but only a program that is itself a shim. */
export const sandboxedExec: ShimSpec = {
  sh: [
    'while [ "$#" -gt 0 ]; do',
    '  case "$1" in -n|-E|-H) shift ;; *=*) export "$1"; shift ;; *) break ;; esac',
    'done',
    'found=$(command -v "$1")',
    'case "$found" in',
    '  "$CTEM_SHIM_BIN"/*) exec "$@" ;;',
    '  *) echo "sandbox: refusing to run $1 (not a shim)" >&2; exit 126 ;;',
    'esac',
  ].join('\n'),
};

/**
 * Plain text tools a login shell's rc files and shim bodies commonly need (bash, env, cat, sed…),
 * linked into a directory of their own so sessions can have them without all of /usr/bin.
 */
const harmlessTools = [
  'bash',
  'sh',
  'env',
  'cat',
  'grep',
  'sed',
  'awk',
  'head',
  'tail',
  'tr',
  'cut',
  'sort',
  'uniq',
  'wc',
  'printf',
  'echo',
  'base64',
  'iconv',
  'dirname',
  'basename',
  'id',
  'uname',
  'true',
  'false',
  'ls',
  'mkdir',
  'touch',
  'date',
  'sleep',
  'tee',
];

async function linkHarmlessTools(toolsDir: string): Promise<void> {
  mkdirSync(toolsDir, { recursive: true, mode: 0o755 });
  for (const tool of harmlessTools) {
    const real = ['/usr/bin', '/bin'].map((d) => path.join(d, tool)).find((p) => existsSync(p));
    if (real) await symlink(real, path.join(toolsDir, tool));
  }
}

/** sshd running as root needs its privilege-separation directory, which Debian's service creates. */
function ensurePrivilegeSeparationDir(): void {
  if (process.getuid?.() === 0 && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 });
}

async function generateKey(file: string, comment: string): Promise<void> {
  await run(keygenBinary, ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
}

/** OpenSSH's SHA256 fingerprint of "type base64" public key text. */
export function fingerprintOf(publicKey: string): string {
  const blob = Buffer.from(publicKey.split(/\s+/)[1] ?? '', 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

// Appends one JSON line per call; O_APPEND writes of one line do not interleave between processes.
const recorderSource = `import { appendFileSync } from 'node:fs';
const [log, shim, ...argv] = process.argv.slice(2);
appendFileSync(log, JSON.stringify({ shim, argv, at: new Date().toISOString() }) + '\\n');
`;
