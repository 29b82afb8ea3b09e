// The commands the SSH executor runs per package manager, as argument vectors, and the parsers for
// what those commands print. Pure: the same validated input always gives the same vectors, so the
// plan a person approves lists exactly what apply runs.
import type { PackageManager, PackageSpec } from '../domain/packages.ts';

export interface RemoteCommand {
  argv: string[];
  /** Constant environment assignments for the command (never scanner data). */
  env?: Record<string, string>;
}

/** Probe order: a host with both dnf and yum is a dnf host; apt-get first because it never coexists. */
export const managerProbes: { manager: PackageManager; program: string }[] = [
  { manager: 'apt', program: 'apt-get' },
  { manager: 'dnf', program: 'dnf' },
  { manager: 'yum', program: 'yum' },
  { manager: 'zypper', program: 'zypper' },
];

export function probeCommand(program: string): RemoteCommand {
  return { argv: ['command', '-v', program] };
}

function privileged(sudo: boolean, argv: string[]): string[] {
  return sudo ? ['sudo', '-n', ...argv] : argv;
}

const dpkgFormat = '${Package}\\t${db:Status-Abbrev}\\t${Version}\\n';
const rpmFormat = '%{NAME}\\t%{EPOCH}:%{VERSION}-%{RELEASE}\\n';

export function installedVersionsCommand(manager: PackageManager, names: string[]): RemoteCommand {
  if (manager === 'apt') return { argv: ['dpkg-query', '-W', `-f=${dpkgFormat}`, ...names] };
  return { argv: ['rpm', '-q', '--qf', rpmFormat, ...names] };
}

/**
 * Installed versions by package name (several when several architectures are installed). Names
 * given with a Debian multiarch qualifier ("libssl3:amd64") are looked up without it.
 */
export function parseInstalledVersions(manager: PackageManager, stdout: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const line of stdout.split('\n')) {
    const fields = line.split('\t');
    let name: string | undefined;
    let version: string | undefined;
    if (manager === 'apt') {
      // Status "ii"/"hi" = installed; "rc" (removed, config files left) still has a version.
      if (fields.length !== 3 || !/^[uihrp]i/.test(fields[1]!)) continue;
      [name, , version] = fields;
    } else {
      if (fields.length !== 2) continue;
      [name, version] = fields;
      version = version!.replace(/^\(none\):/, '');
    }
    if (!name || !version) continue;
    found.set(name, [...(found.get(name) ?? []), version.trim()]);
  }
  return found;
}

export function refreshCommand(manager: PackageManager, sudo: boolean): RemoteCommand | undefined {
  // dnf, yum and zypper refresh expired metadata on their own; apt-get only on request.
  if (manager !== 'apt') return undefined;
  return { argv: privileged(sudo, ['apt-get', 'update', '-q']), env: { DEBIAN_FRONTEND: 'noninteractive' } };
}

/** dnf/yum take "name-version" to upgrade to that version; a fix with alternatives takes the newest. */
function rpmUpgradeSpec(p: PackageSpec): string {
  return p.fixedVersions.length === 1 ? `${p.name}-${p.fixedVersions[0]}` : p.name;
}

export function dryRunCommand(
  manager: PackageManager,
  sudo: boolean,
  packages: PackageSpec[],
): RemoteCommand {
  const names = packages.map((p) => p.name);
  switch (manager) {
    case 'apt':
      // A simulation needs no privileges.
      return { argv: ['apt-get', '-s', '-q', 'install', '--only-upgrade', ...names] };
    case 'dnf':
    case 'yum':
      return { argv: privileged(sudo, [manager, 'upgrade', '--assumeno', ...packages.map(rpmUpgradeSpec)]) };
    case 'zypper':
      return { argv: privileged(sudo, ['zypper', '--non-interactive', 'update', '--dry-run', ...names]) };
  }
}

export function upgradeCommand(
  manager: PackageManager,
  sudo: boolean,
  packages: PackageSpec[],
): RemoteCommand {
  const names = packages.map((p) => p.name);
  switch (manager) {
    case 'apt':
      return {
        argv: privileged(sudo, [
          'apt-get',
          'install',
          '--only-upgrade',
          '-y',
          '-q',
          '-o',
          'Dpkg::Options::=--force-confdef',
          '-o',
          'Dpkg::Options::=--force-confold',
          ...names,
        ]),
        env: { DEBIAN_FRONTEND: 'noninteractive' },
      };
    case 'dnf':
    case 'yum':
      return { argv: privileged(sudo, [manager, 'upgrade', '-y', ...packages.map(rpmUpgradeSpec)]) };
    case 'zypper':
      return { argv: privileged(sudo, ['zypper', '--non-interactive', 'update', ...names]) };
  }
}

export function rebootCheckCommand(manager: PackageManager, rebootRequiredFile: string): RemoteCommand {
  switch (manager) {
    case 'apt':
      return { argv: ['test', '-f', rebootRequiredFile] };
    case 'dnf':
    case 'yum':
      return { argv: ['needs-restarting', '-r'] };
    case 'zypper':
      return { argv: ['zypper', 'needs-rebooting'] };
  }
}

/** true/false when the check answered, undefined when the tool is missing or said something else. */
export function interpretRebootCheck(manager: PackageManager, code: number | null): boolean | undefined {
  switch (manager) {
    case 'apt':
      return code === 0 ? true : code === 1 ? false : undefined;
    case 'dnf':
    case 'yum':
      return code === 1 ? true : code === 0 ? false : undefined;
    case 'zypper':
      return code === 102 ? true : code === 0 ? false : undefined;
  }
}

/**
 * Candidate versions a dry run would install, by package name: apt-get -s "Inst" lines, dnf/yum
 * transaction tables. Zypper's plain dry run does not print versions (undefined: not parsed).
 */
export function parseDryRunCandidates(
  manager: PackageManager,
  stdout: string,
): Map<string, string> | undefined {
  const found = new Map<string, string>();
  if (manager === 'apt') {
    for (const line of stdout.split('\n')) {
      const m = /^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) /.exec(line);
      if (m) found.set(m[1]!.replace(/:[a-z0-9-]+$/, ''), m[2]!);
    }
    return found;
  }
  if (manager === 'dnf' || manager === 'yum') {
    let inTable = false;
    for (const line of stdout.split('\n')) {
      if (
        /^(Upgrading|Installing|Installing dependencies|Updating|Installing weak dependencies):\s*$/.test(
          line,
        )
      ) {
        inTable = true;
        continue;
      }
      if (line.trim() === '' || /^\S/.test(line)) {
        inTable = false;
        continue;
      }
      const m = inTable ? /^\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)/.exec(line) : null;
      if (m) found.set(m[1]!, m[3]!);
    }
    return found;
  }
  return undefined;
}

/** apt-get's "n upgraded, n newly installed, …" or dnf's "Upgrade n Packages", for the plan. */
export function dryRunSummaryLine(stdout: string): string | undefined {
  const lines = stdout.split('\n').map((l) => l.trim());
  return (
    lines.find((l) => /^\d+ upgraded, \d+ newly installed/.test(l)) ??
    lines.find((l) => /^(Upgrade|Install)\s+\d+ Packages?/.test(l)) ??
    lines.find((l) => /^\d+ packages? to upgrade/.test(l)) ??
    lines.find((l) => /^Nothing to do\.?$/.test(l))
  );
}
