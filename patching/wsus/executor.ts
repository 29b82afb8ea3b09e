// PatchExecutor through WSUS: approve the updates of the scanner's KBs for the scope's computer
// target group with PowerShell's UpdateServices module, run on the WSUS server over SSH (OpenSSH for
// Windows) as `powershell -NoProfile -NonInteractive -EncodedCommand <base64 UTF-16LE>`, and read the
// outcome back as JSON. The encoded command is base64 only, so it is inert in cmd.exe, PowerShell and
// POSIX shells alike; the values inside the script are validated (KB\d{6,8}, group and host names)
// and written as single-quoted PowerShell literals.
//
// WSUS approves per group, not per computer: approving a KB for the group reaches every computer in
// it at its next detection cycle. Installation happens on the clients' schedule; the verifying
// re-scan is what proves the fix.
import { z } from 'zod';
import type { PatchExecutor, PatchPlan, PatchResult, PatchTarget } from '../../domain/ports.ts';
import { durationMs } from '../../domain/config.ts';
import { parseHostName, parseKbId, PatchInputError } from '../../domain/packages.ts';
import type { WsusIntegration } from '../config.ts';
import { openSshSession } from '../sshSession.ts';
import { sshEndpointFor } from '../ssh/executor.ts';
import { EvidenceLog } from '../evidence.ts';

const groupNamePattern = /^[A-Za-z0-9][A-Za-z0-9 _.-]{0,127}$/;
/** KBs per PowerShell invocation, keeping the encoded command well under cmd.exe's 8191 characters. */
const kbsPerInvocation = 40;

/** The script ran and said no (non-zero exit, no report): a failed step, not a transient fault. */
export class WsusScriptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WsusScriptError';
  }
}

export type WsusMode = 'plan' | 'apply';

export interface WsusScriptInput {
  mode: WsusMode;
  kbs: string[];
  targetGroup: string;
  computer: string;
  updateServer?: { name: string; port: number; useSsl: boolean };
}

/** A PowerShell single-quoted literal (only ' is special inside one, doubled). */
function psLiteral(value: string): string {
  if (/[\u2018\u2019\u201a\u201b\r\n\0]/.test(value))
    throw new Error('a PowerShell literal cannot hold smart quotes or line breaks');
  return `'${value.replace(/'/g, "''")}'`;
}

/** The script, from validated values only. */
export function wsusScript(input: WsusScriptInput): string {
  const kbs = input.kbs.map((kb) => parseKbId(kb));
  if (!groupNamePattern.test(input.targetGroup))
    throw new PatchInputError('targetGroup', `${JSON.stringify(input.targetGroup)} is not a WSUS group name`);
  const computer = parseHostName(input.computer, 'host');
  const server = input.updateServer
    ? `Get-WsusServer -Name ${psLiteral(parseHostName(input.updateServer.name, 'updateServer.name'))} -PortNumber ${Number(input.updateServer.port)}${input.updateServer.useSsl ? ' -UseSsl' : ''}`
    : 'Get-WsusServer';
  return [
    "$ErrorActionPreference = 'Stop'",
    "$ProgressPreference = 'SilentlyContinue'",
    `$mode = ${psLiteral(input.mode)}`,
    `$kbs = @(${kbs.map(psLiteral).join(', ')})`,
    `$groupName = ${psLiteral(input.targetGroup)}`,
    `$computerName = ${psLiteral(computer)}`,
    `$wsus = ${server}`,
    '$group = $wsus.GetComputerTargetGroups() | Where-Object { $_.Name -eq $groupName }',
    'if (-not $group) { throw "WSUS has no computer target group named $groupName" }',
    '$computer = $null',
    'try { $computer = $wsus.GetComputerTargetByName($computerName) } catch { }',
    '$inGroup = $false',
    'if ($computer) { $inGroup = [bool]($computer.GetComputerTargetGroups() | Where-Object { $_.Id -eq $group.Id }) }',
    '$results = foreach ($kb in $kbs) {',
    '  $number = $kb.Substring(2)',
    '  $found = @($wsus.SearchUpdates($kb) | Where-Object { $_.KnowledgebaseArticles -contains $number -and -not $_.IsDeclined })',
    '  $updates = foreach ($u in $found) {',
    "    $approved = [bool]($u.GetUpdateApprovals($group) | Where-Object { $_.Action -eq 'Install' })",
    '    $now = $false',
    "    if ($mode -eq 'apply' -and -not $approved) {",
    '      Get-WsusUpdate -UpdateServer $wsus -UpdateId $u.Id.UpdateId | Approve-WsusUpdate -Action Install -TargetGroupName $groupName',
    '      $approved = $true; $now = $true',
    '    }',
    '    [pscustomobject]@{ updateId = $u.Id.UpdateId.ToString(); title = $u.Title; superseded = [bool]$u.IsSuperseded; approved = $approved; approvedNow = $now }',
    '  }',
    '  [pscustomobject]@{ kb = $kb; updates = @($updates) }',
    '}',
    '[pscustomobject]@{ mode = $mode; server = $wsus.Name; group = $groupName; computer = $computerName; computerKnown = [bool]$computer; computerInGroup = $inGroup; kbs = @($results) } | ConvertTo-Json -Depth 5 -Compress',
  ].join('\n');
}

