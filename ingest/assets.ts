// Resolve a report's distinct assets to inventory assets: one query loads every known asset sharing
// an identifier with any of them, domain/inventory.ts decides the matches in memory, and three
// statements write the new assets, the updated ones and their identifiers. Scopes are assigned here.
import type { AssetRef } from '../domain/finding.ts';
import {
  AssetIndex,
  assetIdentifiers,
  identityKey,
  mergeAsset,
  newAsset,
  type KnownAsset,
  type ScopeMatcher,
} from '../domain/inventory.ts';
import type { PoolClient } from '../runtime/pool.ts';
import { boundHeap } from './heap.ts';

export interface ScopeAssignment {
  matcher: ScopeMatcher;
  /** Scope name → criticality from ctem.yaml, given to assets entering the scope. */
  criticality: ReadonlyMap<string, string>;
  /** `--scope S`: every asset of the report goes to S. */
  forced?: string;
}

export interface ResolvedAssets {
  /** Inventory asset id per report asset index (undefined: not identifiable). */
  ids: (number | undefined)[];
  created: number;
  matched: number;
}

interface AssetRow {
  id: number;
  kind: KnownAsset['kind'];
  identity_key: string;
  hostname: string | null;
  fqdn: string | null;
  ips: string[];
  mac: string | null;
  os: string | null;
  image_repo: string | null;
  image_tag: string | null;
  image_digest: string | null;
  cloud_id: string | null;
  url: string | null;
  tags: string[];
  scope: string | null;
  retired: boolean;
}

function knownFromRow(r: AssetRow): KnownAsset {
  const opt = (v: string | null): string | undefined => v ?? undefined;
  return {
    id: r.id,
    kind: r.kind,
    identityKey: r.identity_key,
    hostname: opt(r.hostname),
    fqdn: opt(r.fqdn),
    ips: r.ips,
    mac: opt(r.mac),
    os: opt(r.os),
    imageRepo: opt(r.image_repo),
    imageTag: opt(r.image_tag),
    imageDigest: opt(r.image_digest),
    cloudId: opt(r.cloud_id),
    url: opt(r.url),
    tags: r.tags,
    scope: opt(r.scope),
    retired: r.retired,
  };
}

/** Report assets resolved per round: memory holds one round's working set, whatever the report's size. */
export const ASSET_BATCH = 5_000;

/**
 * Resolve and write the assets, then fill the temporary table stage_assets (a, asset_id, scope)
 * that the merges join on. Runs under the ingest lock, so no other ingest creates assets meanwhile.
 * The report's assets are resolved `batchSize` at a time (about 3 KB of working set each): a later
 * round finds the assets and identifiers an earlier one wrote, in the same transaction, so the
 * outcome is the same as one round's.
 */
export async function resolveAssets(
  client: PoolClient,
  refs: readonly AssetRef[],
  scopes: ScopeAssignment,
  seenAt: Date,
  batchSize = ASSET_BATCH,
): Promise<ResolvedAssets> {
  await client.query(
    'create temp table stage_assets (a int primary key, asset_id bigint not null, scope text) on commit drop',
  );
  const ids: (number | undefined)[] = [];
  const created = new Set<number>();
  const matched = new Set<number>();
  for (let from = 0; from < refs.length; from += batchSize) {
    const round = await resolveRound(client, refs.slice(from, from + batchSize), from, scopes, seenAt);
    ids.push(...round.ids);
    for (const id of round.created) created.add(id);
    // An asset this ingest created in an earlier round is created, not matched.
    for (const id of round.matched) if (!created.has(id)) matched.add(id);
    boundHeap();
  }
  await client.query('analyze stage_assets');
  return { ids, created: created.size, matched: matched.size };
}

