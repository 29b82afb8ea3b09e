// The facts behind one exposure's priority, gathered from the inventory and the intel tables, and the
// decision the policy makes on them — what `ctem explain` prints and what the lifecycle records.
import type { Pool } from '../runtime/pool.ts';
import { decidePriority, type PriorityDecision, type PriorityFacts } from '../domain/policy/decide.ts';
import type { Policy } from '../domain/policy/schema.ts';
import type { Criticality } from '../domain/policy/ssvc.ts';
import { intelFacts, weaknessIntel, type WeaknessIntel } from './intel.ts';
import { NO_SCOPE, scopeContext } from './scopeContext.ts';

export interface AssetRow {
  id: number;
  identity_key: string;
  hostname: string | null;
  fqdn: string | null;
  scope: string | null;
  criticality: Criticality;
}

export interface Explanation {
  exposureId?: string;
  asset: { id: number; identity: string; name: string; scope: string | null; criticality: Criticality };
  weakness: string;
  intel: WeaknessIntel;
  decision: PriorityDecision;
  /** What the exposure row holds now (for `ctem explain EXPOSURE-ID`). */
  recorded?: { priority: string | null; slaDue: string | null; policyVersion: string | null; state: string };
}

export class NotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotFoundError';
  }
}

const ASSET_COLUMNS = 'a.id, a.identity_key, a.hostname, a.fqdn, a.scope, a.criticality';

/** An asset by id, identity key ("host:web-01"), hostname, FQDN or IP address. */
export async function findAsset(pool: Pool, ref: string): Promise<AssetRow> {
  const { rows } = await pool.query<AssetRow>(
    `select ${ASSET_COLUMNS} from assets a
      where a.retired_at is null and (a.id::text = $1 or a.identity_key = $1 or a.hostname = lower($1) or a.fqdn = lower($1) or $1 = any (a.ips))
      order by a.id limit 2`,
    [ref],
  );
  if (rows.length === 0)
    throw new NotFoundError(
      `no asset matches "${ref}" (give its id, identity key, hostname, FQDN or IP address)`,
    );
  if (rows.length > 1)
    throw new NotFoundError(
      `"${ref}" matches several assets (${rows.map((r) => r.identity_key).join(', ')}); give its identity key`,
    );
  return rows[0]!;
}

async function scopeOf(pool: Pool, scope: string | null): Promise<typeof NO_SCOPE> {
  if (!scope) return NO_SCOPE;
  const { rows } = await pool.query<{ config: unknown }>('select config from scopes where name = $1', [
    scope,
  ]);
  return rows[0] ? scopeContext(rows[0].config) : NO_SCOPE;
}

/** Decide a weakness on an asset with the intel known now (or as of `asOf`). */
export async function explainWeakness(
  pool: Pool,
  input: {
    weakness: string;
    asset: AssetRow;
    firstSeen: Date;
    clockStartedAt?: string;
    scope?: string | null;
  },
  policyFor: (name: string) => Policy,
  now: Date,
  asOf?: Date,
): Promise<Omit<Explanation, 'exposureId' | 'recorded'>> {
  const scope = await scopeOf(pool, input.scope ?? input.asset.scope);
  const intel = await weaknessIntel(pool, input.weakness, asOf);
  const facts: PriorityFacts = {
    ...intelFacts(input.weakness, intel),
    asset: {
      name: input.asset.fqdn ?? input.asset.hostname ?? input.asset.identity_key,
      criticality: input.asset.criticality,
      reachability: scope.reachability,
      requirements: scope.requirements,
    },
    firstSeen: input.firstSeen.toISOString(),
    ...(input.clockStartedAt ? { clockStartedAt: input.clockStartedAt } : {}),
  };
  const decision = decidePriority(policyFor(scope.policy), facts, now);
  return {
    asset: {
      id: input.asset.id,
      identity: input.asset.identity_key,
      name: facts.asset.name!,
      scope: input.scope ?? input.asset.scope,
      criticality: input.asset.criticality,
    },
    weakness: input.weakness,
    intel,
    decision,
  };
}

/** `ctem explain EXPOSURE-ID`. */
export async function explainExposure(
  pool: Pool,
  exposureId: string,
  policyFor: (name: string) => Policy,
  now: Date,
  asOf?: Date,
): Promise<Explanation> {
  const { rows } = await pool.query<
    AssetRow & {
      exposure_id: string;
      vuln_key: string;
      exposure_scope: string | null;
      first_seen: Date;
      clock_start: Date;
      state: string;
      priority: string | null;
      sla_due: Date | null;
      policy_version: string | null;
    }
  >(
    `select ${ASSET_COLUMNS}, e.id as exposure_id, e.vuln_key, e.scope as exposure_scope, e.first_seen, coalesce(e.sla_start, e.learned_at) as clock_start, e.state, e.priority, e.sla_due, e.policy_version
       from exposures e join assets a on a.id = e.asset_id where e.id = $1`,
    [exposureId],
  );
  const row = rows[0];
  if (!row) throw new NotFoundError(`no exposure has the id "${exposureId}" (see ctem exposures list)`);
  const explained = await explainWeakness(
    pool,
    // The SLA clock starts when ctem learned of it (or after the scope's onboarding grace).
    {
      weakness: row.vuln_key,
      asset: row,
      firstSeen: row.clock_start,
      clockStartedAt: 'ctem learned of it',
      scope: row.exposure_scope ?? row.scope,
    },
    policyFor,
    now,
    asOf,
  );
  return {
    exposureId: row.exposure_id,
    ...explained,
    recorded: {
      priority: row.priority,
      slaDue: row.sla_due?.toISOString() ?? null,
      policyVersion: row.policy_version,
      state: row.state,
    },
  };
}

/** `ctem explain --cve ID --asset A`: the exposure's own first-seen time when there is one, else now. */
export async function explainCveOnAsset(
  pool: Pool,
  cve: string,
  assetRef: string,
  policyFor: (name: string) => Policy,
  now: Date,
  asOf?: Date,
): Promise<Explanation> {
  const asset = await findAsset(pool, assetRef);
  const { rows } = await pool.query<{ id: string }>(
    `select id from exposures where asset_id = $1 and vuln_key = $2`,
    [asset.id, cve],
  );
  if (rows[0]) return explainExposure(pool, rows[0].id, policyFor, now, asOf);
  return explainWeakness(pool, { weakness: cve, asset, firstSeen: now }, policyFor, now, asOf);
}
