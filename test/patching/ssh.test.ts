// The SSH executor against a real OpenSSH sshd whose sessions find package-manager shims instead of
// the real tools: every argument vector the executor makes a host run is checked exactly.
import { execFile, spawn } from 'node:child_process';
import { copyFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PatchInputError } from '../../domain/packages.ts';
import { sshIntegrationSchema, type SshIntegration } from '../../patching/config.ts';
import { SshPatchExecutor } from '../../patching/ssh/executor.ts';
import { HostKeyRejectedError } from '../../patching/sshSession.ts';
import type { PatchTarget } from '../../domain/ports.ts';
import { testSshd, type Sshd } from '../support/sshd.ts';
import { becomeHost, hostState } from './fakeHost.ts';

const run = promisify(execFile);
const dpkgFormat = '-f=${Package}\\t${db:Status-Abbrev}\\t${Version}\\n';
const rpmFormat = '%{NAME}\\t%{EPOCH}:%{VERSION}-%{RELEASE}\\n';

function settingsFor(sshd: Sshd, extra: Record<string, unknown> = {}): SshIntegration {
  return sshIntegrationSchema.parse({
    user: sshd.user,
    privateKey: `file:${sshd.privateKeyPath}`,
    knownHosts: sshd.knownHostsPath,
    hosts: {
      'web-01': { address: '127.0.0.1', port: sshd.port },
      'web-02': { address: '127.0.0.1', port: sshd.port },
    },
    rebootRequiredFile: path.join(sshd.stateDir, 'reboot-required'),
    ...extra,
  });
}

function executor(settings: SshIntegration): SshPatchExecutor {
  return new SshPatchExecutor(settings, { settings, baseDir: process.cwd() });
}

const argvOf = async (sshd: Sshd) => (await sshd.calls()).map((c) => [c.shim, ...c.argv]);
const acceptedLogins = (sshd: Sshd) => sshd.log().split('Accepted publickey').length - 1;

const opensslTarget: PatchTarget = {
  assetId: 1,
  host: 'web-01',
  packages: [
    { name: 'openssl', fixedVersion: '3.0.11-1~deb12u2' },
    { name: 'libssl3', fixedVersion: '3.0.11-1~deb12u2' },
  ],
  cves: ['CVE-2023-5678'],
};

const debianHost = (sshd: Sshd) => ({
  packages: { openssl: '3.0.11-1~deb12u1', libssl3: '3.0.11-1~deb12u1', curl: '7.88.1-10+deb12u5' },
  candidates: { openssl: '3.0.11-1~deb12u2', libssl3: '3.0.11-1~deb12u2' },
  rebootAfterUpgrade: true,
  rebootFlagFile: path.join(sshd.stateDir, 'reboot-required'),
});

