// Small builders for findings in ingest tests: explicit, readable inputs instead of fixture files.
import type { AssetRef, Finding } from '../../domain/finding.ts';
import { defaultConfig, type Config } from '../../domain/config.ts';
import { configSchema } from '../../domain/config.ts';

export function host(fqdnOrName: string | undefined, ...ips: string[]): AssetRef {
  const asset: AssetRef = { kind: 'host' };
  if (fqdnOrName?.includes('.')) {
    asset.fqdn = fqdnOrName;
    asset.hostname = fqdnOrName.split('.')[0];
  } else if (fqdnOrName) asset.hostname = fqdnOrName;
  if (ips.length) asset.ips = ips;
  return asset;
}

export function finding(asset: AssetRef, weaknessKey: string, more: Partial<Finding> = {}): Finding {
  return {
    scanner: 'nessus',
    asset,
    weaknessKey,
    kind: 'vulnerability',
    title: `Title of ${weaknessKey}`,
    severity: 'high',
    ...more,
  };
}

export async function* stream(findings: Finding[], failAfter?: number): AsyncIterable<Finding> {
  let n = 0;
  for (const f of findings) {
    if (failAfter !== undefined && n === failAfter)
      throw new Error(`report.xml: line ${n + 1}: unexpected end of input`);
    n++;
    yield f;
  }
  if (failAfter !== undefined && n === failAfter)
    throw new Error(`report.xml: line ${n + 1}: unexpected end of input`);
}

export function configWithScopes(scopes: unknown[]): Config {
  return configSchema.parse({ ...defaultConfig(), version: 1, scopes });
}
