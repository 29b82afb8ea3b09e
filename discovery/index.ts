// The scanner connectors, as the integration registry (app/integrations.ts) builds them, and the scan cycle
// runner behind each scope's Temporal Schedule.
import type { Scope } from '../domain/config.ts';
import type { JobOutcome, ScanConnector } from '../domain/ports.ts';
import type { IntegrationContext } from '../runtime/deps.ts';
import { ConnectorConfigError, connectorNames, scopeScanSettings } from './config.ts';
import { createGvmConnector } from './gvm.ts';
import type { ScopeScanner } from './ingestRun.ts';
import { createNessusConnector } from './nessus.ts';
import { createNmapConnector } from './nmap.ts';
import { createSshPackageConnector, SSH_PACKAGE_SCANNER } from './sshPackage.ts';

export { createGvmConnector, createNessusConnector, createNmapConnector, createSshPackageConnector };

function isScopeScanner(c: ScanConnector): c is ScanConnector & ScopeScanner {
  return typeof (c as Partial<ScopeScanner>).scanScope === 'function';
}

/**
 * One scan cycle of a scope: a discovery connector (nmap, Nessus, GVM) scans the scope's targets and
 * its report is ingested as a cycle scan (assets missed by enough cycles are retired); the SSH
 * package check re-checks every present exposure of the scope that has a package to check; any
 * other connector re-scans the scope's assets.
 */
export async function runScanCycle(ctx: IntegrationContext & { scope: Scope }): Promise<JobOutcome> {
  const { scope, deps, config } = ctx;
  const named = scope.scan?.connector;
  // Validate the scan section of the connectors defined here; others (demo…) have their own fields.
  if (typeof named === 'string' && (connectorNames as readonly string[]).includes(named))
    scopeScanSettings(config, scope);
  const { scanner } = deps.integrations.forScope(scope.name);
  if (!scanner)
    throw new ConnectorConfigError(
      `ctem.yaml scopes[${config.scopes.indexOf(scope)}].scan.connector: scope ${scope.name} has no scan connector; set one of nmap, nessus, gvm, ssh-package`,
    );
  const requestId = `cycle:${scope.name}:${new Date(deps.clock()).toISOString()}`;
  if (isScopeScanner(scanner)) {
    const s = await scanner.scanScope(scope);
    return {
      detail: `${scanner.name} scan cycle of ${scope.name}: scan ${s.scanId}, ${s.findings} findings on ${s.assets.covered} assets; exposures ${s.exposures.new} new, ${s.exposures.gone} gone, ${s.exposures.reappeared} reappeared; ${s.assets.retired} assets retired`,
      scanIds: [s.scanId],
    };
  }
  const { rows } = await deps.pool.query<{ asset_id: number; vuln_key: string }>(
    scanner.name === SSH_PACKAGE_SCANNER
      ? `select distinct e.asset_id, e.vuln_key from exposures e join assets a on a.id = e.asset_id
          where a.scope = $1 and a.retired_at is null and e.present
            and exists (select 1 from observations o where o.exposure_id = e.id and o.package_name is not null and o.fixed_version is not null)`
      : `select id as asset_id, null as vuln_key from assets where scope = $1 and retired_at is null`,
    [scope.name],
  );
  const ticket = await scanner.rescan({
    requestId,
    scope: scope.name,
    assetIds: [...new Set(rows.map((r) => r.asset_id))],
    weaknessKeys: [...new Set(rows.map((r) => r.vuln_key).filter((k): k is string => k !== null))],
    notBefore: new Date(deps.clock()).toISOString(),
  });
  return {
    detail: `${scanner.name} check of ${scope.name}: ${ticket.status}${ticket.detail ? ` (${ticket.detail})` : ''}`,
    ...(ticket.scanId ? { scanIds: [ticket.scanId] } : {}),
  };
}
