// The Nessus connector against a local server speaking the Nessus REST API, serving a real .nessus
// export (../shared/data) — as it is, then without one of its findings, as a later run would.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseReport } from '../../scanners/registry.ts';
import { afterAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../support/db.ts';
import { createNessusConnector } from '../../discovery/nessus.ts';
import { scanDiff } from '../../ingest/diff.ts';
import { connectorContext } from './connectorContext.ts';
import { startLocalNessus } from './nessusServer.ts';

const sample = path.resolve('../shared/data/scans/nessus/nessus_with_cwe-.nessus');
const present = existsSync(sample);
if (!present) console.warn(`skipping the Nessus connector tests: ${sample} is absent`);

describe.skipIf(!present)('the Nessus REST connector', () => {
  it('launches with alternative targets, polls, exports, downloads and ingests; a later run marks a finding gone', async () => {
    const db = await testDatabase();
    const nessus = await startLocalNessus({ accessKey: 'ak-123', secretKey: 'sk-456', scanIds: [42] });
    afterAll(() => nessus.close());
    process.env.TEST_NESSUS_ACCESS = 'ak-123';
    process.env.TEST_NESSUS_SECRET = 'sk-456';
    const config = {
      version: 1,
      integrations: {
        nessus: {
          url: nessus.url,
          accessKey: 'env:TEST_NESSUS_ACCESS',
          secretKey: 'env:TEST_NESSUS_SECRET',
          pollInterval: '1s',
        },
      },
      scopes: [
        {
          name: 'web',
          match: { hostnames: ['*.vulnweb.com'] },
          scan: { connector: 'nessus', scanId: 42, targets: ['testphp.vulnweb.com'] },
        },
      ],
    };
    const connector = createNessusConnector(connectorContext(db.pool, config));

    const real = readFileSync(sample, 'utf8');
    nessus.report = real;
    const cycle = await connector.scanScope(connectorContext(db.pool, config).config.scopes[0]!);
    expect(nessus.launches).toEqual([{ scanId: 42, altTargets: ['testphp.vulnweb.com'] }]);
    expect(cycle).toMatchObject({
      status: 'ingested',
      format: 'nessus',
      scanner: 'nessus',
      assets: { created: 1 },
    });
    expect(cycle.exposures.new).toBeGreaterThan(3);
    expect(nessus.requests).toEqual([
      'POST /scans/42/launch',
      'GET /scans/42',
      'GET /scans/42',
      'GET /scans/42',
      'POST /scans/42/export',
      'GET /scans/42/export/5000/status',
      'GET /scans/42/export/5000/status',
      'GET /scans/42/export/5000/download',
    ]);
    const { rows: assets } = await db.pool.query<{ id: number; fqdn: string; scope: string }>(
      'select id, fqdn, scope from assets',
    );
    expect(assets).toEqual([{ id: assets[0]!.id, fqdn: 'testphp.vulnweb.com', scope: 'web' }]);

    // The later run lacks the ReportItems of one plugin: what only they reported is gone.
    const plugin = /<ReportItem [^>]*pluginID="(\d+)"[^>]*>(?:(?!<\/ReportItem>)[\s\S])*?<cve>/.exec(
      real,
    )![1]!;
    const items = new RegExp(`<ReportItem [^>]*pluginID="${plugin}"[^>]*>[\\s\\S]*?</ReportItem>`, 'g');
    nessus.report = real.replace(items, '');
    const keysOf = async (xml: string) => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'ctem-nessus-keys-'));
      writeFileSync(path.join(dir, 'r.nessus'), xml);
      const keys = new Set<string>();
      for await (const f of parseReport(path.join(dir, 'r.nessus'))) keys.add(f.weaknessKey);
      return keys;
    };
    const before = await keysOf(real);
    const after = await keysOf(nessus.report);
    const expectedGone = [...before].filter((k) => !after.has(k)).sort();
    expect(expectedGone.length).toBeGreaterThan(0);
    const ticket = await connector.rescan({
      requestId: 'rescan-1',
      scope: 'web',
      assetIds: [assets[0]!.id],
      weaknessKeys: expectedGone,
      notBefore: new Date().toISOString(),
    });
    expect(ticket, ticket.detail).toMatchObject({ status: 'done' });
    expect(nessus.launches[1]).toEqual({ scanId: 42, altTargets: ['44.228.249.3'] });
    const diff = await scanDiff(db.pool, ticket.scanId!);
    expect(diff.gone).toEqual(expectedGone.map((k) => `${assets[0]!.id}:${k}`).sort());
    expect(diff.new).toEqual([]);
  });

  it('refuses wrong API keys with a sentence naming the setting, without retrying', async () => {
    const db = await testDatabase();
    const nessus = await startLocalNessus({ accessKey: 'ak', secretKey: 'right', scanIds: [7] });
    afterAll(() => nessus.close());
    process.env.TEST_NESSUS_WRONG = 'wrong';
    const connector = createNessusConnector(
      connectorContext(db.pool, {
        version: 1,
        integrations: {
          nessus: {
            url: nessus.url,
            accessKey: 'env:TEST_NESSUS_WRONG',
            secretKey: 'env:TEST_NESSUS_WRONG',
            scanId: 7,
          },
        },
        scopes: [{ name: 'lab', match: { cidrs: ['192.0.2.0/24'] } }],
      }),
    );
    await expect(
      connector.scanScope(
        connectorContext(db.pool, {
          version: 1,
          scopes: [{ name: 'lab', match: { cidrs: ['192.0.2.0/24'] } }],
        }).config.scopes[0]!,
      ),
    ).rejects.toThrow(
      /Nessus refused the API keys \(401 on POST \/scans\/7\/launch\); check integrations.nessus.accessKey and secretKey/,
    );
    expect(nessus.requests).toEqual(['POST /scans/7/launch']);
  });
});