describe('SSH executor on a Debian host (apt)', () => {
  let sshd: Sshd;
  beforeAll(async () => {
    sshd = await testSshd();
  });
  beforeEach(async () => {
    await becomeHost(sshd, 'apt', debianHost(sshd));
  });

  it('plans with read-only commands only, and shows the dry run', async () => {
    const plan = await executor(settingsFor(sshd)).plan('ru:prod:web-01:openssl', [opensslTarget]);
    expect(await argvOf(sshd)).toEqual([
      ['dpkg-query', '-W', dpkgFormat, 'openssl', 'libssl3'],
      ['apt-get', 'update', '-q'],
      ['apt-get', '-s', '-q', 'install', '--only-upgrade', 'openssl', 'libssl3'],
    ]);
    expect(plan.problems).toEqual([]);
    expect(plan.summary).toContain('web-01 (apt):');
    expect(plan.summary).toContain(
      'upgrade openssl 3.0.11-1~deb12u1 → 3.0.11-1~deb12u2 (fixed in 3.0.11-1~deb12u2)',
    );
    expect(plan.summary).toContain('2 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.');
    expect(plan.steps.map((s) => s.command)).toEqual([
      ['command', '-v', 'apt-get'],
      ['apt-get', 'update', '-q'],
      [
        'apt-get',
        'install',
        '--only-upgrade',
        '-y',
        '-q',
        '-o',
        'Dpkg::Options::=--force-confdef',
        '-o',
        'Dpkg::Options::=--force-confold',
        'openssl',
        'libssl3',
      ],
      ['dpkg-query', '-W', dpkgFormat, 'openssl', 'libssl3'],
      ['test', '-f', path.join(sshd.stateDir, 'reboot-required')],
    ]);
    // Nothing changed on the host.
    expect((await hostState(sshd)).packages.openssl).toBe('3.0.11-1~deb12u1');
  });

  it('applies exactly the planned upgrade, verifies it and detects the pending reboot', async () => {
    const ex = executor(settingsFor(sshd));
    const plan = await ex.plan('ru:prod:web-01:openssl', [opensslTarget]);
    await sshd.clearCalls();
    const result = await ex.apply(plan);
    expect(await argvOf(sshd)).toEqual([
      ['dpkg-query', '-W', dpkgFormat, 'openssl', 'libssl3'],
      ['apt-get', 'update', '-q'],
      [
        'apt-get',
        'install',
        '--only-upgrade',
        '-y',
        '-q',
        '-o',
        'Dpkg::Options::=--force-confdef',
        '-o',
        'Dpkg::Options::=--force-confold',
        'openssl',
        'libssl3',
      ],
      ['dpkg-query', '-W', dpkgFormat, 'openssl', 'libssl3'],
    ]);
    expect(result.ok).toBe(true);
    expect(result.hosts).toHaveLength(1);
    const [host] = result.hosts;
    expect(host).toMatchObject({ host: 'web-01', ok: true, rebootRequired: true });
    expect(host!.output).toContain('$ apt-get install --only-upgrade -y -q');
    expect(host!.output).toContain('Setting up openssl (3.0.11-1~deb12u2) ...');
    expect(host!.output).toContain('# verified openssl 3.0.11-1~deb12u2 (fixed in 3.0.11-1~deb12u2)');
    expect(host!.output).toContain('# a reboot is required');
    expect((await hostState(sshd)).packages).toMatchObject({
      openssl: '3.0.11-1~deb12u2',
      curl: '7.88.1-10+deb12u5',
    });
  });

  it('runs no second upgrade when the apply is retried after it already changed the host', async () => {
    // A worker killed after the upgrade but before its result was recorded: Temporal retries the
    // same apply, which must find the host at the fix and leave it alone.
    const ex = executor(settingsFor(sshd));
    const plan = await ex.plan('ru:prod:web-01:openssl', [opensslTarget]);
    await ex.apply(plan);
    await sshd.clearCalls();
    const again = await ex.apply(plan);
    expect(again.ok).toBe(true);
    expect(again.hosts[0]!.output).toContain('nothing to upgrade');
    expect((await argvOf(sshd)).filter(([p]) => p === 'apt-get')).toEqual([]);
    expect((await hostState(sshd)).packages.openssl).toBe('3.0.11-1~deb12u2');
  });

  it('says in the plan when the repositories do not carry the fix yet', async () => {
    await becomeHost(sshd, 'apt', {
      ...debianHost(sshd),
      candidates: { openssl: '3.0.11-1~deb12u1', libssl3: '3.0.11-1~deb12u1' },
    });
    const plan = await executor(settingsFor(sshd)).plan('ru:x', [opensslTarget]);
    expect(plan.problems).toEqual([
      {
        host: 'web-01',
        message:
          'the dry run offers no upgrade of openssl (installed 3.0.11-1~deb12u1, fixed in 3.0.11-1~deb12u2): the repositories do not carry the fix yet',
      },
      {
        host: 'web-01',
        message:
          'the dry run offers no upgrade of libssl3 (installed 3.0.11-1~deb12u1, fixed in 3.0.11-1~deb12u2): the repositories do not carry the fix yet',
      },
    ]);
    expect(plan.summary).toContain('Problems (apply would not reach the fix):');
  });

  it('leaves a host alone when it is already at the fix', async () => {
    await becomeHost(sshd, 'apt', {
      ...debianHost(sshd),
      packages: { openssl: '3.0.11-1~deb12u3', libssl3: '3.0.11-1~deb12u2' },
    });
    const ex = executor(settingsFor(sshd));
    const plan = await ex.plan('ru:x', [opensslTarget]);
    expect(plan.summary).toContain('openssl 3.0.11-1~deb12u3 is already at or past the fix 3.0.11-1~deb12u2');
    const result = await ex.apply(plan);
    expect(result.ok).toBe(true);
    expect((await argvOf(sshd)).filter(([p, a]) => p === 'apt-get' && a === 'install')).toEqual([]);
  });

  it('reports a failed upgrade with its output and stops before the next host', async () => {
    await becomeHost(sshd, 'apt', { ...debianHost(sshd), failUpgrade: true });
    const ex = executor(settingsFor(sshd));
    const second = { ...opensslTarget, host: 'web-02' };
    const plan = await ex.plan('ru:x', [opensslTarget, second]);
    await sshd.clearCalls();
    const result = await ex.apply(plan);
    expect(result.ok).toBe(false);
    expect(result.hosts.map((h) => [h.host, h.ok])).toEqual([['web-01', false]]);
    expect(result.hosts[0]!.output).toContain('E: Sub-process /usr/bin/dpkg returned an error code (1)');
    expect(result.hosts[0]!.output).toContain('FAILED: the upgrade exited with 100');
    expect((await argvOf(sshd)).filter(([p, a]) => p === 'apt-get' && a === 'install')).toHaveLength(1);
  });

  it('refuses to apply a plan made for another package manager', async () => {
    const ex = executor(settingsFor(sshd));
    const plan = await ex.plan('ru:x', [opensslTarget]);
    await becomeHost(sshd, 'dnf', { packages: { openssl: '1:3.0.7-24.el9' }, candidates: {} });
    const result = await ex.apply(plan);
    expect(result.ok).toBe(false);
    expect(result.hosts[0]!.output).toContain("the host's package manager is now dnf");
    expect((await argvOf(sshd)).filter(([p]) => p === 'dnf')).toEqual([]);
  });

  describe('refuses hostile scanner data before anything runs', () => {
    const hostile: [string, Partial<PatchTarget>][] = [
      ['a command separator in a name', { packages: [{ name: 'x; rm -rf /' }] }],
      ['command substitution', { packages: [{ name: '$(touch /tmp/pwned)' }] }],
      ['backticks', { packages: [{ name: '`id`' }] }],
      ['a newline', { packages: [{ name: 'openssl\nrm -rf /' }] }],
      ['an option', { packages: [{ name: '-oAPT::Get::AllowUnauthenticated=true' }] }],
      ['a long option', { packages: [{ name: '--allow-downgrades' }] }],
      ['a version with a separator', { packages: [{ name: 'openssl', fixedVersion: '1.0; reboot' }] }],
      ['a version with substitution', { packages: [{ name: 'openssl', fixedVersion: '$(reboot)' }] }],
      ['a host name with a separator', { host: 'web-01; rm -rf /' }],
      ['a host name that is an option', { host: '-oProxyCommand=touch /tmp/pwned' }],
    ];
    it.each(hostile)('%s', async (_label, patch) => {
      const ex = executor(settingsFor(sshd));
      const before = acceptedLogins(sshd);
      const target = { ...opensslTarget, ...patch };
      await expect(ex.plan('ru:x', [target])).rejects.toThrow(PatchInputError);
      const plan = { executor: 'ssh', rolloutId: 'ru:x', targets: [target], summary: '', steps: [] };
      await expect(ex.apply(plan)).rejects.toThrow(PatchInputError);
      expect(await sshd.calls()).toEqual([]);
      expect(acceptedLogins(sshd)).toBe(before);
    });
  });

  it('passes unusual but valid names and versions through as exact words', async () => {
    await becomeHost(sshd, 'apt', {
      packages: { 'libstdc++6': '12.2.0-14', libssl3: '3.0.11-1~deb12u1' },
      candidates: { 'libstdc++6': '12.2.0-14+deb12u1', libssl3: '3.0.11-1~deb12u2' },
    });
    const ex = executor(settingsFor(sshd));
    const plan = await ex.plan('ru:x', [
      {
        assetId: 1,
        host: 'web-01',
        packages: [{ name: 'libstdc++6', fixedVersion: '12.2.0-14+deb12u1' }, { name: 'libssl3:amd64' }],
        cves: [],
      },
    ]);
    expect((await argvOf(sshd)).at(-1)).toEqual([
      'apt-get',
      '-s',
      '-q',
      'install',
      '--only-upgrade',
      'libstdc++6',
      'libssl3:amd64',
    ]);
    expect(plan.problems).toEqual([]);
  });
});

