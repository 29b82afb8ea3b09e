// The SSH package check: is the installed version of each affected package at least the fixed one?
// It logs in with the SSH integration the patching executor uses (integrations.ssh: same keys, same
// pinned host keys), asks the host's own package database — `dpkg-query -W -f='${Version}' PKG` or
// `rpm -q --qf '%{VERSION}-%{RELEASE}' PKG` — and judges with dpkg's or rpm's own ordering.
//
// It is a targeted, authoritative check: it covers exactly the weaknesses it could check (those whose
// package and fixed version a scanner reported) on the hosts it reached — per host, as asset × key
// pairs — and its "fixed" overrides the scanners' earlier word on them.
import type { AssetRef, Finding } from '../domain/finding.ts';
import { meetsFixedVersion } from '../domain/fixedVersion.ts';
import { parsePackageName, PatchInputError, type PackageFamily } from '../domain/packages.ts';
import type { RescanRequest, RescanTicket, ScanConnector } from '../domain/ports.ts';
import { ingestReport, type IngestSummary } from '../ingest/ingest.ts';
import { sshIntegration } from '../patching/config.ts';
import { sshEndpointFor } from '../patching/ssh/executor.ts';
import { openSshSession, type SshSession } from '../patching/sshSession.ts';
import { heartbeat } from './heartbeat.ts';
import { scanForRequest, type ConnectorContext } from './ingestRun.ts';

export const SSH_PACKAGE_SCANNER = 'ssh-package';

interface CheckItem {
  weaknessKey: string;
  packageName: string;
  fixedVersion: string;
  title?: string;
}

interface AssetRow {
  id: number;
  fqdn: string | null;
  hostname: string | null;
  ips: string[];
  mac: string | null;
}

export interface PackageVerdict {
  weaknessKey: string;
  packageName: string;
  fixedVersion: string;
  title?: string;
  /** Installed version; undefined when the package is not installed. */
  installed?: string;
  fixed: boolean;
}

/** Find the package manager's query tool on the host. */
async function packageFamilyOf(session: SshSession): Promise<PackageFamily | undefined> {
  for (const [family, program] of [
    ['deb', 'dpkg-query'],
    ['rpm', 'rpm'],
  ] as const) {
    const r = await session.run(['command', '-v', program]);
    if (r.code === 0 && r.stdout.trim() !== '') return family;
  }
  return undefined;
}

/** The installed version of one (validated) package, or undefined when it is not installed. */
async function installedVersion(
  session: SshSession,
  family: PackageFamily,
  name: string,
): Promise<string | undefined> {
  const argv =
    family === 'deb'
      ? ['dpkg-query', '-W', '-f=${Version}', name]
      : ['rpm', '-q', '--qf', '%{VERSION}-%{RELEASE}', name];
  const r = await session.run(argv, { timeoutMs: 60_000 });
  if (r.code === 0 && r.stdout.trim() !== '') return r.stdout.trim().split('\n')[0]!.trim();
  // dpkg-query: exit 1 "no packages found"; rpm: exit 1 "package X is not installed".
  if (r.code === 1) return undefined;
  throw new Error(
    `${argv[0]} failed on ${session.endpoint.host} (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(0, 300)}`,
  );
}

/** Check each item on one host; pure of the database. */
export async function checkPackages(
  session: SshSession,
  items: CheckItem[],
): Promise<{ family: PackageFamily; verdicts: PackageVerdict[] }> {
  const family = await packageFamilyOf(session);
  if (!family)
    throw new PatchInputError(
      'host',
      `${session.endpoint.host} has neither dpkg-query nor rpm on the login's PATH`,
    );
  const manager = family === 'deb' ? 'apt' : 'dnf';
  const versions = new Map<string, string | undefined>();
  const verdicts: PackageVerdict[] = [];
  for (const item of items) {
    // Scanner-reported names must be valid for the host's package manager before they reach a command.
    const name = parsePackageName(
      manager,
      item.packageName.replace(/:[a-z0-9-]+$/, ''),
      `package of ${item.weaknessKey}`,
    );
    if (!versions.has(name)) versions.set(name, await installedVersion(session, family, name));
    const installed = versions.get(name);
    verdicts.push({
      ...item,
      installed,
      fixed: installed === undefined || meetsFixedVersion(family, installed, item.fixedVersion),
    });
  }
  return { family, verdicts };
}

