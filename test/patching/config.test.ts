// The patching sections of ctem.yaml: errors name the field; the executors the registry builds keep
// apply inside the scope's maintenance window and mark permanent errors non-retryable.
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { configSchema, durationMs } from '../../domain/config.ts';
import {
  patchRolloutPolicy,
  PatchConfigError,
  scopePatchSettings,
  sshIntegration,
} from '../../patching/config.ts';
import { ssh } from '../../patching/ssh/index.ts';
import { wsus } from '../../patching/wsus/index.ts';
import { builtInRegistry } from '../../app/integrations.ts';
import { systemClock } from '../../runtime/clock.ts';

const people = [
  { id: 'alice', name: 'Alice' },
  { id: 'carol', name: 'Carol' },
];

function config(extra: Record<string, unknown>) {
  return configSchema.parse({ version: 1, people, ...extra });
}

describe('patching configuration', () => {
  it('requires pinned host keys and exactly one way to authenticate, naming the field', () => {
    expect(() =>
      sshIntegration(config({ integrations: { ssh: { user: 'patcher', knownHosts: 'known_hosts' } } })),
    ).toThrow('ctem.yaml integrations.ssh.privateKey: set exactly one of privateKey or agent');
    expect(() =>
      sshIntegration(config({ integrations: { ssh: { user: 'patcher', privateKey: 'file:id_ed25519' } } })),
    ).toThrow(
      'ctem.yaml integrations.ssh.knownHosts: host keys must be pinned: set knownHosts (a known_hosts file) or hostKeys (fingerprints per host)',
    );
    expect(() =>
      sshIntegration(
        config({
          integrations: {
            ssh: { user: 'patcher', privateKey: '/home/me/.ssh/id_ed25519', knownHosts: 'kh' },
          },
        }),
      ),
    ).toThrow(/integrations\.ssh\.privateKey: must be a secret reference/);
    expect(() =>
      sshIntegration(
        config({
          integrations: {
            ssh: { user: 'patcher', agent: 'env:SSH_AUTH_SOCK', hostKeys: { 'web-01': ['MD5:aa:bb'] } },
          },
        }),
      ),
    ).toThrow(/integrations\.ssh\.hostKeys\.web-01\[0\]: must be an OpenSSH SHA256 fingerprint/);
    expect(() => sshIntegration(config({}))).toThrow(
      'ctem.yaml integrations.ssh: missing; add it to patch hosts over SSH',
    );
  });

  it("validates a scope's patch section and says which scope", () => {
    const cfg = config({
      scopes: [
        { name: 'prod', roles: { approver: ['alice'] }, patch: { executor: 'ssh', concurrency: 0 } },
        { name: 'win', roles: { approver: ['alice'] }, patch: { executor: 'wsus' } },
        { name: 'dev', patch: { executor: 'ssh' } },
        { name: 'lab', patch: { executor: 'ssh', autoApprove: true, canary: 2 } },
      ],
    });
    expect(() => scopePatchSettings(cfg, 'prod')).toThrow(/ctem\.yaml scopes\[0\]\.patch\.concurrency: /);
    expect(() => scopePatchSettings(cfg, 'win')).toThrow(
      'ctem.yaml scopes[1].patch.targetGroup: required for the wsus executor',
    );
    expect(() => patchRolloutPolicy(cfg, 'dev')).toThrow(
      'ctem.yaml scopes[2].roles.approver: scope "dev" needs an approver (or patch.autoApprove: true) before anything is patched',
    );
    expect(patchRolloutPolicy(cfg, 'lab')).toEqual({
      scope: 'lab',
      executor: 'ssh',
      autoApprove: true,
      concurrency: 1,
      canary: 2,
      hostTimeoutMs: durationMs('2h'),
      approvalTimeoutMs: durationMs('24h'),
      approvers: [],
    });
  });

  it('gives approval to approvers, security leads and the CISO, not to owners', () => {
    const cfg = config({
      scopes: [
        {
          name: 'prod',
          roles: { owner: ['carol'], approver: ['alice'], ciso: ['carol'] },
          patch: { executor: 'ssh' },
        },
      ],
    });
    expect(patchRolloutPolicy(cfg, 'prod').approvers).toEqual(['alice', 'carol']);
  });

  it('is what the lifecycle registry builds for ssh, satellite and wsus', () => {
    expect(Object.keys(builtInRegistry().patch)).toEqual(
      expect.arrayContaining(['ssh', 'satellite', 'wsus']),
    );
  });
});

describe('executors built for a scope', () => {
  it('refuse to apply outside the maintenance window, retrying when it opens', async () => {
    // Monday noon by the executor's clock; the window is on Thursdays, 02:00–04:00 UTC.
    const now = Date.parse('2026-11-23T12:00:00Z');
    const opens = new Date('2026-11-26T02:00:00Z');
    const day = 'thu';
    const cfg = config({
      scopes: [
        {
          name: 'prod',
          roles: { approver: ['alice'] },
          patch: { executor: 'ssh' },
          maintenanceWindow: { days: [day], start: '02:00', end: '04:00', timezone: 'UTC' },
        },
      ],
      integrations: { ssh: { user: 'patcher', privateKey: 'env:NO_SUCH_KEY', knownHosts: 'known_hosts' } },
    });
    const ex = ssh.create({
      config: cfg,
      scope: cfg.scopes[0]!,
      deps: { baseDir: process.cwd(), clock: () => now },
    });
    const err = await ex
      .apply({
        executor: 'ssh',
        rolloutId: 'u',
        targets: [{ assetId: 1, host: 'web-01', packages: [{ name: 'openssl' }], cves: [] }],
        summary: '',
        steps: [],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    const failure = err as ApplicationFailure;
    expect(failure.type).toBe('OutsideMaintenanceWindow');
    expect(failure.nonRetryable).toBe(false);
    expect(failure.message).toBe(
      `scope prod may be patched only in its maintenance window (${day} 02:00–04:00 UTC); it opens at ${opens.toISOString()}`,
    );
    expect(Number(failure.nextRetryDelay)).toBe(opens.getTime() - now);
  });

  it('report configuration mistakes as non-retryable failures', () => {
    const cfg = config({
      scopes: [
        { name: 'win', roles: { approver: ['alice'] }, patch: { executor: 'wsus', targetGroup: 'Servers' } },
      ],
    });
    let err: unknown;
    try {
      wsus.create({
        config: cfg,
        scope: cfg.scopes[0]!,
        deps: { baseDir: process.cwd(), clock: systemClock },
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as ApplicationFailure).type).toBe(PatchConfigError.name);
    expect((err as Error).message).toBe('ctem.yaml integrations.wsus: missing; add server and ssh');
  });
});