describe('SSH executor on RHEL (dnf) and SUSE (zypper) hosts', () => {
  let sshd: Sshd;
  beforeAll(async () => {
    sshd = await testSshd();
  });

  it('upgrades to the fixed version with dnf through sudo and reads needs-restarting', async () => {
    await becomeHost(sshd, 'dnf', {
      packages: { openssl: '1:3.0.7-24.el9', 'openssl-libs': '1:3.0.7-24.el9' },
      candidates: { openssl: '1:3.0.7-25.el9_3', 'openssl-libs': '1:3.0.7-25.el9_3' },
      rebootAfterUpgrade: true,
    });
    const ex = executor(settingsFor(sshd, { sudo: true }));
    const target: PatchTarget = {
      assetId: 2,
      host: 'web-01',
      packages: [{ name: 'openssl', fixedVersion: '1:3.0.7-25.el9_3' }],
      cves: [],
    };
    const plan = await ex.plan('ru:rhel', [target]);
    expect(await argvOf(sshd)).toEqual([
      ['rpm', '-q', '--qf', rpmFormat, 'openssl'],
      ['sudo', '-n', 'dnf', 'upgrade', '--assumeno', 'openssl-1:3.0.7-25.el9_3'],
      ['dnf', 'upgrade', '--assumeno', 'openssl-1:3.0.7-25.el9_3'],
    ]);
    expect(plan.problems).toEqual([]);
    expect(plan.summary).toContain('upgrade openssl 1:3.0.7-24.el9 → 1:3.0.7-25.el9_3');
    expect(plan.summary).toContain('Upgrade  1 Package');
    await sshd.clearCalls();
    const result = await ex.apply(plan);
    expect(await argvOf(sshd)).toEqual([
      ['rpm', '-q', '--qf', rpmFormat, 'openssl'],
      ['sudo', '-n', 'dnf', 'upgrade', '-y', 'openssl-1:3.0.7-25.el9_3'],
      ['dnf', 'upgrade', '-y', 'openssl-1:3.0.7-25.el9_3'],
      ['rpm', '-q', '--qf', rpmFormat, 'openssl'],
      ['needs-restarting', '-r'],
    ]);
    expect(result.hosts[0]).toMatchObject({ ok: true, rebootRequired: true });
    expect(result.hosts[0]!.output).toContain('Reboot is required to fully utilize these updates.');
    expect((await hostState(sshd)).packages.openssl).toBe('1:3.0.7-25.el9_3');
  });

  it('uses yum where there is no dnf', async () => {
    await becomeHost(sshd, 'yum', {
      packages: { bash: '4.2.46-34.el7' },
      candidates: { bash: '4.2.46-35.el7_9' },
    });
    const ex = executor(settingsFor(sshd));
    const plan = await ex.plan('ru:el7', [
      { assetId: 3, host: 'web-01', packages: [{ name: 'bash', fixedVersion: '4.2.46-35.el7_9' }], cves: [] },
    ]);
    expect(plan.steps[0]!.command).toEqual(['command', '-v', 'yum']);
    const result = await ex.apply(plan);
    expect(result.hosts[0]).toMatchObject({ ok: true, rebootRequired: false });
    expect((await argvOf(sshd)).filter(([p]) => p === 'yum').map((c) => c.slice(1, 3))).toEqual([
      ['upgrade', '--assumeno'],
      ['upgrade', '-y'],
    ]);
  });

  it('updates with zypper and reads zypper needs-rebooting', async () => {
    await becomeHost(sshd, 'zypper', {
      packages: { 'openssl-3': '3.1.4-150600.5.7.1', libopenssl3: '3.1.4-150600.5.7.1' },
      candidates: { 'openssl-3': '3.1.4-150600.5.10.1', libopenssl3: '3.1.4-150600.5.10.1' },
      rebootAfterUpgrade: true,
    });
    const ex = executor(settingsFor(sshd));
    const target: PatchTarget = {
      assetId: 4,
      host: 'web-01',
      packages: [
        { name: 'openssl-3', fixedVersion: '3.1.4-150600.5.10.1' },
        { name: 'libopenssl3', fixedVersion: '3.1.4-150600.5.10.1' },
      ],
      cves: [],
    };
    const plan = await ex.plan('ru:suse', [target]);
    const result = await ex.apply(plan);
    expect(await argvOf(sshd)).toEqual([
      ['rpm', '-q', '--qf', rpmFormat, 'openssl-3', 'libopenssl3'],
      ['zypper', '--non-interactive', 'update', '--dry-run', 'openssl-3', 'libopenssl3'],
      ['rpm', '-q', '--qf', rpmFormat, 'openssl-3', 'libopenssl3'],
      ['zypper', '--non-interactive', 'update', 'openssl-3', 'libopenssl3'],
      ['rpm', '-q', '--qf', rpmFormat, 'openssl-3', 'libopenssl3'],
      ['zypper', 'needs-rebooting'],
    ]);
    expect(result.hosts[0]).toMatchObject({ ok: true, rebootRequired: true });
  });
});

