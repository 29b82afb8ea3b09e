// PatchExecutor over SSH: on each host, detect the package manager (apt, dnf, yum, zypper), upgrade
// only the affected packages to at least their fixed versions, verify the installed versions, and
// check whether a reboot is required. Every scanner-provided string is validated against the host's
// package-manager syntax before any command exists, and every command is an argument vector sent as
// single-quoted words (sshSession.ts). The plan runs only read-only commands (queries, a dry run, and
// apt's package-list refresh); apply re-checks and runs the listed steps, and keeps their output as
// evidence.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { PatchExecutor, PatchPlan, PatchResult, PatchTarget } from '../../domain/ports.ts';
import { resolveSecret } from '../../runtime/config.ts';
import { durationMs } from '../../domain/config.ts';
import {
  packageFamily,
  parseHostName,
  parsePackageSpec,
  PatchInputError,
  satisfiesFixedVersions,
  compareVersions,
  type PackageManager,
  type PackageSpec,
} from '../../domain/packages.ts';
import type { SshConnectionSettings, SshIntegration } from '../config.ts';
import { openSshSession, type CommandOutcome, type SshEndpoint, type SshSession } from '../sshSession.ts';
import {
  dryRunCommand,
  dryRunSummaryLine,
  installedVersionsCommand,
  interpretRebootCheck,
  managerProbes,
  parseDryRunCandidates,
  parseInstalledVersions,
  probeCommand,
  rebootCheckCommand,
  refreshCommand,
  upgradeCommand,
  type RemoteCommand,
} from '../packageCommands.ts';
import { displayCommand } from '../shellCommand.ts';
import { EvidenceLog } from '../evidence.ts';

/** How to reach hosts over SSH, with secrets resolved. */
export interface SshAccess {
  settings: SshConnectionSettings;
  /** Folder that relative paths (knownHosts) resolve against. */
  baseDir: string;
  env?: NodeJS.ProcessEnv;
}

/** The endpoint for an inventory host: its address, port and login from the settings, pins loaded now. */
export function sshEndpointFor(access: SshAccess, host: string): SshEndpoint {
  const { settings, baseDir, env = process.env } = access;
  const override = settings.hosts[host] ?? {};
  const knownHostsFile = settings.knownHosts ? path.resolve(baseDir, settings.knownHosts) : undefined;
  let knownHosts: { text: string; file: string } | undefined;
  if (knownHostsFile) {
    try {
      knownHosts = { text: readFileSync(knownHostsFile, 'utf8'), file: knownHostsFile };
    } catch (err) {
      throw new PatchInputError('knownHosts', `cannot read ${knownHostsFile}: ${(err as Error).message}`);
    }
  }
  const address = override.address ?? host;
  const fingerprints = [
    ...(settings.hostKeys[host] ?? []),
    ...(address !== host ? (settings.hostKeys[address] ?? []) : []),
  ];
  return {
    host,
    address,
    port: override.port ?? settings.port,
    username: override.user ?? settings.user,
    auth: settings.privateKey
      ? {
          privateKey: resolveSecret(settings.privateKey, env, baseDir),
          passphrase: settings.passphrase ? resolveSecret(settings.passphrase, env, baseDir) : undefined,
        }
      : {
          agent: settings.agent!.startsWith('env:')
            ? resolveSecret(settings.agent!, env, baseDir)
            : settings.agent!,
        },
    pins: { knownHosts, fingerprints },
    connectTimeoutMs: durationMs(settings.connectTimeout),
  };
}

/** Scanner data checked before anything connects: a name must be valid for deb or for rpm. */
function prevalidate(target: PatchTarget, index: number): void {
  parseHostName(target.host, `targets[${index}].host`);
  target.packages.forEach((p, j) => {
    const field = `targets[${index}].packages[${j}]`;
    try {
      parsePackageSpec('apt', p, field);
    } catch (debError) {
      try {
        parsePackageSpec('dnf', p, field);
      } catch {
        throw debError;
      }
    }
  });
  if (target.packages.length === 0)
    throw new PatchInputError(
      `targets[${index}].packages`,
      'lists no package; the SSH executor upgrades packages only',
    );
}

interface HostAssessment {
  manager: PackageManager;
  probe: RemoteCommand;
  /** Packages that still need the upgrade, with what is installed now. */
  toUpgrade: { spec: PackageSpec; installed: string[] }[];
  notes: string[];
}

async function detectManager(
  session: SshSession,
): Promise<{ manager: PackageManager; probe: RemoteCommand }> {
  for (const { manager, program } of managerProbes) {
    const probe = probeCommand(program);
    const r = await session.run(probe.argv);
    if (r.code === 0 && r.stdout.trim() !== '') return { manager, probe };
  }
  throw new PatchInputError(
    'host',
    `${session.endpoint.host} has none of apt-get, dnf, yum or zypper on the login's PATH; patch it another way or fix the PATH`,
  );
}