/** What -EncodedCommand takes: the script in UTF-16LE, base64. */
export function encodePowerShell(script: string): string {
  return Buffer.from(script, 'utf16le').toString('base64');
}

export function powershellCommand(script: string): string[] {
  return ['powershell', '-NoProfile', '-NonInteractive', '-EncodedCommand', encodePowerShell(script)];
}

const wsusReport = z.object({
  mode: z.enum(['plan', 'apply']),
  server: z.string().optional(),
  group: z.string(),
  computer: z.string(),
  computerKnown: z.boolean(),
  computerInGroup: z.boolean(),
  kbs: z.array(
    z.object({
      kb: z.string(),
      updates: z.array(
        z.object({
          updateId: z.string(),
          title: z.string(),
          superseded: z.boolean(),
          approved: z.boolean(),
          approvedNow: z.boolean(),
        }),
      ),
    }),
  ),
});
export type WsusReport = z.infer<typeof wsusReport>;

export class WsusPatchExecutor implements PatchExecutor {
  readonly name = 'wsus';

  /** WSUS approves updates by their Microsoft KB number. */
  advisoriesIn(text: string): string[] {
    return text.match(/\bKB\d{6,8}\b/g) ?? [];
  }

  constructor(
    private readonly settings: WsusIntegration,
    private readonly targetGroup: string,
    private readonly access: { baseDir: string; env?: NodeJS.ProcessEnv },
  ) {
    if (!groupNamePattern.test(targetGroup))
      throw new PatchInputError('targetGroup', `${JSON.stringify(targetGroup)} is not a WSUS group name`);
  }

  private validate(target: PatchTarget, index: number): { computer: string; kbs: string[] } {
    const computer = parseHostName(target.host, `targets[${index}].host`);
    const kbs = [
      ...new Set((target.advisories ?? []).map((a, j) => parseKbId(a, `targets[${index}].advisories[${j}]`))),
    ];
    if (kbs.length === 0)
      throw new PatchInputError(`targets[${index}].advisories`, 'names no KB; WSUS approves updates by KB');
    return { computer, kbs };
  }

  /** Run the script for one computer (in KB chunks) on the WSUS server; JSON reports and evidence. */
  private async run(
    mode: WsusMode,
    computer: string,
    kbs: string[],
    evidence: EvidenceLog,
  ): Promise<WsusReport> {
    const session = await openSshSession(
      sshEndpointFor(
        { settings: this.settings.ssh, baseDir: this.access.baseDir, env: this.access.env },
        this.settings.server,
      ),
    );
    const merged: WsusReport[] = [];
    try {
      for (let i = 0; i < kbs.length; i += kbsPerInvocation) {
        const script = wsusScript({
          mode,
          kbs: kbs.slice(i, i + kbsPerInvocation),
          targetGroup: this.targetGroup,
          computer,
          updateServer: this.settings.updateServer,
        });
        const r = await session.runInertTokens(powershellCommand(script), {
          timeoutMs: durationMs(this.settings.commandTimeout),
        });
        evidence.command(
          `powershell -NoProfile -NonInteractive -EncodedCommand <${mode} script for ${computer}>`,
          r,
        );
        if (r.code !== 0)
          throw new WsusScriptError(
            `the WSUS ${mode} script failed on ${this.settings.server} (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(0, 600)}`,
          );
        const json = r.stdout
          .trim()
          .split('\n')
          .filter((l) => l.trim().startsWith('{'))
          .at(-1);
        let parsed: unknown;
        try {
          parsed = JSON.parse(json ?? '');
        } catch {
          throw new WsusScriptError(
            `the WSUS ${mode} script on ${this.settings.server} printed no JSON report: ${r.stdout.trim().slice(0, 300)}`,
          );
        }
        const report = wsusReport.safeParse(parsed);
        if (!report.success)
          throw new WsusScriptError(
            `the WSUS ${mode} script's report has an unexpected shape: ${report.error.issues[0]?.message}`,
          );
        merged.push(report.data);
      }
    } finally {
      session.close();
    }
    return { ...merged[0]!, kbs: merged.flatMap((m) => m.kbs) };
  }

