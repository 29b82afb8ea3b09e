// Campaigns in PostgreSQL: putting exposures in their campaign and shard (set-based, per batch), and
// reading a campaign back as the CampaignSummary that tickets, messages and patch rollouts are
// written from.
import type { Config } from '../domain/config.ts';
import { ScopeMatcher, type ScopedAsset } from '../domain/inventory.ts';
import type { ExposureState } from '../domain/exposure.ts';
import { terminalStates } from '../domain/exposure.ts';
import { campaignAction, campaignId, campaignKeyOf, type CampaignKey } from '../domain/campaign.ts';
import type { Pool, PoolClient } from '../runtime/pool.ts';
import { inTransaction } from '../runtime/pool.ts';
import type { CampaignKind, CampaignSummary, TicketRef } from '../domain/ports.ts';
import { outcomeLabel } from './triage.ts';

/** Exposures one campaign workflow holds at most; a larger campaign is split over more (shards). */
export const DEFAULT_SHARD_CAP = 1_000;

interface FactRow {
  id: string;
  scope: string | null;
  owner: string | null;
  asset_id: number;
  vuln_key: string;
  state: ExposureState;
  campaign_id: string | null;
  campaign_shard: number | null;
  asset_name: string;
  hostname: string | null;
  fqdn: string | null;
  ips: string[];
  tags: string[];
  image_repo: string | null;
  kind: string | null;
  package_name: string | null;
  package_type: string | null;
  package_version: string | null;
  fixed_version: string | null;
  advisory_text: string | null;
}

// The package of the exposure's latest sighting (any scanner), from ingest's observations, and the
// text in which scanners name advisories (aliases, the reported solution).
const factsSql = `
  select e.id, e.scope, e.owner, e.asset_id, e.vuln_key, e.state, e.campaign_id, e.campaign_shard,
         coalesce(a.fqdn, a.hostname, a.image_repo, a.cloud_id, a.url, a.ips[1], a.identity_key) as asset_name,
         a.hostname, a.fqdn, a.ips, a.tags, a.image_repo, o.kind, o.package_name, o.package_type, o.package_version, o.fixed_version,
         concat_ws(' ', array_to_string(v.aliases, ' '), v.reported_solution) as advisory_text
    from exposures e
    join assets a on a.id = e.asset_id
    left join vulnerabilities v on v.key = e.vuln_key
    left join lateral (
      select kind, package_name, package_type, package_version, fixed_version
        from observations o where o.exposure_id = e.id
       order by o.present desc, o.last_seen desc limit 1) o on true
   where e.id = any($1::text[])`;

function keyOf(row: FactRow): CampaignKey {
  return campaignKeyOf({
    scope: row.scope ?? 'unscoped',
    weaknessKey: row.vuln_key,
    ...(row.kind ? { findingKind: row.kind } : {}),
    ...(row.package_name
      ? {
          package: {
            name: row.package_name,
            ...(row.package_type ? { type: row.package_type } : {}),
            ...(row.fixed_version ? { fixedVersion: row.fixed_version } : {}),
          },
        }
      : {}),
    ...(row.advisory_text ? { advisoryText: row.advisory_text } : {}),
  });
}

/** The owner an exposure starts with when none is set: the scope's first owner. */
export function defaultOwner(config: Config, scope: string | null | undefined): string | undefined {
  return config.scopes.find((s) => s.name === scope)?.roles.owner[0];
}

/**
 * Who owns an asset of a scope: the first of the scope's ownership rules that matches it, else the
 * scope's first owner. The rules are compiled once per scope.
 */
export class Ownership {
  private readonly matchers = new Map<string, ScopeMatcher>();

  constructor(private readonly config: Config) {}

  ownerOf(scope: string | null, asset: ScopedAsset): string | undefined {
    const s = this.config.scopes.find((x) => x.name === scope);
    if (!s) return undefined;
    if (s.ownership.length > 0) {
      let m = this.matchers.get(s.name);
      if (!m) {
        m = new ScopeMatcher(s.ownership.map((r) => ({ name: r.owner, match: r.match })));
        this.matchers.set(s.name, m);
      }
      const owner = m.scopeOf(asset);
      if (owner) return owner;
    }
    return s.roles.owner[0];
  }
}

