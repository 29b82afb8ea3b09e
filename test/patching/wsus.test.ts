// The WSUS executor through a real sshd, with a powershell shim that decodes and checks the script.
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PatchInputError } from '../../domain/packages.ts';
import { wsusIntegrationSchema, type WsusIntegration } from '../../patching/config.ts';
import { encodePowerShell, WsusPatchExecutor, wsusScript } from '../../patching/wsus/executor.ts';
import type { PatchTarget } from '../../domain/ports.ts';
import { testSshd, type Sshd } from '../support/sshd.ts';
import { powershellShim, receivedScripts, setWsusState, wsusState, type FakeWsusState } from './fakeWsus.ts';

function settingsFor(sshd: Sshd): WsusIntegration {
  return wsusIntegrationSchema.parse({
    server: 'wsus01.example.com',
    ssh: {
      user: sshd.user,
      privateKey: `file:${sshd.privateKeyPath}`,
      knownHosts: sshd.knownHostsPath,
      hosts: { 'wsus01.example.com': { address: '127.0.0.1', port: sshd.port } },
    },
  });
}

const catalog = (): FakeWsusState => ({
  server: 'WSUS01',
  groups: ['All Computers', 'Unassigned Computers', 'Production Servers', 'Pilot'],
  computers: {
    'app-01.example.com': ['All Computers', 'Production Servers'],
    'app-02.example.com': ['All Computers', 'Pilot'],
  },
  updates: [
    {
      kb: 'KB5034439',
      updateId: '5c3b2bd6-9a14-4c8f-8b8e-0c2f1a0f6a11',
      title: '2024-01 Security Update for Windows Server 2022 for x64-based Systems (KB5034439)',
    },
    {
      kb: 'KB5034129',
      updateId: '0e8a7f3c-4a7f-4d51-9a3e-8f0d1c9b2e42',
      title:
        '2024-01 Cumulative Update for Microsoft server operating system version 21H2 for x64-based Systems (KB5034129)',
    },
  ],
  approvals: {},
});

const target: PatchTarget = {
  assetId: 7,
  host: 'app-01.example.com',
  packages: [],
  advisories: ['KB5034439', 'kb5034129'],
  cves: ['CVE-2024-20666'],
};