describe('SSH host keys and authentication', () => {
  let sshd: Sshd;
  beforeAll(async () => {
    sshd = await testSshd();
    await becomeHost(sshd, 'apt', debianHost(sshd));
  });

  it('accepts a host pinned by a hashed known_hosts entry', async () => {
    const hashed = path.join(sshd.dir, 'known_hosts.hashed');
    await copyFile(sshd.knownHostsPath, hashed);
    await run('/usr/bin/ssh-keygen', ['-H', '-f', hashed]);
    const plan = await executor(settingsFor(sshd, { knownHosts: hashed })).plan('ru:x', [opensslTarget]);
    expect(plan.problems).toEqual([]);
  });

  it('accepts a host pinned by a configured fingerprint', async () => {
    const settings = sshIntegrationSchema.parse({
      user: sshd.user,
      privateKey: `file:${sshd.privateKeyPath}`,
      hostKeys: { 'web-01': [sshd.hostKeyFingerprint] },
      hosts: { 'web-01': { address: '127.0.0.1', port: sshd.port } },
    });
    await expect(executor(settings).plan('ru:x', [opensslTarget])).resolves.toMatchObject({ problems: [] });
  });

  it('authenticates through an ssh-agent', async () => {
    const socket = path.join(sshd.dir, 'agent.sock');
    const agent = spawn('/usr/bin/ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    afterAll(() => {
      agent.kill('SIGTERM');
    });
    for (let i = 0; i < 50; i++) {
      try {
        await run('/usr/bin/ssh-add', [sshd.privateKeyPath], { env: { SSH_AUTH_SOCK: socket } });
        break;
      } catch (err) {
        if (i === 49) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const settings = sshIntegrationSchema.parse({
      user: sshd.user,
      agent: socket,
      knownHosts: sshd.knownHostsPath,
      hosts: { 'web-01': { address: '127.0.0.1', port: sshd.port } },
    });
    await expect(executor(settings).plan('ru:x', [opensslTarget])).resolves.toMatchObject({ problems: [] });
  });

  it('refuses a host that has no pinned key', async () => {
    const empty = path.join(sshd.dir, 'known_hosts.empty');
    await writeFile(empty, '# nothing pinned\n');
    await sshd.clearCalls();
    const err = await executor(settingsFor(sshd, { knownHosts: empty }))
      .plan('ru:x', [opensslTarget])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyRejectedError);
    expect((err as HostKeyRejectedError).verdict.reason).toBe('unknown');
    expect((err as Error).message).toContain(
      `no host key is pinned for [web-01]:${sshd.port} or [127.0.0.1]:${sshd.port}`,
    );
    expect(await sshd.calls()).toEqual([]);
  });

  it('refuses a host whose key changed, before any command', async () => {
    const pinned = sshd.hostKeyFingerprint;
    await sshd.rotateHostKey();
    await sshd.clearCalls();
    const before = acceptedLogins(sshd);
    const err = await executor(settingsFor(sshd))
      .plan('ru:x', [opensslTarget])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyRejectedError);
    expect((err as Error).message).toContain(
      `the host key of web-01:${sshd.port} has CHANGED: it presented ssh-ed25519 ${sshd.hostKeyFingerprint}`,
    );
    expect((err as Error).message).toContain(`pins ${pinned}`);
    expect(await sshd.calls()).toEqual([]);
    expect(acceptedLogins(sshd)).toBe(before);
  });
});