/** Where an exposure's lifecycle is held. */
export interface CampaignPlace {
  campaignId: string;
  shard: number;
  scope: string;
  owner?: string;
  /** The exposure was in another campaign (or none) before this assignment. */
  moved: boolean;
  /** The shard held open exposures before: its workflow is probably running (signal it). */
  occupied: boolean;
  /**
   * The shard is new (a campaign or shard created by this assignment): no workflow ever ran for
   * it. Otherwise one may have run and ended, and a new one is a later generation of it.
   */
  fresh: boolean;
}

interface CampaignRow {
  id: string;
  scope: string;
  owner?: string;
  fixKey: string;
  kind: CampaignKind;
  subject: string;
}

/** Campaign rows for the keys, and their shards' current loads, locked until the transaction ends. */
async function lockCampaigns(
  db: PoolClient,
  campaigns: CampaignRow[],
): Promise<{ shards: Map<string, number>; load: Map<string, number>; created: Set<string> }> {
  const { rows: inserted } = await db.query<{ id: string }>(
    `insert into campaigns (id, scope, owner, fix_key, kind, subject)
     select c.id, c.scope, c.owner, c."fixKey", c.kind, c.subject
       from jsonb_to_recordset($1::jsonb) as c(id text, scope text, owner text, "fixKey" text, kind text, subject text)
      order by c.id
     on conflict (id) do nothing
     returning id`,
    [JSON.stringify(campaigns)],
  );
  const ids = campaigns.map((c) => c.id).sort();
  const { rows } = await db.query<{ id: string; shards: number }>(
    'select id, shards from campaigns where id = any($1::text[]) order by id for update',
    [ids],
  );
  const { rows: loads } = await db.query<{ campaign_id: string; campaign_shard: number; n: number }>(
    `select campaign_id, campaign_shard, count(*)::int as n from exposures
      where campaign_id = any($1::text[]) and state <> all($2::text[])
      group by campaign_id, campaign_shard`,
    [ids, terminalStates],
  );
  return {
    shards: new Map(rows.map((r) => [r.id, r.shards])),
    load: new Map(loads.map((l) => [`${l.campaign_id}~${l.campaign_shard}`, l.n])),
    created: new Set(inserted.map((r) => r.id)),
  };
}

const installations = new WeakMap<Pool, Promise<string>>();

/** This installation's id (db/migrations/016_installation.sql), read once per pool. */
export function installationId(pool: Pool): Promise<string> {
  let id = installations.get(pool);
  if (!id) {
    id = pool.query<{ id: string }>('select id from installation').then((r) => {
      if (!r.rows[0])
        throw new Error('the installation table is empty: run the database migrations (ctem db migrate)');
      return r.rows[0].id;
    });
    id.catch(() => installations.delete(pool));
    installations.set(pool, id);
  }
  return id;
}

/**
 * Put each exposure in its campaign (owner × fix in its scope) and a shard of it with room, creating
 * campaigns as needed, and return exposure id → place. An exposure already in the right campaign
 * keeps its shard. `ownerOverride` moves every given exposure to that owner (reassign).
 */
