// The lifecycle's read model, as its clients read it: the exposure queue and one exposure with its
// timeline, from PostgreSQL (the workflows write it). Shared by the CLI, the dashboard and the demo.
import type { Pool } from '../runtime/pool.ts';
import { outcomeLabel } from './triage.ts';

export interface ExposureListRow {
  id: string;
  state: string;
  priority: string | null;
  slaDue: string | null;
  breached: boolean;
  owner: string | null;
  scope: string | null;
  asset: string;
  weakness: string;
  firstSeen: string;
  /** The campaign holding its lifecycle. */
  campaign: string | null;
  /** Contextual CVSS score of the triage (null: no usable vector). */
  cvss: number | null;
  /** In CISA KEV. */
  kev: boolean;
}

export interface ExposureTimelineEvent {
  at: string;
  type: string;
  actor: string;
  reason: string | null;
  data: Record<string, unknown>;
}

const PRIORITY_ORDER = `case priority when 'act' then 0 when 'attend' then 1 when 'track*' then 2 when 'track' then 3 else 4 end`;

export async function listExposures(
  pool: Pool,
  filter: { state?: string; scope?: string; owner?: string; all?: boolean; limit: number },
): Promise<ExposureListRow[]> {
  const where: string[] = [];
  const args: unknown[] = [];
  if (filter.state) {
    args.push(filter.state);
    where.push(`e.state = $${args.length}`);
  } else if (!filter.all) where.push(`e.state not in ('resolved', 'false-positive', 'retired')`);
  if (filter.scope) {
    args.push(filter.scope);
    where.push(`e.scope = $${args.length}`);
  }
  if (filter.owner) {
    args.push(filter.owner);
    where.push(`e.owner = $${args.length}`);
  }
  args.push(filter.limit);
  const { rows } = await pool.query<{
    id: string;
    state: string;
    priority: string | null;
    sla_due: Date | null;
    breached: boolean;
    owner: string | null;
    scope: string | null;
    asset: string;
    vuln_key: string;
    first_seen: Date;
    campaign_id: string | null;
    cvss_contextual: number | null;
    kev: boolean;
  }>(
    `select e.id, e.state, e.priority, e.sla_due, (e.sla_breached_at is not null) as breached, e.owner, e.scope,
            coalesce(a.fqdn, a.hostname, a.image_repo, a.ips[1], a.identity_key) as asset, e.vuln_key, e.first_seen,
            e.campaign_id, e.cvss_contextual, e.kev
       from exposures e join assets a on a.id = e.asset_id
      ${where.length ? `where ${where.join(' and ')}` : ''}
      order by ${PRIORITY_ORDER}, e.sla_due nulls last, e.kev desc, e.cvss_contextual desc nulls last, e.id
      limit $${args.length}`,
    args,
  );
  return rows.map((r) => ({
    id: r.id,
    state: r.state,
    priority: r.priority ? outcomeLabel(r.priority) : null,
    slaDue: r.sla_due?.toISOString() ?? null,
    breached: r.breached,
    owner: r.owner,
    scope: r.scope,
    asset: r.asset,
    weakness: r.vuln_key,
    firstSeen: r.first_seen.toISOString(),
    campaign: r.campaign_id,
    cvss: r.cvss_contextual === null ? null : Math.round(r.cvss_contextual * 10) / 10,
    kev: r.kev,
  }));
}

export async function exposureTimeline(pool: Pool, id: string) {
  const { rows } = await pool.query<{
    id: string;
    state: string;
    priority: string | null;
    sla_due: Date | null;
    sla_breached_at: Date | null;
    sla_paused: boolean;
    owner: string | null;
    scope: string | null;
    asset: string;
    vuln_key: string;
    first_seen: Date;
    last_seen: Date;
    policy_version: string | null;
    reasons: string[];
    campaign_id: string | null;
    fix_key: string | null;
    ticket: { system: string; key: string; url?: string } | null;
    learned_at: Date;
    sla_start: Date | null;
    fixed_at: Date | null;
    verified_at: Date | null;
    verified_scan_id: number | null;
    exposure_seconds: number | null;
    snoozed_until: Date | null;
    risk_accepted_until: Date | null;
    risk_accepted_by: string | null;
  }>(
    `select e.*, coalesce(a.fqdn, a.hostname, a.image_repo, a.ips[1], a.identity_key) as asset, c.fix_key, c.ticket
       from exposures e join assets a on a.id = e.asset_id
       left join campaigns c on c.id = e.campaign_id
      where e.id = $1`,
    [id],
  );
  const e = rows[0];
  if (!e) return undefined;
  const events = await pool.query<{
    at: Date;
    type: string;
    actor: string;
    reason: string | null;
    data: Record<string, unknown>;
  }>('select at, type, actor, reason, data from events where exposure_id = $1 order by at, id', [id]);
  return {
    id: e.id,
    asset: e.asset,
    weakness: e.vuln_key,
    scope: e.scope,
    state: e.state,
    priority: e.priority ? outcomeLabel(e.priority) : null,
    slaDue: e.sla_due?.toISOString() ?? null,
    slaBreachedAt: e.sla_breached_at?.toISOString() ?? null,
    slaPaused: e.sla_paused,
    owner: e.owner,
    policyVersion: e.policy_version,
    reasons: Array.isArray(e.reasons) ? e.reasons : [],
    campaign: e.campaign_id ? { id: e.campaign_id, fix: e.fix_key, ticket: e.ticket } : null,
    firstSeen: e.first_seen.toISOString(),
    learnedAt: e.learned_at.toISOString(),
    slaStart: (e.sla_start ?? e.learned_at).toISOString(),
    lastSeen: e.last_seen.toISOString(),
    snoozedUntil: e.snoozed_until?.toISOString() ?? null,
    riskAccepted: e.risk_accepted_until
      ? { by: e.risk_accepted_by, until: e.risk_accepted_until.toISOString() }
      : null,
    fixedAt: e.fixed_at?.toISOString() ?? null,
    verified: e.verified_at ? { at: e.verified_at.toISOString(), scanId: e.verified_scan_id } : null,
    exposureSeconds: e.exposure_seconds,
    timeline: events.rows.map((r): ExposureTimelineEvent => ({
      at: r.at.toISOString(),
      type: r.type,
      actor: r.actor,
      reason: r.reason,
      data: r.data,
    })),
  };
}