/** Detect, validate against the host's manager, and find which packages still need upgrading. */
async function assessHost(session: SshSession, target: PatchTarget, index: number): Promise<HostAssessment> {
  const { manager, probe } = await detectManager(session);
  const family = packageFamily(manager);
  const specs = target.packages.map((p, j) =>
    parsePackageSpec(manager, p, `targets[${index}].packages[${j}]`),
  );
  const query = installedVersionsCommand(
    manager,
    specs.map((s) => s.name),
  );
  const r = await session.run(query.argv);
  if (r.code !== 0 && r.code !== 1)
    throw new Error(
      `${displayCommand(query.argv)} failed on ${target.host} (exit ${r.code}): ${r.stderr || r.stdout}`,
    );
  const installed = parseInstalledVersions(manager, r.stdout);
  const notes: string[] = [];
  const toUpgrade: HostAssessment['toUpgrade'] = [];
  for (const spec of specs) {
    const versions = installed.get(spec.name.replace(/:[a-z0-9-]+$/, '')) ?? [];
    if (versions.length === 0) notes.push(`${spec.name} is not installed: nothing to upgrade`);
    // Without a known fix the newest available version is the best there is; the re-scan judges it.
    else if (
      spec.fixedVersions.length > 0 &&
      versions.every((v) => satisfiesFixedVersions(family, v, spec.fixedVersions))
    )
      notes.push(
        `${spec.name} ${versions.join(', ')} is already at or past the fix ${spec.fixedVersions.join(' | ')}`,
      );
    else toUpgrade.push({ spec, installed: versions });
  }
  return { manager, probe, toUpgrade, notes };
}

function fixText(spec: PackageSpec): string {
  return spec.fixedVersions.length
    ? `fixed in ${spec.fixedVersions.join(' | ')}`
    : 'no fixed version given: newest available';
}

export class SshPatchExecutor implements PatchExecutor {
  readonly name = 'ssh';

  constructor(
    private readonly settings: SshIntegration,
    private readonly access: SshAccess,
  ) {}

  async plan(rolloutId: string, targets: PatchTarget[]): Promise<PatchPlan> {
    targets.forEach(prevalidate);
    const steps: PatchPlan['steps'] = [];
    const problems: NonNullable<PatchPlan['problems']> = [];
    const lines: string[] = [];
    for (const [index, target] of targets.entries()) {
      const session = await openSshSession(sshEndpointFor(this.access, target.host));
      try {
        const a = await assessHost(session, target, index);
        const sudo = this.settings.sudo;
        lines.push(`${target.host} (${a.manager}):`);
        steps.push({
          host: target.host,
          description: `detect the package manager: ${a.manager}`,
          command: a.probe.argv,
        });
        for (const note of a.notes) lines.push(`  ${note}`);
        if (a.toUpgrade.length === 0) {
          lines.push('  nothing to do on this host');
          continue;
        }
        const specs = a.toUpgrade.map((u) => u.spec);
        const refresh = refreshCommand(a.manager, sudo);
        if (refresh) {
          // The dry run is only as good as the package lists it reads.
          const r = await session.run(refresh.argv, { env: refresh.env });
          if (r.code !== 0)
            problems.push({
              host: target.host,
              message: `refreshing package lists failed (exit ${r.code}): ${tail(r.stderr || r.stdout)}`,
            });
          steps.push({ host: target.host, description: 'refresh package lists', command: refresh.argv });
        }
        const dry = dryRunCommand(a.manager, sudo, specs);
        const d = await session.run(dry.argv, { env: dry.env });
        // dnf/yum --assumeno exit 1 after printing the transaction ("Operation aborted").
        const dryOk = d.code === 0 || (d.code === 1 && (a.manager === 'dnf' || a.manager === 'yum'));
        if (!dryOk)
          problems.push({
            host: target.host,
            message: `the dry run ${displayCommand(dry.argv)} failed (exit ${d.code}): ${tail(d.stderr || d.stdout)}`,
          });
        const candidates = parseDryRunCandidates(a.manager, d.stdout);
        for (const { spec, installed } of a.toUpgrade) {
          const candidate = candidates?.get(spec.name.replace(/:[a-z0-9-]+$/, ''));
          lines.push(
            `  upgrade ${spec.name} ${installed.join(', ')} → ${candidate ?? (candidates ? 'nothing offered' : 'newest available')} (${fixText(spec)})`,
          );
          if (candidates && dryOk) {
            if (!candidate)
              problems.push({
                host: target.host,
                message: `the dry run offers no upgrade of ${spec.name} (installed ${installed.join(', ')}, ${fixText(spec)}): the repositories do not carry the fix yet`,
              });
            else if (!satisfiesFixedVersions(packageFamily(a.manager), candidate, spec.fixedVersions))
              problems.push({
                host: target.host,
                message: `the repositories offer ${spec.name} ${candidate}, below the fix ${spec.fixedVersions.join(' | ')}: update the mirror first`,
              });
          }
        }
        const summary = dryRunSummaryLine(d.stdout);
        lines.push(`  dry run (${displayCommand(dry.argv)}): ${summary ?? `exit ${d.code}`}`);
        const upgrade = upgradeCommand(a.manager, sudo, specs);
        steps.push({
          host: target.host,
          description: `upgrade ${specs.map((s) => s.name).join(', ')}${upgrade.env ? ' (DEBIAN_FRONTEND=noninteractive)' : ''}`,
          command: upgrade.argv,
        });
        steps.push({
          host: target.host,
          description: 'verify the installed versions reach the fix',
          command: installedVersionsCommand(
            a.manager,
            specs.map((s) => s.name),
          ).argv,
        });
        steps.push({
          host: target.host,
          description: 'check whether a reboot is required',
          command: rebootCheckCommand(a.manager, this.settings.rebootRequiredFile).argv,
        });
      } finally {
        session.close();
      }
    }
    const header = `Patch plan for ${rolloutId} over SSH, ${targets.length} host(s):`;
    const problemLines = problems.map((p) => `  ${p.host}: ${p.message}`);
    return {
      executor: this.name,
      rolloutId,
      targets,
      summary: [
        header,
        ...lines,
        ...(problemLines.length ? ['Problems (apply would not reach the fix):', ...problemLines] : []),
      ].join('\n'),
      steps,
      problems,
    };
  }