/** One round of resolveAssets: `refs` are the report's assets from index `offset` on. */
async function resolveRound(
  client: PoolClient,
  refs: readonly AssetRef[],
  offset: number,
  scopes: ScopeAssignment,
  seenAt: Date,
): Promise<{ ids: (number | undefined)[]; created: number[]; matched: number[] }> {
  const kinds: string[] = [];
  const values: string[] = [];
  const keys: string[] = [];
  for (const ref of refs) {
    const key = identityKey(ref);
    if (key === undefined) continue;
    keys.push(key);
    for (const id of assetIdentifiers(ref)) {
      kinds.push(id.kind);
      values.push(id.value);
    }
  }
  const { rows } = await client.query<AssetRow>(
    `select a.id, a.kind, a.identity_key, a.hostname, a.fqdn, a.ips, a.mac, a.os, a.image_repo, a.image_tag,
            a.image_digest, a.cloud_id, a.url, a.tags, a.scope, a.retired_at is not null as retired
       from assets a
      where a.id in (select ai.asset_id from asset_identifiers ai
                       join unnest($1::text[], $2::text[]) as q(kind, value)
                         on ai.kind = q.kind and ai.value = q.value)
         or a.identity_key = any($3::text[])`,
    [kinds, values, keys],
  );
  const index = new AssetIndex();
  const takenKeys = new Set<string>();
  for (const r of rows) {
    index.add(knownFromRow(r));
    takenKeys.add(r.identity_key);
  }
  const original = new Map<number, KnownAsset>(rows.map((r) => [r.id, knownFromRow(r)]));

  // New assets get provisional negative ids until PostgreSQL assigns real ones.
  let provisional = 0;
  const resolvedIds: (number | undefined)[] = [];
  const identifiersOf = new Map<number, Set<string>>();
  for (const ref of refs) {
    const key = identityKey(ref);
    if (key === undefined) {
      resolvedIds.push(undefined);
      continue;
    }
    const hit = index.resolve(ref);
    let asset: KnownAsset;
    if (hit) {
      asset = mergeAsset(hit.asset, ref);
    } else {
      asset = newAsset(--provisional, ref, uniqueKey(key, takenKeys));
      takenKeys.add(asset.identityKey);
    }
    const previousScope = hit ? (original.get(hit.asset.id)?.scope ?? hit.asset.scope) : undefined;
    asset.scope = scopes.forced ?? scopes.matcher.scopeOf(asset) ?? previousScope;
    index.add(asset);
    resolvedIds.push(asset.id);
    let ids = identifiersOf.get(asset.id);
    if (!ids) identifiersOf.set(asset.id, (ids = new Set()));
    for (const id of assetIdentifiers(ref)) ids.add(`${id.kind}\0${id.value}`);
  }

  const touched = [...new Set(resolvedIds.filter((id): id is number => id !== undefined))].map((id) =>
    index.get(id)!,
  );
  const created = touched.filter((a) => a.id < 0);
  const updated = touched.filter((a) => a.id > 0);
  const realId = new Map<number, number>();
  await insertNewAssets(client, created, scopes, seenAt, realId);
  await updateAssets(client, updated, original, scopes, seenAt);

  const finalId = (id: number): number => (id < 0 ? realId.get(id)! : id);
  const idKinds: string[] = [];
  const idValues: string[] = [];
  const idAssets: number[] = [];
  for (const [assetId, ids] of identifiersOf) {
    for (const pair of ids) {
      const [kind, value] = pair.split('\0') as [string, string];
      idKinds.push(kind);
      idValues.push(value);
      idAssets.push(finalId(assetId));
    }
  }
  await client.query(
    `insert into asset_identifiers (kind, value, asset_id, first_seen, last_seen)
     select kind, value, asset_id, $4, $4 from unnest($1::text[], $2::text[], $3::bigint[]) as q(kind, value, asset_id)
     on conflict (kind, value, asset_id) do update
       set last_seen = greatest(asset_identifiers.last_seen, excluded.last_seen),
           first_seen = least(asset_identifiers.first_seen, excluded.first_seen)`,
    [idKinds, idValues, idAssets, seenAt],
  );

  const ids = resolvedIds.map((id) => (id === undefined ? undefined : finalId(id)));
  const stageA: number[] = [];
  const stageId: number[] = [];
  const stageScope: (string | null)[] = [];
  ids.forEach((id, a) => {
    if (id === undefined) return;
    stageA.push(offset + a);
    stageId.push(id);
    const local = resolvedIds[a]!;
    stageScope.push(index.get(local)?.scope ?? null);
  });
  await client.query('insert into stage_assets select * from unnest($1::int[], $2::bigint[], $3::text[])', [
    stageA,
    stageId,
    stageScope,
  ]);
  return {
    ids,
    created: created.map((a) => finalId(a.id)),
    matched: updated.map((a) => a.id),
  };
}

