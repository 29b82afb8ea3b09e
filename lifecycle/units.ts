// Remediation units in PostgreSQL: assigning exposures to units (set-based, per batch) and reading
// a unit back as the RemediationUnitSummary that tickets, messages and patch jobs are written from.
import type { Config } from '../domain/config.ts';
import type { ExposureState } from '../domain/exposure.ts';
import { fixActionOf, remediationUnitId, unitAction, type FixFacts } from '../domain/remediation.ts';
import type { Pool, PoolClient } from '../runtime/pool.ts';
import type { RemediationUnitSummary } from '../domain/ports.ts';
import { outcomeLabel } from './triage.ts';

interface FactRow {
  id: string;
  scope: string | null;
  owner: string | null;
  asset_id: number;
  vuln_key: string;
  asset_name: string;
  package_name: string | null;
  package_type: string | null;
  package_version: string | null;
  fixed_version: string | null;
}

// The package of the exposure's latest sighting (any scanner), from ingest's observations.
const factsSql = `
  select e.id, e.scope, e.owner, e.asset_id, e.vuln_key,
         coalesce(a.fqdn, a.hostname, a.image_repo, a.cloud_id, a.url, a.ips[1], a.identity_key) as asset_name,
         o.package_name, o.package_type, o.package_version, o.fixed_version
    from exposures e
    join assets a on a.id = e.asset_id
    left join lateral (
      select package_name, package_type, package_version, fixed_version
        from observations o where o.exposure_id = e.id
       order by o.present desc, o.last_seen desc limit 1) o on true
   where e.id = any($1::text[])`;

function factsOf(row: FactRow, owner: string | undefined): FixFacts {
  return {
    scope: row.scope ?? 'unscoped',
    owner,
    assetId: row.asset_id,
    assetName: row.asset_name,
    weaknessKey: row.vuln_key,
    ...(row.package_name
      ? {
          package: {
            name: row.package_name,
            ...(row.package_type ? { type: row.package_type } : {}),
            ...(row.package_version ? { version: row.package_version } : {}),
            ...(row.fixed_version ? { fixedVersion: row.fixed_version } : {}),
          },
        }
      : {}),
  };
}

/** The owner an exposure starts with: the one already set, else the scope's first owner. */
export function defaultOwner(config: Config, scope: string | null | undefined): string | undefined {
  return config.scopes.find((s) => s.name === scope)?.roles.owner[0];
}

/**
 * Put each exposure in its unit (owner × fix action on its asset), creating units as needed, and
 * return exposure id → { unitId, owner }. Two statements for the whole batch. `ownerOverride` moves
 * every given exposure to that owner (reassign).
 */
export async function assignUnits(
  db: Pool | PoolClient,
  config: Config,
  exposureIds: string[],
  ownerOverride?: string,
): Promise<Map<string, { unitId: string; owner?: string }>> {
  const out = new Map<string, { unitId: string; owner?: string }>();
  if (exposureIds.length === 0) return out;
  const { rows } = await db.query<FactRow>(factsSql, [exposureIds]);
  const units = new Map<
    string,
    { id: string; scope: string; owner?: string; assetId: number; fixKey: string; action: string }
  >();
  const members: { id: string; unitId: string; owner?: string }[] = [];
  for (const row of rows) {
    const owner = ownerOverride ?? row.owner ?? defaultOwner(config, row.scope);
    const facts = factsOf(row, owner);
    const fix = fixActionOf(facts);
    const unitId = remediationUnitId(facts, fix.key);
    if (!units.has(unitId))
      units.set(unitId, {
        id: unitId,
        scope: facts.scope,
        owner,
        assetId: row.asset_id,
        fixKey: fix.key,
        action: fix.action,
      });
    members.push({ id: row.id, unitId, owner });
    out.set(row.id, { unitId, owner });
  }
  await db.query(
    `insert into remediation_units (id, scope, owner, asset_id, fix_key, action)
     select u.id, u.scope, u.owner, u."assetId", u."fixKey", u.action
       from jsonb_to_recordset($1::jsonb) as u(id text, scope text, owner text, "assetId" bigint, "fixKey" text, action text)
     on conflict (id) do nothing`,
    [JSON.stringify([...units.values()])],
  );
  await db.query(
    `update exposures e set remediation_unit_id = m."unitId", owner = m.owner
       from jsonb_to_recordset($1::jsonb) as m(id text, "unitId" text, owner text)
      where e.id = m.id
        and (e.remediation_unit_id is distinct from m."unitId" or e.owner is distinct from m.owner)`,
    [JSON.stringify(members)],
  );
  return out;
}

