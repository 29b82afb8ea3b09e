// From inventory assets to what a scanner is pointed at, and back from what a scanner saw to the
// inventory assets it covered.
import type { Pool } from '../runtime/pool.ts';
import { scanTarget } from './config.ts';

export interface AssetTarget {
  assetId: number;
  /** The address or name handed to the scanner: the first IP, else the FQDN, else the host name. */
  target: string;
  ips: string[];
  /** FQDN and short name, for SSH endpoints and messages. */
  names: string[];
}

/**
 * Scan targets for the given assets (live ones only). Assets without an address or a name a scanner
 * could take (images, repositories) are left out; the caller says so.
 */
export async function assetTargets(pool: Pool, assetIds: readonly number[]): Promise<AssetTarget[]> {
  const { rows } = await pool.query<{
    id: number;
    ips: string[];
    fqdn: string | null;
    hostname: string | null;
  }>(
    `select id, ips, fqdn, hostname from assets where id = any($1::bigint[]) and retired_at is null order by id`,
    [assetIds],
  );
  const out: AssetTarget[] = [];
  for (const r of rows) {
    const names = [r.fqdn, r.hostname].filter((n): n is string => Boolean(n));
    const target = [...r.ips, ...names].find((t) => scanTarget.safeParse(t).success);
    if (target) out.push({ assetId: r.id, target, ips: r.ips, names });
  }
  return out;
}

/**
 * Live assets a report says the scanner reached: holding one of its addresses or named by one of its
 * names; optionally only those of a scope, or only among given assets.
 */
export async function assetsReportedAs(
  pool: Pool,
  hosts: { ips: readonly string[]; names: readonly string[] },
  limit: { scope?: string; among?: readonly number[] } = {},
): Promise<number[]> {
  if (hosts.ips.length === 0 && hosts.names.length === 0) return [];
  const { rows } = await pool.query<{ id: number }>(
    `select id from assets
      where retired_at is null
        and (ips && $1::text[] or fqdn = any($2::text[]) or hostname = any($2::text[]))
        and ($3::text is null or scope = $3)
        and ($4::bigint[] is null or id = any($4::bigint[]))
      order by id`,
    [hosts.ips, hosts.names, limit.scope ?? null, limit.among ?? null],
  );
  return rows.map((r) => r.id);
}