export async function assignCampaigns(
  pool: Pool,
  config: Config,
  exposureIds: string[],
  opts: { ownerOverride?: string; shardCap?: number } = {},
): Promise<Map<string, CampaignPlace>> {
  const out = new Map<string, CampaignPlace>();
  if (exposureIds.length === 0) return out;
  const cap = Math.max(1, opts.shardCap ?? DEFAULT_SHARD_CAP);
  const ownership = new Ownership(config);
  const installation = await installationId(pool);
  return await inTransaction(pool, async (db) => {
    const { rows } = await db.query<FactRow>(factsSql, [exposureIds]);
    const campaigns = new Map<string, CampaignRow>();
    const wanted = rows.map((row) => {
      const scope = row.scope ?? 'unscoped';
      const owner =
        opts.ownerOverride ??
        row.owner ??
        ownership.ownerOf(row.scope, {
          ...(row.hostname ? { hostname: row.hostname } : {}),
          ...(row.fqdn ? { fqdn: row.fqdn } : {}),
          ips: row.ips,
          tags: row.tags,
          ...(row.image_repo ? { imageRepo: row.image_repo } : {}),
        });
      const key = keyOf(row);
      const id = campaignId(scope, owner, key.key, installation);
      if (!campaigns.has(id))
        campaigns.set(id, {
          id,
          scope,
          ...(owner ? { owner } : {}),
          fixKey: key.key,
          kind: key.kind,
          subject: key.subject,
        });
      return { row, id, scope, owner };
    });
    const { shards, load, created } = await lockCampaigns(db, [...campaigns.values()]);
    const before = new Map(load);
    const shardsBefore = new Map(shards);
    const members: { id: string; campaignId: string; shard: number; owner?: string }[] = [];
    for (const { row, id, scope, owner } of wanted) {
      let shard: number;
      const stays = row.campaign_id === id && row.campaign_shard !== null;
      if (stays) shard = row.campaign_shard!;
      else {
        const count = shards.get(id) ?? 1;
        shard = 0;
        for (let s = 1; s <= count; s++)
          if ((load.get(`${id}~${s}`) ?? 0) < cap) {
            shard = s;
            break;
          }
        if (shard === 0) {
          shard = count + 1;
          shards.set(id, shard);
        }
        load.set(`${id}~${shard}`, (load.get(`${id}~${shard}`) ?? 0) + 1);
      }
      members.push({ id: row.id, campaignId: id, shard, ...(owner ? { owner } : {}) });
      out.set(row.id, {
        campaignId: id,
        shard,
        scope,
        ...(owner ? { owner } : {}),
        moved: !stays,
        occupied: (before.get(`${id}~${shard}`) ?? 0) > (stays ? 1 : 0),
        fresh: created.has(id) || shard > (shardsBefore.get(id) ?? 0),
      });
    }
    await db.query(
      `update campaigns c set shards = s.shards, updated_at = now()
         from jsonb_to_recordset($1::jsonb) as s(id text, shards integer)
        where c.id = s.id and c.shards < s.shards`,
      [JSON.stringify([...shards].map(([id, n]) => ({ id, shards: n })))],
    );
    await db.query(
      `update exposures e set campaign_id = m."campaignId", campaign_shard = m.shard, owner = m.owner
         from jsonb_to_recordset($1::jsonb) as m(id text, "campaignId" text, shard integer, owner text)
        where e.id = m.id
          and (e.campaign_id is distinct from m."campaignId" or e.campaign_shard is distinct from m.shard
               or e.owner is distinct from m.owner)`,
      [JSON.stringify(members.sort((a, b) => (a.id < b.id ? -1 : 1)))],
    );
    return out;
  });
}

const PRIORITY_RANK: Record<string, number> = { Act: 3, Attend: 2, 'Track*': 1, Track: 0 };

export function mostUrgent(priorities: string[]): string {
  return priorities.reduce(
    (a, b) => ((PRIORITY_RANK[b] ?? -1) > (PRIORITY_RANK[a] ?? -1) ? b : a),
    priorities[0] ?? 'Track',
  );
}

export interface CampaignRecord {
  id: string;
  scope: string;
  owner?: string;
  fixKey: string;
  kind: CampaignKind;
  subject: string;
  shards: number;
  ticket?: TicketRef;
}

export async function readCampaign(
  db: Pool | PoolClient,
  campaignId: string,
): Promise<CampaignRecord | undefined> {
  const { rows } = await db.query<{
    id: string;
    scope: string;
    owner: string | null;
    fix_key: string;
    kind: CampaignKind;
    subject: string;
    shards: number;
    ticket: TicketRef | null;
  }>('select id, scope, owner, fix_key, kind, subject, shards, ticket from campaigns where id = $1', [
    campaignId,
  ]);
  const r = rows[0];
  if (!r) return undefined;
  return {
    id: r.id,
    scope: r.scope,
    ...(r.owner ? { owner: r.owner } : {}),
    fixKey: r.fix_key,
    kind: r.kind,
    subject: r.subject,
    shards: r.shards,
    ...(r.ticket ? { ticket: r.ticket } : {}),
  };
}

interface MemberRow {
  id: string;
  asset_id: number;
  vuln_key: string;
  asset_name: string;
  state: ExposureState;
  priority: string | null;
  sla_due: Date | null;
  reasons: unknown;
  title: string | null;
  package_name: string | null;
  package_version: string | null;
  fixed_version: string | null;
}