  async apply(plan: PatchPlan): Promise<PatchResult> {
    plan.targets.forEach(prevalidate);
    const hosts: PatchResult['hosts'] = [];
    for (const [index, target] of plan.targets.entries()) {
      const outcome = await this.applyHost(plan, target, index);
      hosts.push(outcome);
      // A failed host stops the rollout: the rest are left untouched.
      if (!outcome.ok) break;
    }
    return {
      ok: hosts.length === plan.targets.length && hosts.every((h) => h.ok),
      hosts,
      finishedAt: new Date().toISOString(),
    };
  }

  private async applyHost(
    plan: PatchPlan,
    target: PatchTarget,
    index: number,
  ): Promise<PatchResult['hosts'][number]> {
    const evidence = new EvidenceLog();
    const session = await openSshSession(sshEndpointFor(this.access, target.host));
    const timeoutMs = durationMs(this.settings.commandTimeout);
    const step = async (cmd: RemoteCommand): Promise<CommandOutcome> => {
      const r = await session.run(cmd.argv, { env: cmd.env, timeoutMs });
      evidence.command(displayCommand(cmd.argv), r);
      return r;
    };
    const fail = (why: string) => {
      evidence.note(`FAILED: ${why}`);
      return { host: target.host, ok: false, output: evidence.text() };
    };
    try {
      const a = await assessHost(session, target, index);
      const approvedProbe = plan.steps.find(
        (s) => s.host === target.host && s.command?.[0] === 'command',
      )?.command;
      if (approvedProbe && approvedProbe.join(' ') !== a.probe.argv.join(' '))
        return fail(
          `the host's package manager is now ${a.manager}, not what the approved plan was made for (${approvedProbe.join(' ')}); plan again`,
        );
      evidence.note(`package manager: ${a.manager}`);
      for (const note of a.notes) evidence.note(note);
      if (a.toUpgrade.length > 0) {
        const specs = a.toUpgrade.map((u) => u.spec);
        const refresh = refreshCommand(a.manager, this.settings.sudo);
        if (refresh && (await step(refresh)).code !== 0) return fail('refreshing the package lists failed');
        const up = await step(upgradeCommand(a.manager, this.settings.sudo, specs));
        if (up.code !== 0) return fail(`the upgrade exited with ${up.code ?? 'a signal'}`);
        const check = await step(
          installedVersionsCommand(
            a.manager,
            specs.map((s) => s.name),
          ),
        );
        const now = parseInstalledVersions(a.manager, check.stdout);
        const family = packageFamily(a.manager);
        const short: string[] = [];
        for (const spec of specs) {
          const versions = now.get(spec.name.replace(/:[a-z0-9-]+$/, '')) ?? [];
          const lowest = versions.sort((x, y) => compareVersions(family, x, y))[0];
          if (!lowest || !satisfiesFixedVersions(family, lowest, spec.fixedVersions))
            short.push(`${spec.name} is ${versions.join(', ') || 'not installed'}, ${fixText(spec)}`);
          else evidence.note(`verified ${spec.name} ${versions.join(', ')} (${fixText(spec)})`);
        }
        if (short.length) return fail(`after the upgrade ${short.join('; ')}`);
      } else evidence.note('nothing to upgrade: every package is already at or past its fix');
      const reboot = await step(rebootCheckCommand(a.manager, this.settings.rebootRequiredFile));
      const rebootRequired = interpretRebootCheck(a.manager, reboot.code);
      evidence.note(
        rebootRequired === undefined
          ? 'reboot requirement unknown'
          : rebootRequired
            ? 'a reboot is required'
            : 'no reboot required',
      );
      return { host: target.host, ok: true, output: evidence.text(), rebootRequired };
    } catch (err) {
      if (err instanceof PatchInputError) return fail(err.message);
      throw err;
    } finally {
      session.close();
    }
  }
}

function tail(text: string, max = 400): string {
  const t = text.trim();
  return t.length > max ? `…${t.slice(-max)}` : t;
}