/** A second host with the same short name but another MAC is another asset: give it a distinct key. */
function uniqueKey(key: string, taken: ReadonlySet<string>): string {
  if (!taken.has(key)) return key;
  for (let n = 2; ; n++) if (!taken.has(`${key}#${n}`)) return `${key}#${n}`;
}

function assetJson(a: KnownAsset, criticality: string | undefined) {
  return {
    id: a.id,
    identity_key: a.identityKey,
    kind: a.kind,
    hostname: a.hostname ?? null,
    fqdn: a.fqdn ?? null,
    ips: a.ips,
    mac: a.mac ?? null,
    os: a.os ?? null,
    image_repo: a.imageRepo ?? null,
    image_tag: a.imageTag ?? null,
    image_digest: a.imageDigest ?? null,
    cloud_id: a.cloudId ?? null,
    url: a.url ?? null,
    tags: a.tags,
    scope: a.scope ?? null,
    criticality: criticality ?? null,
  };
}

const RECORD = `id bigint, identity_key text, kind text, hostname text, fqdn text, ips text[], mac text, os text,
  image_repo text, image_tag text, image_digest text, cloud_id text, url text, tags text[], scope text, criticality text`;

async function insertNewAssets(
  client: PoolClient,
  created: KnownAsset[],
  scopes: ScopeAssignment,
  seenAt: Date,
  realId: Map<number, number>,
): Promise<void> {
  let pending = created;
  // identity_key is unique; a key already used by an asset no identifier led to (a row written by
  // other means) is retried with a suffix rather than failing the whole report.
  for (let attempt = 0; pending.length > 0; attempt++) {
    if (attempt > 0)
      pending = pending.map((a) => ({
        ...a,
        identityKey: `${a.identityKey.replace(/#\d+$/, '')}#${attempt + 1}`,
      }));
    const json = JSON.stringify(
      pending.map((a) => assetJson(a, a.scope ? scopes.criticality.get(a.scope) : undefined)),
    );
    const { rows } = await client.query<{ id: number; identity_key: string }>(
      `insert into assets (identity_key, kind, hostname, fqdn, ips, mac, os, image_repo, image_tag, image_digest,
                           cloud_id, url, tags, scope, criticality, first_seen, last_seen)
       select identity_key, kind, hostname, fqdn, coalesce(ips, '{}'), mac, os, image_repo, image_tag, image_digest,
              cloud_id, url, coalesce(tags, '{}'), scope, coalesce(criticality, 'medium'), $2, $2
         from jsonb_to_recordset($1::jsonb) as x(${RECORD})
       on conflict (identity_key) do nothing
       returning id, identity_key`,
      [json, seenAt],
    );
    const byKey = new Map(rows.map((r) => [r.identity_key, r.id]));
    const left: KnownAsset[] = [];
    for (const a of pending) {
      const id = byKey.get(a.identityKey);
      if (id === undefined) left.push(a);
      else realId.set(a.id, id);
    }
    pending = left;
  }
}

async function updateAssets(
  client: PoolClient,
  updated: KnownAsset[],
  original: ReadonlyMap<number, KnownAsset>,
  scopes: ScopeAssignment,
  seenAt: Date,
): Promise<void> {
  if (updated.length === 0) return;
  const json = JSON.stringify(
    updated.map((a) => {
      const before = original.get(a.id);
      // Criticality follows the scope only when the asset enters a scope; otherwise it is left as set.
      const entering = a.scope !== undefined && a.scope !== before?.scope;
      return assetJson(a, entering ? scopes.criticality.get(a.scope!) : undefined);
    }),
  );
  await client.query(
    `update assets a
        set hostname = x.hostname, fqdn = x.fqdn, ips = coalesce(x.ips, '{}'), mac = x.mac, os = x.os,
            image_repo = x.image_repo, image_tag = x.image_tag, image_digest = x.image_digest,
            cloud_id = x.cloud_id, url = x.url, tags = coalesce(x.tags, '{}'), scope = x.scope,
            criticality = coalesce(x.criticality, a.criticality),
            first_seen = least(a.first_seen, $2), last_seen = greatest(a.last_seen, $2),
            retired_at = case when $2 > coalesce(a.retired_at, '-infinity') then null else a.retired_at end
       from jsonb_to_recordset($1::jsonb) as x(${RECORD})
      where a.id = x.id`,
    [json, seenAt],
  );
}
