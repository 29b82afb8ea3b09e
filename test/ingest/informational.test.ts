// A host a scanner looked at and found nothing wrong with (only informational results, such as
// Nessus "None" plugins) is still inventoried and covered by the scan, but holds no exposure — and
// what an earlier scan had found on it is gone.
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ingestFile } from '../../ingest/file.ts';
import { testDatabase } from '../support/db.ts';

// One ReportHost, preprod.boardvantage.net (12.233.108.201, "CISCO PIX 7.0"), whose seven
// ReportItems all have severity 0 and no CVE.
const sample = path.resolve(import.meta.dirname, '../../../shared/data/scans/nessus/nessus_many_vuln.xml');
const present = existsSync(sample);
if (!present) console.warn(`skipping the informational-host test: ${sample} is absent`);

/** An earlier Nessus report of the same host with one real weakness. */
function earlierReport(): string {
  return `<?xml version="1.0" ?>
<NessusClientData_v2><Report name="earlier">
<ReportHost name="12.233.108.201"><HostProperties>
<tag name="HOST_START_TIMESTAMP">1370000000</tag>
<tag name="host-ip">12.233.108.201</tag>
<tag name="host-fqdn">preprod.boardvantage.net</tag>
</HostProperties>
<ReportItem port="443" svc_name="www" protocol="tcp" severity="3" pluginID="70658" pluginName="SSH Server CBC Mode Ciphers Enabled" pluginFamily="Misc.">
<cve>CVE-2008-5161</cve>
<description>The SSH server is configured to support Cipher Block Chaining (CBC) encryption.</description>
</ReportItem>
</ReportHost></Report></NessusClientData_v2>
`;
}

describe.skipIf(!present)('a host with only informational findings', () => {
  it('becomes an inventoried, covered asset with no exposure, and closes what an earlier scan found', async () => {
    const db = await testDatabase();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ctem-info-host-'));
    const earlier = path.join(dir, 'earlier.nessus');
    writeFileSync(earlier, earlierReport());
    const first = await ingestFile(db.pool, earlier, { scopes: [] });
    expect(first.exposures.new).toBe(1);

    const summary = await ingestFile(db.pool, sample, { scopes: [] });
    expect(summary).toMatchObject({
      status: 'ingested',
      format: 'nessus',
      findings: 7,
      informationalFindings: 7,
      skippedFindings: 0,
      assets: { covered: 1, created: 0, matched: 1 },
      exposures: { new: 0, stillPresent: 0, gone: 1, reappeared: 0 },
    });

    const { rows: assets } = await db.pool.query<{
      id: number;
      fqdn: string;
      ips: string[];
      os: string | null;
    }>('select id, fqdn, ips, os from assets');
    expect(assets).toEqual([
      {
        id: expect.any(Number),
        fqdn: 'preprod.boardvantage.net',
        ips: ['12.233.108.201'],
        os: 'CISCO PIX 7.0',
      },
    ]);
    const { rows: covered } = await db.pool.query<{ asset_id: number }>(
      'select asset_id::int from scan_assets where scan_id = $1',
      [summary.scanId],
    );
    expect(covered).toEqual([{ asset_id: assets[0]!.id }]);
    // No exposure or observation came from the informational items; the earlier one is absent now.
    const { rows: exposures } = await db.pool.query<{ vuln_key: string; present: boolean }>(
      'select vuln_key, present from exposures',
    );
    expect(exposures).toEqual([{ vuln_key: 'CVE-2008-5161', present: false }]);
    const { rows: observed } = await db.pool.query<{ n: number }>(
      'select count(*)::int as n from observations where last_scan_id = $1',
      [summary.scanId],
    );
    expect(observed[0]!.n).toBe(0);
  });

  it('inventories the host of a first scan too', async () => {
    const db = await testDatabase();
    const summary = await ingestFile(db.pool, sample, { scopes: [] });
    expect(summary.assets).toMatchObject({ covered: 1, created: 1 });
    expect(summary.exposures.new).toBe(0);
    const { rows } = await db.pool.query<{ identity_key: string }>('select identity_key from assets');
    expect(rows).toEqual([{ identity_key: 'host:preprod.boardvantage.net' }]);
  });
});