const PRIORITY_RANK: Record<string, number> = { Act: 3, Attend: 2, 'Track*': 1, Track: 0 };

export function mostUrgent(priorities: string[]): string {
  return priorities.reduce(
    (a, b) => ((PRIORITY_RANK[b] ?? -1) > (PRIORITY_RANK[a] ?? -1) ? b : a),
    priorities[0] ?? 'Track',
  );
}

export interface UnitRecord {
  id: string;
  scope: string;
  owner?: string;
  assetId: number;
  host: string;
  ticket?: { system: string; key: string; url?: string };
  patch?: unknown;
}

export async function readUnit(db: Pool | PoolClient, unitId: string): Promise<UnitRecord | undefined> {
  const { rows } = await db.query<{
    id: string;
    scope: string;
    owner: string | null;
    asset_id: number;
    host: string;
    ticket: { system: string; key: string; url?: string } | null;
    patch: unknown;
  }>(
    `select u.id, u.scope, u.owner, u.asset_id, u.ticket, u.patch,
            coalesce(a.fqdn, a.hostname, a.ips[1], a.image_repo, a.identity_key) as host
       from remediation_units u join assets a on a.id = u.asset_id where u.id = $1`,
    [unitId],
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    id: r.id,
    scope: r.scope,
    ...(r.owner ? { owner: r.owner } : {}),
    assetId: r.asset_id,
    host: r.host,
    ...(r.ticket ? { ticket: r.ticket } : {}),
    ...(r.patch ? { patch: r.patch } : {}),
  };
}

/** The unit as tickets and messages show it: every member exposure, the most urgent priority, the earliest deadline. */
export async function unitSummary(
  db: Pool | PoolClient,
  unitId: string,
): Promise<RemediationUnitSummary | undefined> {
  const unit = await readUnit(db, unitId);
  if (!unit) return undefined;
  const { rows } = await db.query<
    FactRow & {
      state: ExposureState;
      priority: string | null;
      sla_due: Date | null;
      reasons: string[];
      title: string | null;
    }
  >(
    `select f.*, e.state, e.priority, e.sla_due, e.reasons, coalesce(o.title, v.title, e.vuln_key) as title
       from (${factsSql}) f
       join exposures e on e.id = f.id
       left join vulnerabilities v on v.key = e.vuln_key
       left join lateral (select title from observations o where o.exposure_id = e.id order by o.last_seen desc limit 1) o on true
      order by e.id`,
    [
      (
        await db.query<{ id: string }>(
          'select id from exposures where remediation_unit_id = $1 order by id',
          [unitId],
        )
      ).rows.map((r) => r.id),
    ],
  );
  const facts = rows.map((r) => factsOf(r, unit.owner));
  const dues = rows.map((r) => r.sla_due).filter((d): d is Date => d !== null);
  const earliest = dues.length
    ? new Date(Math.min(...dues.map((d) => d.getTime()))).toISOString()
    : undefined;
  return {
    id: unit.id,
    scope: unit.scope,
    ...(unit.owner ? { owner: unit.owner } : {}),
    action: facts.length ? unitAction(facts) : unit.host,
    priority: mostUrgent(rows.map((r) => outcomeLabel(r.priority ?? 'track'))),
    ...(earliest ? { slaDue: earliest } : {}),
    exposures: rows.map((r) => ({
      id: r.id,
      weaknessKey: r.vuln_key,
      title: r.title ?? r.vuln_key,
      asset: r.asset_name,
      state: r.state,
      priority: outcomeLabel(r.priority ?? 'track'),
      reasons: Array.isArray(r.reasons) ? r.reasons : [],
      ...(r.package_name
        ? {
            package: {
              name: r.package_name,
              ...(r.package_version ? { version: r.package_version } : {}),
              ...(r.fixed_version ? { fixedVersion: r.fixed_version } : {}),
            },
          }
        : {}),
    })),
  };
}