/**
 * The campaign as tickets and messages show it: its action across its assets, the most urgent
 * priority and earliest deadline of its open exposures, and its exposures (open ones first, most
 * urgent first), the list cut to `limit` when given.
 */
export async function campaignSummary(
  db: Pool | PoolClient,
  campaignId: string,
  opts: { limit?: number } = {},
): Promise<CampaignSummary | undefined> {
  const campaign = await readCampaign(db, campaignId);
  if (!campaign) return undefined;
  const { rows } = await db.query<MemberRow>(
    `select e.id, e.asset_id, e.vuln_key, e.state, e.priority, e.sla_due, e.reasons,
            coalesce(a.fqdn, a.hostname, a.image_repo, a.cloud_id, a.url, a.ips[1], a.identity_key) as asset_name,
            coalesce(o.title, v.title, e.vuln_key) as title, o.package_name, o.package_version, o.fixed_version
       from exposures e
       join assets a on a.id = e.asset_id
       left join vulnerabilities v on v.key = e.vuln_key
       left join lateral (
         select title, package_name, package_version, fixed_version from observations o
          where o.exposure_id = e.id order by o.present desc, o.last_seen desc limit 1) o on true
      where e.campaign_id = $1`,
    [campaignId],
  );
  const open = rows.filter((r) => !terminalStates.includes(r.state));
  const rank = (r: MemberRow) => PRIORITY_RANK[outcomeLabel(r.priority ?? 'track')] ?? -1;
  rows.sort(
    (a, b) =>
      Number(terminalStates.includes(a.state)) - Number(terminalStates.includes(b.state)) ||
      rank(b) - rank(a) ||
      (a.sla_due?.getTime() ?? Infinity) - (b.sla_due?.getTime() ?? Infinity) ||
      (a.id < b.id ? -1 : 1),
  );
  const dues = open.map((r) => r.sla_due).filter((d): d is Date => d !== null);
  const earliest = dues.length
    ? new Date(Math.min(...dues.map((d) => d.getTime()))).toISOString()
    : undefined;
  const states: Partial<Record<ExposureState, number>> = {};
  for (const r of rows) states[r.state] = (states[r.state] ?? 0) + 1;
  const listed = opts.limit !== undefined ? rows.slice(0, opts.limit) : rows;
  const key: CampaignKey = { key: campaign.fixKey, kind: campaign.kind, subject: campaign.subject };
  const actionOf = open.length ? open : rows;
  return {
    id: campaign.id,
    scope: campaign.scope,
    ...(campaign.owner ? { owner: campaign.owner } : {}),
    kind: campaign.kind,
    subject: campaign.subject,
    action: campaignAction(
      key,
      actionOf.map((r) => ({
        assetName: r.asset_name,
        ...(r.fixed_version ? { fixedVersion: r.fixed_version } : {}),
      })),
    ),
    priority: mostUrgent((open.length ? open : rows).map((r) => outcomeLabel(r.priority ?? 'track'))),
    ...(earliest ? { slaDue: earliest } : {}),
    totals: {
      exposures: rows.length,
      open: open.length,
      assets: new Set(rows.map((r) => r.asset_id)).size,
      states,
    },
    exposures: listed.map((r) => ({
      id: r.id,
      weaknessKey: r.vuln_key,
      title: r.title ?? r.vuln_key,
      asset: r.asset_name,
      state: r.state,
      priority: outcomeLabel(r.priority ?? 'track'),
      reasons: Array.isArray(r.reasons) ? (r.reasons as string[]) : [],
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
    ...(listed.length < rows.length ? { more: rows.length - listed.length } : {}),
  };
}

/** Where each exposure's lifecycle is held now: campaign, shard and the workflow id. */
export async function campaignPlaces(
  db: Pool | PoolClient,
  exposureIds: string[],
): Promise<Map<string, { campaignId: string; shard: number }>> {
  const { rows } = await db.query<{ id: string; campaign_id: string; campaign_shard: number }>(
    `select id, campaign_id, campaign_shard from exposures
      where id = any($1::text[]) and campaign_id is not null and campaign_shard is not null`,
    [exposureIds],
  );
  return new Map(rows.map((r) => [r.id, { campaignId: r.campaign_id, shard: r.campaign_shard }]));
}
