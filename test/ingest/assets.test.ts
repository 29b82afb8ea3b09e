// Asset resolution runs in rounds of ASSET_BATCH report assets, so memory holds one round whatever
// the report's size. A later round must find what an earlier one wrote in the same transaction:
// resolving one asset per round gives the same inventory, ids and counts as one round for all.
import { describe, expect, it } from 'vitest';
import { inTransaction } from '../../runtime/pool.ts';
import { resolveAssets } from '../../ingest/assets.ts';
import { ScopeMatcher } from '../../domain/inventory.ts';
import type { AssetRef } from '../../domain/finding.ts';
import { testDatabase } from '../support/db.ts';
import { host } from './findings.ts';

const refs: AssetRef[] = [
  host('web-01.example.com', '10.0.0.5'),
  { kind: 'host', hostname: 'web-01', mac: '00:16:3E:00:00:01' }, // the same machine, by name and MAC
  host(undefined, '10.0.0.5'), // and by address alone
  host('a.example.com', '10.0.0.9'),
  host('b.example.com', '10.0.0.9'), // shares an address, not a name: another machine
  { kind: 'host', hostname: 'db', mac: '00:16:3E:00:00:02' },
  { kind: 'host', hostname: 'db', mac: '00:16:3E:00:00:03' }, // same short name, other MAC: another, keyed db#2
  { kind: 'host' }, // nothing to identify it by
];

async function resolve(batchSize: number, preexisting: AssetRef[] = []) {
  const db = await testDatabase();
  const scopes = { matcher: new ScopeMatcher([]), criticality: new Map<string, string>() };
  const at = new Date('2026-11-20T00:00:00Z');
  if (preexisting.length)
    await inTransaction(db.pool, (client) => resolveAssets(client, preexisting, scopes, at));
  return await inTransaction(db.pool, async (client) => {
    const resolved = await resolveAssets(client, refs, scopes, at, batchSize);
    // Ids differ from database to database: compare by identity key.
    const keyOf = new Map(
      (
        await client.query<{ id: string; identity_key: string }>('select id, identity_key from assets')
      ).rows.map((r) => [Number(r.id), r.identity_key]),
    );
    const key = (id: number | undefined) => (id === undefined ? undefined : keyOf.get(id));
    const staged = (
      await client.query<{ a: number; asset_id: string }>('select a, asset_id from stage_assets order by a')
    ).rows.map((r) => [r.a, key(Number(r.asset_id))]);
    const assets = (
      await client.query<{
        identity_key: string;
        ips: string[];
        mac: string | null;
        hostname: string | null;
      }>('select identity_key, hostname, ips, mac from assets order by identity_key')
    ).rows;
    const identifiers = (
      await client.query<{ kind: string; value: string; asset_id: string }>(
        'select kind, value, asset_id from asset_identifiers',
      )
    ).rows
      .map((r) => `${r.kind}=${r.value} → ${key(Number(r.asset_id))}`)
      .sort();
    return {
      resolved: { ...resolved, ids: resolved.ids.map(key) },
      staged,
      assets,
      identifiers,
    };
  });
}

describe('asset resolution in rounds', () => {
  it('gives the same inventory one asset per round as all in one round', async () => {
    const one = await resolve(10_000);
    const many = await resolve(1);
    expect(many).toEqual(one);
    expect(one.resolved).toMatchObject({ created: 5, matched: 0 });
    expect(one.assets.map((a) => a.identity_key)).toEqual([
      'host:a.example.com',
      'host:b.example.com',
      'host:db',
      'host:db#2',
      'host:web-01.example.com',
    ]);
    expect(one.resolved.ids).toEqual([
      'host:web-01.example.com',
      'host:web-01.example.com',
      'host:web-01.example.com',
      'host:a.example.com',
      'host:b.example.com',
      'host:db',
      'host:db#2',
      undefined,
    ]);
    expect(one.staged.map(([a]) => a)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(one.identifiers).toContain('mac=00:16:3E:00:00:01 → host:web-01.example.com');
  });

  it('counts an asset known before the ingest as matched, once, whatever the rounds', async () => {
    const one = await resolve(10_000, [host('web-01.example.com', '10.0.0.5')]);
    const many = await resolve(1, [host('web-01.example.com', '10.0.0.5')]);
    expect(many.resolved).toEqual(one.resolved);
    expect(one.resolved).toMatchObject({ created: 4, matched: 1 });
  });
});
