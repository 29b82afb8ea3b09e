// The nmap connector: Debian's nmap binary run against a scope's CIDRs and hosts (a scan cycle) or a
// few inventory assets (a targeted re-scan), its XML report fed to the ordinary ingest path.
//
// Coverage: nmap reports the hosts it found up; an up host with no open port is still covered, so the
// ports it no longer has are marked gone, and a host that was down is not (a host being off is not
// a port being closed). With an explicit port list only those ports' open-port exposures are covered.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { durationMs, type Scope } from '../domain/config.ts';
import type { RescanRequest, RescanTicket, ScanConnector } from '../domain/ports.ts';
import type { IngestSummary } from '../ingest/ingest.ts';
import {
  ConnectorConfigError,
  integrationSection,
  nmapSchema,
  scanTarget,
  scopeScanSettings,
  scopeTargets,
  type NmapSettings,
} from './config.ts';
import { ingestOutput, rescanThrough, type ConnectorContext, type ScopeScanner } from './ingestRun.ts';
import { reportedHosts, type ReportedHosts } from './reportHosts.ts';
import { assetsReportedAs } from './targets.ts';

export interface NmapRunOptions {
  targets: string[];
  /** Overrides settings.ports. */
  ports?: string;
  signal?: AbortSignal;
}

export interface NmapRun {
  /** The XML report; remove `dir` when done. */
  xmlPath: string;
  dir: string;
  /** The hosts nmap found up. */
  up: ReportedHosts;
  /** The open-port weakness keys the scan covered, when it was limited to a port list. */
  coveredPortKeys?: string[];
}

/** The argument vector: every target validated, never a shell. */
export function nmapArguments(settings: NmapSettings, xmlPath: string, opts: NmapRunOptions): string[] {
  for (const t of opts.targets) {
    if (!scanTarget.safeParse(t).success)
      throw new ConnectorConfigError(
        `nmap target ${JSON.stringify(t)} is not an IP address, a CIDR block or a host name`,
      );
  }
  if (opts.targets.length === 0) throw new ConnectorConfigError('nmap was given no target to scan');
  const ports = opts.ports ?? settings.ports;
  return [
    '-oX',
    xmlPath,
    '-sT',
    `-T${settings.timing}`,
    '--host-timeout',
    `${Math.ceil(durationMs(settings.hostTimeout) / 1000)}s`,
    ...(ports ? ['-p', ports] : []),
    ...(settings.serviceDetection ? ['-sV'] : []),
    ...(settings.hostDiscovery ? [] : ['-Pn']),
    ...(settings.reverseDns ? [] : ['-n']),
    '--',
    ...opts.targets,
  ];
}

/** Run nmap; resolves when its XML report is complete. */
export async function runNmap(settings: NmapSettings, opts: NmapRunOptions): Promise<NmapRun> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ctem-nmap-'));
  const xmlPath = path.join(dir, 'nmap.xml');
  try {
    const args = nmapArguments(settings, xmlPath, opts);
    await new Promise<void>((resolve, reject) => {
      execFile(
        settings.binary,
        args,
        { timeout: durationMs(settings.timeout), signal: opts.signal, maxBuffer: 16 * 1024 * 1024 },
        (err, _stdout, stderr) => {
          if (!err) return resolve();
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT')
            return reject(
              new ConnectorConfigError(
                `${settings.binary} not found; install Debian's nmap package or set integrations.nmap.binary`,
              ),
            );
          reject(
            new Error(`nmap failed (${err.message.split('\n')[0]}): ${String(stderr).trim().slice(0, 500)}`),
          );
        },
      );
    });
    const ports = opts.ports ?? settings.ports;
    return {
      xmlPath,
      dir,
      up: await reportedHosts(xmlPath, 'nmap'),
      coveredPortKeys: ports ? expandPorts(ports).map((p) => `nmap:open-port/tcp/${p}`) : undefined,
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** "22,80,8000-8002" → [22, 80, 8000, 8001, 8002]. */
export function expandPorts(spec: string): number[] {
  const out = new Set<number>();
  for (const part of spec.split(',')) {
    const [a, b] = part.split('-').map(Number) as [number, number | undefined];
    for (let p = a; p <= (b ?? a); p++) out.add(p);
  }
  return [...out];
}

/** The nmap connector; integrations.nmap is optional (nmap needs no credentials). */
export function createNmapConnector(ctx: ConnectorContext): ScanConnector & ScopeScanner {
  const settings = (): NmapSettings =>
    ctx.config.integrations.nmap === undefined
      ? nmapSchema.parse({})
      : integrationSection(ctx.config, 'nmap', nmapSchema);
  const portsFor = (scopeName: string): string | undefined => {
    const scope = ctx.config.scopes.find((s) => s.name === scopeName);
    return scope ? scopeScanSettings(ctx.config, scope)?.ports : undefined;
  };
  return {
    name: 'nmap',
    rescan: async (req: RescanRequest): Promise<RescanTicket> =>
      await rescanThrough(ctx, 'nmap', req, async (targets) => {
        const run = await runNmap(settings(), {
          targets: targets.map((t) => t.target),
          ports: portsFor(req.scope),
        });
        return {
          file: run.xmlPath,
          format: 'nmap',
          dir: run.dir,
          coveredAssetIds: await assetsReportedAs(ctx.deps.pool, run.up, {
            among: targets.map((t) => t.assetId),
          }),
          coveredKeys: run.coveredPortKeys,
        };
      }),
    scanScope: async (scope: Scope): Promise<IngestSummary> => {
      const scan = scopeScanSettings(ctx.config, scope);
      const targets = scopeTargets(scope, scan);
      if (targets.length === 0)
        throw new ConnectorConfigError(
          `ctem.yaml scopes[${ctx.config.scopes.indexOf(scope)}]: scope ${scope.name} has no CIDR, literal host name or scan.targets to scan`,
        );
      const run = await runNmap(settings(), { targets, ports: scan?.ports });
      return await ingestOutput(
        ctx,
        {
          file: run.xmlPath,
          format: 'nmap',
          dir: run.dir,
          coveredAssetIds: await assetsReportedAs(ctx.deps.pool, run.up, { scope: scope.name }),
          coveredKeys: run.coveredPortKeys,
        },
        { cycleScope: scope.name },
      );
    },
  };
}
