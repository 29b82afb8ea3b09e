// The nmap connector against services this test starts on 127.0.0.1: only 127.0.0.1 is scanned, and
// only the ports opened here (plus one free port known to be closed).
import net from 'node:net';
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../support/db.ts';
import { testTemporal } from '../support/temporal.ts';
import { configSchema } from '../../domain/config.ts';
import { freePort } from '../../runtime/ports.ts';
import { createNmapConnector, nmapArguments } from '../../discovery/nmap.ts';
import { nmapSchema } from '../../discovery/config.ts';
import { scanDiff } from '../../ingest/diff.ts';
import { connectorContext } from './connectorContext.ts';

const nmapPresent = existsSync('/usr/bin/nmap');
if (!nmapPresent)
  console.warn('skipping the nmap connector tests: /usr/bin/nmap is missing (apt-get install nmap)');

async function listen(): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((socket) => {
    // nmap's connect scan resets the connection; that is expected.
    socket.on('error', () => undefined);
    socket.end('hello\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('nmap arguments', () => {
  it('passes targets after -- and refuses anything that is not an address, a block or a name', () => {
    const settings = nmapSchema.parse({ ports: '22,443', reverseDns: false });
    expect(nmapArguments(settings, '/tmp/x.xml', { targets: ['10.0.0.0/24', 'web-01.example.com'] })).toEqual(
      [
        '-oX',
        '/tmp/x.xml',
        '-sT',
        '-T3',
        '--host-timeout',
        '900s',
        '-p',
        '22,443',
        '-n',
        '--',
        '10.0.0.0/24',
        'web-01.example.com',
      ],
    );
    expect(() => nmapArguments(settings, '/tmp/x.xml', { targets: ['--script=evil'] })).toThrow(
      /is not an IP address/,
    );
    expect(() => nmapArguments(settings, '/tmp/x.xml', { targets: ['10.0.0.1;reboot'] })).toThrow(
      /is not an IP address/,
    );
    expect(() => nmapSchema.parse({ ports: '22;rm' })).toThrow(/port list/);
  });
});

describe.skipIf(!nmapPresent)('the nmap connector on 127.0.0.1', () => {
  it('scans a scope, then re-scans its asset and marks the closed port gone', async () => {
    const db = await testDatabase();
    const a = await listen();
    const b = await listen();
    const closed = await freePort();
    afterAll(async () => {
      await a.close().catch(() => undefined);
      await b.close().catch(() => undefined);
    });
    const ports = [a.port, b.port, closed].join(',');
    const ctx = connectorContext(db.pool, {
      version: 1,
      integrations: { nmap: { timing: 4, hostTimeout: '60s', reverseDns: false } },
      scopes: [{ name: 'lab', match: { cidrs: ['127.0.0.1/32'] }, scan: { connector: 'nmap', ports } }],
    });
    const nmap = createNmapConnector(ctx);

    const cycle = await nmap.scanScope(ctx.config.scopes[0]!);
    expect(cycle).toMatchObject({ status: 'ingested', scanner: 'nmap', assets: { covered: 1, created: 1 } });
    const keys = async () =>
      (
        await db.pool.query<{ vuln_key: string; present: boolean }>(
          'select vuln_key, present from exposures order by vuln_key',
        )
      ).rows;
    expect(await keys()).toEqual(
      [a.port, b.port].sort().map((p) => ({ vuln_key: `nmap:open-port/tcp/${p}`, present: true })),
    );
    const scan = await db.pool.query('select cycle_scope, scope, covered_keys from scans where id = $1', [
      cycle.scanId,
    ]);
    expect(scan.rows[0]).toEqual({
      cycle_scope: 'lab',
      scope: 'lab',
      covered_keys: [a.port, b.port, closed].map((p) => `nmap:open-port/tcp/${p}`),
    });
    const { rows: assets } = await db.pool.query<{ id: number; ips: string[]; scope: string }>(
      'select id, ips, scope from assets',
    );
    expect(assets).toEqual([{ id: assets[0]!.id, ips: ['127.0.0.1'], scope: 'lab' }]);

    await b.close();
    const ticket = await nmap.rescan({
      requestId: 'verify-1',
      scope: 'lab',
      assetIds: [assets[0]!.id],
      weaknessKeys: [`nmap:open-port/tcp/${b.port}`],
      notBefore: new Date().toISOString(),
    });
    expect(ticket).toMatchObject({ requestId: 'verify-1', status: 'done' });
    expect(await scanDiff(db.pool, ticket.scanId!)).toEqual({
      new: [],
      gone: [`${assets[0]!.id}:nmap:open-port/tcp/${b.port}`],
      reappeared: [],
      retired: [],
    });
    // A retried request finds its scan instead of scanning again.
    const again = await nmap.rescan({
      requestId: 'verify-1',
      scope: 'lab',
      assetIds: [assets[0]!.id],
      weaknessKeys: [],
      notBefore: new Date().toISOString(),
    });
    expect(again).toMatchObject({ status: 'done', scanId: ticket.scanId });
    const scans = await db.pool.query<{ n: number }>('select count(*)::int as n from scans');
    expect(scans.rows[0]!.n).toBe(2);
  });
});

describe.skipIf(!nmapPresent)('a scope scan cycle through Temporal', () => {
  it('runs the scheduled scan cycle workflow: nmap, ingest as a cycle scan, workflows started for what is new', async () => {
    const db = await testDatabase();
    const temporal = await testTemporal();
    const service = await listen();
    afterAll(() => service.close());
    const config = configSchema.parse({
      version: 1,
      integrations: { nmap: { timing: 4, hostTimeout: '60s', reverseDns: false } },
      scopes: [
        {
          name: 'lab',
          match: { cidrs: ['127.0.0.1/32'] },
          scan: { connector: 'nmap', ports: String(service.port) },
        },
      ],
    });
    const taskQueue = temporal.taskQueue('scan-cycle');
    const worker = await temporal.worker({ taskQueue, pool: db.pool, config });
    const result = (await worker.runUntil(
      temporal.client.workflow.execute('scheduledScanCycle', {
        taskQueue,
        workflowId: `scan-cycle-${taskQueue}`,
        args: ['lab'],
      }),
    )) as { ran: boolean; detail: string; scanIds: number[]; dispatched: { scans: number; started: number } };
    expect(result.ran).toBe(true);
    expect(result.detail).toMatch(
      /^nmap scan cycle of lab: scan \d+, 1 findings on 1 assets; exposures 1 new/,
    );
    expect(result.dispatched).toMatchObject({ scans: 1, started: 1 });
    const scan = await db.pool.query('select scanner, cycle_scope from scans where id = $1', [
      result.scanIds[0],
    ]);
    expect(scan.rows[0]).toEqual({ scanner: 'nmap', cycle_scope: 'lab' });
  });
});