describe('WSUS executor over SSH', () => {
  let sshd: Sshd;
  beforeAll(async () => {
    sshd = await testSshd({ shims: { powershell: powershellShim } });
  });
  beforeEach(async () => {
    await setWsusState(sshd, catalog());
    await sshd.clearCalls();
  });

  it('plans with an encoded read-only script and shows what would be approved', async () => {
    const ex = new WsusPatchExecutor(settingsFor(sshd), 'Production Servers', { baseDir: process.cwd() });
    const plan = await ex.plan('ru:win:app-01', [target]);
    const calls = await sshd.calls('powershell');
    expect(calls).toHaveLength(1);
    const script = wsusScript({
      mode: 'plan',
      kbs: ['KB5034439', 'KB5034129'],
      targetGroup: 'Production Servers',
      computer: 'app-01.example.com',
    });
    expect(calls[0]!.argv).toEqual([
      '-NoProfile',
      '-NonInteractive',
      '-EncodedCommand',
      encodePowerShell(script),
    ]);
    const [received] = await receivedScripts(sshd);
    expect(received).toBe(script);
    expect(received).toContain("$kbs = @('KB5034439', 'KB5034129')");
    expect(received).toContain("$groupName = 'Production Servers'");
    expect(plan.problems).toEqual([]);
    expect(plan.summary).toContain('app-01.example.com: member of "Production Servers"');
    expect(plan.summary).toContain(
      'KB5034439: 2024-01 Security Update for Windows Server 2022 for x64-based Systems (KB5034439) — will be approved for Install',
    );
    expect(plan.steps[0]!.description).toBe(
      'on wsus01.example.com: Approve-WsusUpdate -Action Install -TargetGroupName "Production Servers" for KB5034439, KB5034129',
    );
    expect((await wsusState(sshd)).approvals).toEqual({});
  });

  it('approves the updates for the target group and keeps the JSON report as evidence', async () => {
    const ex = new WsusPatchExecutor(settingsFor(sshd), 'Production Servers', { baseDir: process.cwd() });
    const result = await ex.apply(await ex.plan('ru:win:app-01', [target]));
    expect(result.ok).toBe(true);
    expect((await wsusState(sshd)).approvals).toEqual({
      '5c3b2bd6-9a14-4c8f-8b8e-0c2f1a0f6a11': ['Production Servers'],
      '0e8a7f3c-4a7f-4d51-9a3e-8f0d1c9b2e42': ['Production Servers'],
    });
    expect((await receivedScripts(sshd)).map((s) => /^\$mode = '(\w+)'$/m.exec(s)?.[1])).toEqual([
      'plan',
      'apply',
    ]);
    const output = result.hosts[0]!.output;
    expect(output).toContain('"computerInGroup":true');
    expect(output).toContain('# KB5034439 5c3b2bd6-9a14-4c8f-8b8e-0c2f1a0f6a11 2024-01 Security Update');
    expect(output).toContain('approved now');
    // A second apply finds them approved and changes nothing.
    const again = await ex.apply(await ex.plan('ru:win:app-01', [target]));
    expect(again.ok).toBe(true);
    expect(again.hosts[0]!.output).toContain('was already approved');
  });

  it('says when a KB is not in the catalog or the computer is not in the group', async () => {
    const ex = new WsusPatchExecutor(settingsFor(sshd), 'Production Servers', { baseDir: process.cwd() });
    const plan = await ex.plan('ru:win', [
      { ...target, advisories: ['KB5099999'] },
      { ...target, host: 'app-02.example.com', advisories: ['KB5034439'] },
    ]);
    expect(plan.problems).toEqual([
      {
        host: 'app-01.example.com',
        message: 'KB5099999 is not in the WSUS catalog (check the synchronized products and classifications)',
      },
      {
        host: 'app-02.example.com',
        message:
          'app-02.example.com is not in the target group "Production Servers": an approval there would not reach it',
      },
    ]);
    const result = await ex.apply(plan);
    expect(result.ok).toBe(false);
    expect(result.hosts).toHaveLength(1);
    expect(result.hosts[0]!.output).toContain('FAILED: not approved: KB5099999');
  });

  it('fails the step when the script throws on the server', async () => {
    const ex = new WsusPatchExecutor(settingsFor(sshd), 'Pilot Ring 2', { baseDir: process.cwd() });
    const result = await ex.apply({
      executor: 'wsus',
      rolloutId: 'ru:win',
      targets: [target],
      summary: '',
      steps: [],
    });
    expect(result.ok).toBe(false);
    expect(result.hosts[0]!.output).toContain('WSUS has no computer target group named Pilot Ring 2');
  });

  it('splits many KBs over several invocations to stay under the command-line limit', async () => {
    const kbs = Array.from({ length: 45 }, (_, i) => `KB50${String(34000 + i)}`);
    const ex = new WsusPatchExecutor(settingsFor(sshd), 'Production Servers', { baseDir: process.cwd() });
    await ex.plan('ru:win', [{ ...target, advisories: kbs }]);
    const calls = await sshd.calls('powershell');
    expect(calls).toHaveLength(2);
    for (const c of calls) expect(`powershell ${c.argv.join(' ')}`.length).toBeLessThan(8191);
  });

  it('refuses hostile KB ids, computer and group names before connecting', async () => {
    const ex = new WsusPatchExecutor(settingsFor(sshd), 'Production Servers', { baseDir: process.cwd() });
    for (const advisories of [
      ["KB5034439'; Remove-Item -Recurse C:\\"],
      ['KB5034439; shutdown /r'],
      ['$(Stop-Computer)'],
    ])
      await expect(ex.plan('ru:win', [{ ...target, advisories }])).rejects.toThrow(PatchInputError);
    await expect(ex.plan('ru:win', [{ ...target, host: "app-01'; Stop-Computer; '" }])).rejects.toThrow(
      PatchInputError,
    );
    expect(
      () => new WsusPatchExecutor(settingsFor(sshd), "Prod'; Stop-Computer; '", { baseDir: process.cwd() }),
    ).toThrow(PatchInputError);
    expect(await sshd.calls()).toEqual([]);
  });
});
