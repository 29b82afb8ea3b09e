// Inventory upkeep: an asset its scope's scan cycles keep missing has left the estate. It is retired,
// and its open exposures close as "asset retired" — not as fixed, since nobody proved a fix.
// Retirement is counted in scan cycles actually run (scans recorded with cycle_scope), not in
// elapsed time: when scanning stops, nothing is retired for lack of evidence.
import type { Pool, PoolClient } from '../runtime/pool.ts';
import type { Config } from '../domain/config.ts';
import { lockInventory } from './lock.ts';

export interface RetiredAsset {
  assetId: number;
  /** Exposures this retirement closed (state → retired); the lifecycle signals their workflows. */
  exposureIds: string[];
}

export interface RetireInput {
  scope: string;
  missedCycles: number;
  /** The cycle scan whose completion triggered the check; recorded with each change. */
  scanId: number;
  /** The time of that scan. */
  at: Date;
}

const TERMINAL = `('resolved', 'false-positive', 'retired')`;

/** Retire the scope's assets that missed at least `missedCycles` cycle scans up to `at`. */
export async function retireMissedAssets(client: PoolClient, input: RetireInput): Promise<RetiredAsset[]> {
  const { rows } = await client.query<{ asset_id: number; exposure_ids: string[] }>(
    `with missed as (
       select a.id from assets a
        where a.scope = $1 and a.retired_at is null and a.last_seen < $3
          and (select count(*) from scans s
                where s.cycle_scope = $1 and s.finished_at > a.last_seen and s.finished_at <= $3) >= $2
     ), retired_assets as (
       update assets set retired_at = $3 where id in (select id from missed) returning id
     ), closed as (
       update exposures e
          set state = 'retired', present = false, absent_since = coalesce(e.absent_since, $3),
              resolved_at = $3, updated_at = now()
         from retired_assets r
        where e.asset_id = r.id and e.state not in ${TERMINAL}
       returning e.id, e.asset_id
     ), quiet_terminal as (
       update exposures e set present = false, absent_since = coalesce(e.absent_since, $3), updated_at = now()
         from retired_assets r
        where e.asset_id = r.id and e.state in ${TERMINAL} and e.present
       returning e.id
     ), quiet_observations as (
       update observations o set present = false, absent_since = $3, absent_scan_id = $4
         from retired_assets r
        where o.asset_id = r.id and o.present
       returning o.exposure_id
     ), changes as (
       insert into scan_changes (scan_id, change, exposure_id)
       select $4, 'retired', id from closed on conflict do nothing
     ), audit as (
       insert into events (exposure_id, type, reason, data, idempotency_key)
       select id, 'exposure.retired', $5, jsonb_build_object('scanId', $4::bigint, 'assetId', asset_id, 'scope', $1::text),
              'retired:' || id || ':' || $4::text
         from closed
       on conflict (idempotency_key) do nothing
     )
     select r.id as asset_id, coalesce(array_agg(c.id order by c.id) filter (where c.id is not null), '{}') as exposure_ids
       from retired_assets r left join closed c on c.asset_id = r.id
      group by r.id order by r.id`,
    [
      input.scope,
      input.missedCycles,
      input.at,
      input.scanId,
      `asset retired: not seen in ${input.missedCycles} scan cycles of scope ${input.scope}`,
    ],
  );
  return rows.map((r) => ({ assetId: r.asset_id, exposureIds: r.exposure_ids }));
}

/**
 * Re-check every scope against its latest cycle scan, e.g. after retireAfterMissedCycles was lowered
 * in ctem.yaml. Each scope in its own transaction.
 */
export async function retireAcrossScopes(
  pool: Pool,
  config: Pick<Config, 'scopes'>,
): Promise<{ scope: string; scanId: number; retired: RetiredAsset[] }[]> {
  const out: { scope: string; scanId: number; retired: RetiredAsset[] }[] = [];
  for (const scope of config.scopes) {
    const { rows } = await pool.query<{ id: number; finished_at: Date }>(
      `select id, finished_at from scans where cycle_scope = $1 and finished_at is not null
        order by finished_at desc, id desc limit 1`,
      [scope.name],
    );
    const latest = rows[0];
    if (!latest) continue;
    const client = await pool.connect();
    try {
      await client.query('begin');
      await lockInventory(client);
      const retired = await retireMissedAssets(client, {
        scope: scope.name,
        missedCycles: scope.retireAfterMissedCycles,
        scanId: latest.id,
        at: latest.finished_at,
      });
      await client.query('commit');
      out.push({ scope: scope.name, scanId: latest.id, retired });
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
  return out;
}
