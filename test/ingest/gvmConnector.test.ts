// The GVM connector against a local server speaking GMP over a Unix socket, which answers with a
// real GVM XML report (../shared/data) — as it is, then without one of its results.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../support/db.ts';
import { createGvmConnector } from '../../discovery/gvm.ts';
import { scanDiff } from '../../ingest/diff.ts';
import { parseReport } from '../../scanners/registry.ts';
import { connectorContext } from './connectorContext.ts';
import { startLocalGvmd } from './gmpServer.ts';

// A full GVM export with its scanned-hosts list (<report><report><host><ip>), and a larger one.
const sample = path.resolve('../shared/data/scans/openvas/one_vuln.xml');
const larger = path.resolve('../shared/data/scans/openvas/report_detail_v2.xml');
const present = existsSync(sample) && existsSync(larger);
if (!present) console.warn(`skipping the GVM connector tests: ${sample} or ${larger} is absent`);

async function keysOf(xml: string): Promise<Set<string>> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ctem-gvm-keys-'));
  writeFileSync(path.join(dir, 'r.xml'), xml);
  const keys = new Set<string>();
  for await (const f of parseReport(path.join(dir, 'r.xml'))) keys.add(f.weaknessKey);
  return keys;
}

describe.skipIf(!present)('the GVM connector over GMP', () => {
  it('creates a target and a task, starts it, polls it, streams the report and ingests it', async () => {
    const db = await testDatabase();
    const gvmd = await startLocalGvmd({ username: 'ctem', password: 's3cret<&>' });
    afterAll(() => gvmd.close());
    process.env.TEST_GVM_PASSWORD = 's3cret<&>';
    const config = {
      version: 1,
      integrations: {
        gvm: { socket: gvmd.socket, username: 'ctem', password: 'env:TEST_GVM_PASSWORD', pollInterval: '1s' },
      },
      scopes: [{ name: 'servers', match: { cidrs: ['10.0.0.0/8'] }, scan: { connector: 'gvm' } }],
    };
    const ctx = connectorContext(db.pool, config);
    const gvm = createGvmConnector(ctx);

    // The cycle finds the larger report's host; the re-scan is of the other one.
    gvmd.report = readFileSync(larger, 'utf8');
    const first = await gvm.scanScope(ctx.config.scopes[0]!);
    expect(first.exposures.new).toBe((await keysOf(gvmd.report)).size);
    gvmd.commands.length = 0;
    gvmd.targets.length = 0;
    gvmd.tasks.length = 0;
    const real = readFileSync(sample, 'utf8');
    gvmd.report = real;
    const cycle = await gvm.scanScope(ctx.config.scopes[0]!);
    expect(gvmd.commands).toEqual([
      'authenticate',
      'create_target',
      'create_task',
      'start_task',
      'get_tasks',
      'get_tasks',
      'get_reports',
    ]);
    expect(gvmd.targets[0]).toMatchObject({
      hosts: '10.0.0.0/8',
      portList: '33d0cd82-57c6-11e1-8ed1-406186ea4fc5',
    });
    expect(gvmd.tasks[0]).toMatchObject({
      config: 'daba56c8-73ec-11df-a475-002264764cea',
      scanner: '08b69003-5fc2-4037-a479-93b440211c73',
      target: gvmd.targets[0]!.id,
    });
    const expected = await keysOf(real);
    expect(cycle).toMatchObject({
      status: 'ingested',
      format: 'openvas',
      scanner: 'openvas',
      assets: { created: 1, covered: 1 },
    });
    expect(cycle.exposures.new).toBe(expected.size);
    const { rows: assets } = await db.pool.query<{ id: number; ips: string[]; scope: string }>(
      `select id, ips, scope from assets where ips = '{10.0.101.2}'`,
    );
    expect(assets).toEqual([{ id: assets[0]!.id, ips: ['10.0.101.2'], scope: 'servers' }]);
    // The host of the first cycle was not in this one: it is missed, not gone.
    expect(cycle.exposures.gone).toBe(0);

    // The re-scan's report lacks the result: the host was scanned (it is in the hosts list) and
    // what the result reported is gone.
    const firstResult = /<result id="[^"]+">[\s\S]*?<\/result>/.exec(real)![0];
    gvmd.report = real.replace(firstResult, '');
    const after = await keysOf(gvmd.report);
    const gone = [...expected].filter((k) => !after.has(k));
    expect(gone.length).toBeGreaterThan(0);
    const ticket = await gvm.rescan({
      requestId: 'verify-gvm-1',
      scope: 'servers',
      assetIds: [assets[0]!.id],
      weaknessKeys: gone,
      notBefore: new Date().toISOString(),
    });
    expect(ticket, ticket.detail).toMatchObject({ status: 'done' });
    expect(gvmd.targets[1]).toMatchObject({ name: 'ctem re-scan verify-gvm-1', hosts: '10.0.101.2' });
    expect((await scanDiff(db.pool, ticket.scanId!)).gone).toEqual(
      gone.map((k) => `${assets[0]!.id}:${k}`).sort(),
    );
  });

  it('says so when gvmd refuses the credentials', async () => {
    const db = await testDatabase();
    const gvmd = await startLocalGvmd({ username: 'ctem', password: 'right' });
    afterAll(() => gvmd.close());
    process.env.TEST_GVM_WRONG = 'wrong';
    const ctx = connectorContext(db.pool, {
      version: 1,
      integrations: { gvm: { socket: gvmd.socket, username: 'ctem', password: 'env:TEST_GVM_WRONG' } },
      scopes: [{ name: 'servers', match: { cidrs: ['10.99.0.0/16'] } }],
    });
    await expect(createGvmConnector(ctx).scanScope(ctx.config.scopes[0]!)).rejects.toThrow(
      /gvmd refused authenticate: 400 Authentication failed/,
    );
    expect(gvmd.commands).toEqual(['authenticate']);
  });
});