  async plan(rolloutId: string, targets: PatchTarget[]): Promise<PatchPlan> {
    const checked = targets.map((t, i) => this.validate(t, i));
    const steps: PatchPlan['steps'] = [];
    const problems: NonNullable<PatchPlan['problems']> = [];
    const lines = [
      `Patch plan for ${rolloutId} through WSUS on ${this.settings.server}, target group "${this.targetGroup}" (an approval reaches every computer in the group), ${targets.length} host(s):`,
    ];
    for (const { computer, kbs } of checked) {
      const report = await this.run('plan', computer, kbs, new EvidenceLog());
      lines.push(
        `${computer}: ${report.computerKnown ? (report.computerInGroup ? `member of "${this.targetGroup}"` : `NOT a member of "${this.targetGroup}"`) : 'not known to WSUS'}`,
      );
      if (!report.computerKnown)
        problems.push({
          host: computer,
          message: `WSUS knows no computer named ${computer}: it does not report to ${this.settings.server}`,
        });
      else if (!report.computerInGroup)
        problems.push({
          host: computer,
          message: `${computer} is not in the target group "${this.targetGroup}": an approval there would not reach it`,
        });
      for (const k of report.kbs) {
        if (k.updates.length === 0) {
          problems.push({
            host: computer,
            message: `${k.kb} is not in the WSUS catalog (check the synchronized products and classifications)`,
          });
          lines.push(`  ${k.kb}: not found`);
        }
        for (const u of k.updates)
          lines.push(
            `  ${k.kb}: ${u.title}${u.superseded ? ' (superseded)' : ''} — ${u.approved ? 'already approved' : 'will be approved for Install'}`,
          );
      }
      const script = wsusScript({
        mode: 'apply',
        kbs,
        targetGroup: this.targetGroup,
        computer,
        updateServer: this.settings.updateServer,
      });
      steps.push({
        host: computer,
        description: `on ${this.settings.server}: Approve-WsusUpdate -Action Install -TargetGroupName "${this.targetGroup}" for ${kbs.join(', ')}`,
        command: [
          'powershell',
          '-NoProfile',
          '-NonInteractive',
          '-EncodedCommand',
          `<${encodePowerShell(script).length} base64 characters>`,
        ],
      });
    }
    if (problems.length)
      lines.push(
        'Problems (apply would not reach the fix):',
        ...problems.map((p) => `  ${p.host}: ${p.message}`),
      );
    return { executor: this.name, rolloutId, targets, summary: lines.join('\n'), steps, problems };
  }

  async apply(plan: PatchPlan): Promise<PatchResult> {
    const checked = plan.targets.map((t, i) => this.validate(t, i));
    const hosts: PatchResult['hosts'] = [];
    for (const { computer, kbs } of checked) {
      const evidence = new EvidenceLog();
      let ok = false;
      try {
        const report = await this.run('apply', computer, kbs, evidence);
        const missing = report.kbs
          .filter((k) => k.updates.length === 0 || k.updates.some((u) => !u.approved))
          .map((k) => k.kb);
        for (const k of report.kbs)
          for (const u of k.updates)
            evidence.note(
              `${k.kb} ${u.updateId} ${u.title}: ${u.approvedNow ? 'approved now' : u.approved ? 'was already approved' : 'NOT approved'}`,
            );
        if (missing.length) evidence.note(`FAILED: not approved: ${missing.join(', ')}`);
        ok = missing.length === 0;
      } catch (err) {
        if (!(err instanceof WsusScriptError)) throw err;
        evidence.note(`FAILED: ${err.message}`);
      }
      hosts.push({ host: computer, ok, output: evidence.text() });
      if (!ok) break;
    }
    return {
      ok: hosts.length === plan.targets.length && hosts.every((h) => h.ok),
      hosts,
      finishedAt: new Date().toISOString(),
    };
  }
}