export function createSshPackageConnector(ctx: ConnectorContext): ScanConnector {
  const pool = ctx.deps.pool;
  return {
    name: SSH_PACKAGE_SCANNER,
    async rescan(req: RescanRequest): Promise<RescanTicket> {
      const prior = await scanForRequest(ctx, req.requestId);
      if (prior !== undefined)
        return {
          requestId: req.requestId,
          status: 'done',
          scanId: prior,
          detail: `already imported as scan ${prior}`,
        };
      const settings = sshIntegration(ctx.config);
      const { rows: assets } = await pool.query<AssetRow>(
        `select id, fqdn, hostname, ips, mac from assets where id = any($1::bigint[]) and retired_at is null order by id`,
        [req.assetIds],
      );
      // What a scanner said about each weakness's package on each asset (latest sighting first).
      const { rows: observed } = await pool.query<{
        asset_id: number;
        vuln_key: string;
        package_name: string;
        fixed_version: string;
        title: string | null;
      }>(
        `select distinct on (asset_id, vuln_key, package_name) asset_id, vuln_key, package_name, fixed_version, title
           from observations
          where asset_id = any($1::bigint[]) and vuln_key = any($2::text[])
            and package_name is not null and fixed_version is not null
          order by asset_id, vuln_key, package_name, last_seen desc`,
        [req.assetIds, req.weaknessKeys],
      );
      const checked: { asset: AssetRow; verdicts: PackageVerdict[] }[] = [];
      const notes: string[] = [];
      for (const asset of assets) {
        const items = observed
          .filter((o) => o.asset_id === asset.id)
          .map((o) => ({
            weaknessKey: o.vuln_key,
            packageName: o.package_name,
            fixedVersion: o.fixed_version,
            title: o.title ?? undefined,
          }));
        const unchecked = req.weaknessKeys.filter((k) => !items.some((i) => i.weaknessKey === k));
        if (unchecked.length)
          notes.push(`asset ${asset.id}: no package and fixed version known for ${unchecked.join(', ')}`);
        if (items.length === 0) continue;
        const host = asset.fqdn ?? asset.hostname ?? asset.ips[0];
        if (!host) {
          notes.push(`asset ${asset.id}: no host name or address to log in to`);
          continue;
        }
        heartbeat({ sshPackageCheck: host });
        const session = await openSshSession(sshEndpointFor({ settings, baseDir: ctx.deps.baseDir }, host));
        try {
          checked.push({ asset, verdicts: (await checkPackages(session, items)).verdicts });
        } finally {
          session.close();
        }
        const below = checked.at(-1)!.verdicts.filter((v) => !v.fixed);
        notes.push(
          `${host}: ${items.length - below.length} of ${items.length} fixed` +
            (below.length
              ? ` (still below the fix: ${below.map((v) => `${v.packageName} ${v.installed} < ${v.fixedVersion}`).join(', ')})`
              : ''),
        );
      }
      if (checked.length === 0)
        return {
          requestId: req.requestId,
          status: 'unavailable',
          detail: `ssh package check: nothing to check; ${notes.join('; ')}`,
        };
      const summary = await ingestVerdicts(ctx, checked, req.requestId);
      return {
        requestId: req.requestId,
        status: 'done',
        scanId: summary.scanId,
        detail: `ssh package check imported as scan ${summary.scanId}: ${notes.join('; ')}`,
      };
    },
  };
}

/** One scan for the request, covering exactly the asset × weakness pairs that were checked. */
async function ingestVerdicts(
  ctx: ConnectorContext,
  checked: { asset: AssetRow; verdicts: PackageVerdict[] }[],
  requestId: string,
): Promise<IngestSummary> {
  const scanTime = new Date(ctx.deps.clock()).toISOString();
  const findings: Finding[] = [];
  for (const { asset, verdicts } of checked) {
    const ref: AssetRef = { kind: 'host' };
    if (asset.fqdn) ref.fqdn = asset.fqdn;
    if (asset.hostname) ref.hostname = asset.hostname;
    if (asset.ips.length) ref.ips = asset.ips;
    if (asset.mac) ref.mac = asset.mac;
    for (const v of verdicts.filter((x) => !x.fixed))
      findings.push({
        scanner: SSH_PACKAGE_SCANNER,
        scanTime,
        asset: ref,
        weaknessKey: v.weaknessKey,
        kind: 'vulnerability',
        // The weakness's title as the scanner that found it wrote it; the verdict goes in the evidence.
        title: v.title ?? `${v.weaknessKey} in ${v.packageName}`,
        severity: 'unknown',
        package: { name: v.packageName, version: v.installed, fixedVersion: v.fixedVersion },
        evidence: `installed ${v.packageName} ${v.installed} is below the fixed version ${v.fixedVersion}`,
      });
  }
  const pairs = checked.flatMap(({ asset, verdicts }) =>
    [...new Set(verdicts.map((v) => v.weaknessKey))].map((key) => ({ assetId: asset.id, key })),
  );
  async function* stream(): AsyncIterable<Finding> {
    yield* findings;
  }
  return await ingestReport(
    ctx.deps.pool,
    {
      source: `ssh package check of ${checked.map((c) => c.asset.fqdn ?? c.asset.hostname ?? c.asset.ips[0]).join(', ')}`,
      format: SSH_PACKAGE_SCANNER,
      findings: stream(),
    },
    {
      scopes: ctx.config.scopes,
      scanner: SSH_PACKAGE_SCANNER,
      scanTime: new Date(scanTime),
      coveredAssetIds: checked.map((c) => c.asset.id),
      coveredKeys: [...new Set(pairs.map((p) => p.key))],
      coveredPairs: pairs,
      authoritative: true,
      requestId,
    },
  );
}
