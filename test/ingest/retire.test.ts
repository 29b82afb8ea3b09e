// Inventory upkeep: an asset its scope's scan cycles keep missing is retired, and its open exposures
// close as "asset retired" — counted in cycles actually run, never in time alone.
import { describe, expect, it } from 'vitest';
import { testDatabase } from '../support/db.ts';
import { ingestReport, type IngestOptions } from '../../ingest/ingest.ts';
import { retireAcrossScopes } from '../../ingest/retire.ts';
import { scanDiff } from '../../ingest/diff.ts';
import { exposureId } from '../../domain/exposure.ts';
import type { Finding } from '../../domain/finding.ts';
import { configWithScopes, finding, host, stream } from './findings.ts';

const scopes = configWithScopes([
  { name: 'dc', match: { cidrs: ['10.1.0.0/16'] }, retireAfterMissedCycles: 2 },
  { name: 'lab', match: { cidrs: ['10.2.0.0/16'] }, retireAfterMissedCycles: 1 },
]).scopes;

describe('retiring assets the scan cycles no longer see', () => {
  it('retires after the configured number of missed cycles, closes open exposures as retired, and revives on return', async () => {
    const db = await testDatabase();
    let n = 0;
    const cycle = async (findings: Finding[], opts: Partial<IngestOptions> = {}) =>
      await ingestReport(
        db.pool,
        {
          source: `cycle-${++n}.xml`,
          format: 'nessus',
          findings: stream(findings),
          fileSha256: `cycle-${n}`,
        },
        { scopes, scope: 'dc', cycle: true, scanTime: new Date(Date.UTC(2024, 0, n)), ...opts },
      );
    const web = host('web.example.com', '10.1.0.1');
    const old = host('old.example.com', '10.1.0.2');
    const lab = host('lab.example.com', '10.2.0.1');
    await cycle([finding(web, 'CVE-1'), finding(old, 'CVE-1'), finding(old, 'CVE-2')]);
    // A lab asset and a plain import: neither counts for the dc scope.
    await ingestReport(
      db.pool,
      { source: 'lab.xml', format: 'nessus', findings: stream([finding(lab, 'CVE-9')]) },
      { scopes },
    );
    const ids = Object.fromEntries(
      (await db.pool.query<{ id: number; fqdn: string }>('select id, fqdn from assets')).rows.map((r) => [
        r.fqdn,
        r.id,
      ]),
    );
    // The lifecycle had already resolved one of old's exposures.
    await db.pool.query(`update exposures set state = 'resolved' where id = $1`, [
      exposureId(ids['old.example.com']!, 'CVE-2'),
    ]);

    const missed1 = await cycle([finding(web, 'CVE-1')]);
    expect(missed1.retired).toEqual([]);
    const missed2 = await cycle([finding(web, 'CVE-1')]);
    expect(missed2.retired).toEqual([
      { assetId: ids['old.example.com'], exposureIds: [exposureId(ids['old.example.com']!, 'CVE-1')] },
    ]);
    expect(missed2.assets.retired).toBe(1);
    expect((await scanDiff(db.pool, missed2.scanId)).retired).toEqual([
      exposureId(ids['old.example.com']!, 'CVE-1'),
    ]);

    const { rows } = await db.pool.query(
      `select e.vuln_key, e.state, e.present, a.retired_at is not null as retired
         from exposures e join assets a on a.id = e.asset_id where a.fqdn = 'old.example.com' order by e.vuln_key`,
    );
    expect(rows).toEqual([
      { vuln_key: 'CVE-1', state: 'retired', present: false, retired: true },
      { vuln_key: 'CVE-2', state: 'resolved', present: false, retired: true },
    ]);
    const events = await db.pool.query(
      `select exposure_id, type, reason from events where type = 'exposure.retired'`,
    );
    expect(events.rows).toEqual([
      {
        exposure_id: exposureId(ids['old.example.com']!, 'CVE-1'),
        type: 'exposure.retired',
        reason: 'asset retired: not seen in 2 scan cycles of scope dc',
      },
    ]);
    // The lab asset was never in a dc cycle, and the lab scope ran none: it stays.
    const labAsset = await db.pool.query(`select retired_at from assets where fqdn = 'lab.example.com'`);
    expect(labAsset.rows[0].retired_at).toBeNull();

    // Seen again: back in the inventory, its exposure reappears (the lifecycle decides what follows).
    const back = await cycle([finding(web, 'CVE-1'), finding(old, 'CVE-1')]);
    expect(back.exposures.reappeared).toBe(1);
    expect((await scanDiff(db.pool, back.scanId)).reappeared).toEqual([
      exposureId(ids['old.example.com']!, 'CVE-1'),
    ]);
    const revived = await db.pool.query(`select retired_at from assets where fqdn = 'old.example.com'`);
    expect(revived.rows[0].retired_at).toBeNull();
  });

  it('re-checks every scope against its latest cycle, e.g. after the threshold was lowered', async () => {
    const db = await testDatabase();
    const lab = (n: number, findings: Finding[]) =>
      ingestReport(
        db.pool,
        { source: `lab-${n}.xml`, format: 'nessus', findings: stream(findings), fileSha256: `lab-${n}` },
        {
          scopes: configWithScopes([
            { name: 'lab', match: { cidrs: ['10.2.0.0/16'] }, retireAfterMissedCycles: 5 },
          ]).scopes,
          scope: 'lab',
          cycle: true,
          scanTime: new Date(Date.UTC(2024, 1, n)),
        },
      );
    await lab(1, [
      finding(host('a.example.com', '10.2.0.1'), 'CVE-1'),
      finding(host('b.example.com', '10.2.0.2'), 'CVE-1'),
    ]);
    await lab(2, [finding(host('a.example.com', '10.2.0.1'), 'CVE-1')]);
    const result = await retireAcrossScopes(db.pool, { scopes });
    const b = await db.pool.query<{ id: string; scan: string }>(
      `select a.id, (select max(id) from scans where scope = 'lab') as scan from assets a where fqdn = 'b.example.com'`,
    );
    const bId = Number(b.rows[0]!.id);
    expect(result).toEqual([
      {
        scope: 'lab',
        scanId: Number(b.rows[0]!.scan),
        retired: [{ assetId: bId, exposureIds: [`${bId}:CVE-1`] }],
      },
    ]);
  });
});
