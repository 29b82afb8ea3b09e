// What the dashboard reads: the exposure queue with its filters and one exposure with its timeline
// and evidence, from the lifecycle's read model in PostgreSQL (the workflows write it). Filters are
// bound parameters; the scopes a person may see are always part of the query.
import type { Pool } from '../../runtime/pool.ts';
import { exposureStates } from '../../domain/exposure.ts';
import { priorities } from '../../domain/health.ts';
import { exposureTimeline } from '../../lifecycle/queries.ts';

export const slaStatuses = ['overdue', 'due-soon', 'on-track', 'paused', 'closed'] as const;
export type SlaStatus = (typeof slaStatuses)[number];

export interface QueueFilter {
  scope?: string;
  priority?: string;
  /** An exposure state, or "open" for every state still needing work (default), or "all". */
  state?: string;
  sla?: string;
  owner?: string;
  /** One campaign's exposures (the link on its tickets and messages). */
  campaign?: string;
}

export interface QueueRow {
  id: string;
  asset: string;
  weakness: string;
  title: string | null;
  scope: string | null;
  priority: string | null;
  state: string;
  owner: string | null;
  slaDue: Date | null;
  sla: SlaStatus;
  firstSeen: Date;
}

const CLOSED = `('resolved', 'false-positive', 'retired')`;
/** An exposure's SLA status at the instant bound to the parameter `now` (the dashboard's clock). */
const slaStatus = (now: string) => `case
  when e.state in ${CLOSED} then 'closed'
  when e.sla_paused or e.state in ('snoozed', 'risk-accepted') then 'paused'
  when coalesce(e.sla_breached_at, e.sla_due) < ${now}::timestamptz then 'overdue'
  when e.sla_due < ${now}::timestamptz + interval '7 days' then 'due-soon'
  else 'on-track' end`;

/** Keep only filter values that exist, so a hand-edited URL cannot ask for anything odd. */
export function cleanFilter(q: URLSearchParams, visibleScopes: string[]): QueueFilter {
  const f: QueueFilter = {};
  const scope = q.get('scope');
  if (scope && visibleScopes.includes(scope)) f.scope = scope;
  const priority = q.get('priority');
  if (priority && (priorities as readonly string[]).includes(priority)) f.priority = priority;
  const state = q.get('state');
  if (state && (state === 'all' || (exposureStates as readonly string[]).includes(state))) f.state = state;
  const sla = q.get('sla');
  if (sla && (slaStatuses as readonly string[]).includes(sla)) f.sla = sla;
  const owner = q.get('owner');
  if (owner && /^[a-z0-9][a-z0-9._-]*$/.test(owner)) f.owner = owner;
  // cmp:<scope>:<owner>:<12 hex>, in a scope the person sees.
  const campaign = q.get('campaign');
  const m = campaign ? /^cmp:([^:]+):[^:]+:[0-9a-f]{12}$/.exec(campaign) : null;
  if (campaign && m && visibleScopes.includes(m[1]!)) f.campaign = campaign;
  return f;
}

/** The queue as it stands at `now` (the SLA status of each exposure is judged at that instant). */
export async function queue(
  pool: Pool,
  visibleScopes: string[],
  f: QueueFilter,
  now: Date,
  limit = 200,
): Promise<{ rows: QueueRow[]; total: number }> {
  const args: unknown[] = [visibleScopes, now];
  const where = ['e.scope = any($1::text[])'];
  const SLA_STATUS = slaStatus('$2');
  const bind = (v: unknown) => {
    args.push(v);
    return `$${args.length}`;
  };
  if (f.scope) where.push(`e.scope = ${bind(f.scope)}`);
  if (f.priority) where.push(`e.priority = ${bind(f.priority)}`);
  if (!f.state) where.push(`e.state not in ${CLOSED}`);
  else if (f.state !== 'all') where.push(`e.state = ${bind(f.state)}`);
  if (f.sla) where.push(`(${SLA_STATUS}) = ${bind(f.sla)}`);
  if (f.owner) where.push(`e.owner = ${bind(f.owner)}`);
  if (f.campaign) where.push(`e.campaign_id = ${bind(f.campaign)}`);
  const { rows } = await pool.query<{
    id: string;
    asset: string;
    vuln_key: string;
    title: string | null;
    scope: string | null;
    priority: string | null;
    state: string;
    owner: string | null;
    sla_due: Date | null;
    sla: SlaStatus;
    first_seen: Date;
    total: string;
  }>(
    `select e.id, coalesce(a.fqdn, a.hostname, a.image_repo, a.ips[1], a.identity_key) as asset, e.vuln_key, v.title,
            e.scope, e.priority, e.state, e.owner, e.sla_due, ${SLA_STATUS} as sla, e.first_seen, count(*) over () as total
       from exposures e join assets a on a.id = e.asset_id left join vulnerabilities v on v.key = e.vuln_key
      where ${where.join(' and ')}
      order by case e.priority when 'act' then 0 when 'attend' then 1 when 'track*' then 2 when 'track' then 3 else 4 end,
               e.sla_due nulls last, e.id
      limit ${bind(limit)}`,
    args,
  );
  return {
    total: rows[0] ? Number(rows[0].total) : 0,
    rows: rows.map((r) => ({
      id: r.id,
      asset: r.asset,
      weakness: r.vuln_key,
      title: r.title,
      scope: r.scope,
      priority: r.priority,
      state: r.state,
      owner: r.owner,
      slaDue: r.sla_due,
      sla: r.sla,
      firstSeen: r.first_seen,
    })),
  };
}

/** Owners that appear in the visible queue, for the owner filter. */
export async function owners(pool: Pool, visibleScopes: string[]): Promise<string[]> {
  const { rows } = await pool.query<{ owner: string }>(
    `select distinct owner from exposures where scope = any($1::text[]) and owner is not null order by owner limit 500`,
    [visibleScopes],
  );
  return rows.map((r) => r.owner);
}

export interface Evidence {
  scanner: string;
  present: boolean;
  firstSeen: Date;
  lastSeen: Date;
  severity: string;
  title: string | null;
  packageName: string | null;
  packageVersion: string | null;
  fixedVersion: string | null;
  location: string | null;
  port: number | null;
  evidence: string | null;
}

export async function exposureDetail(pool: Pool, id: string) {
  const timeline = await exposureTimeline(pool, id);
  if (!timeline) return undefined;
  const { rows } = await pool.query<{
    scanner: string;
    present: boolean;
    first_seen: Date;
    last_seen: Date;
    severity: string;
    title: string | null;
    package_name: string | null;
    package_version: string | null;
    fixed_version: string | null;
    location: string | null;
    port: number | null;
    evidence: string | null;
  }>(
    `select scanner, present, first_seen, last_seen, severity, title, package_name, package_version, fixed_version,
            location, port, left(evidence, 2000) as evidence
       from observations where exposure_id = $1 order by scanner`,
    [id],
  );
  const evidence: Evidence[] = rows.map((r) => ({
    scanner: r.scanner,
    present: r.present,
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
    severity: r.severity,
    title: r.title,
    packageName: r.package_name,
    packageVersion: r.package_version,
    fixedVersion: r.fixed_version,
    location: r.location,
    port: r.port,
    evidence: r.evidence,
  }));
  return { ...timeline, evidence };
}
