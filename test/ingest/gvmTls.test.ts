// The GVM connector over GMP on TLS, as gvmd listens on port 9390: against a local TLS server with a
// self-signed certificate made for this test, trusted through caFile and checked against serverName.
// The same scan as over the Unix socket, then the refusals: an untrusted certificate, a wrong name.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { createGvmConnector } from '../../discovery/gvm.ts';
import { parseReport } from '../../scanners/registry.ts';
import { connectorContext } from './connectorContext.ts';
import { startLocalGvmd, type LocalGvmd } from './gmpServer.ts';

const sample = path.resolve('../shared/data/scans/openvas/one_vuln.xml');
const present = existsSync(sample);
if (!present) console.warn(`skipping the GVM-over-TLS tests: ${sample} is absent`);

/** A self-signed certificate for gvm.test and 127.0.0.1, made with the openssl CLI. */
function selfSigned(dir: string): { key: string; cert: string; certFile: string } {
  const keyFile = path.join(dir, 'gvmd.key');
  const certFile = path.join(dir, 'gvmd.crt');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '2',
      '-subj',
      '/CN=gvm.test',
      '-addext',
      'subjectAltName=DNS:gvm.test,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), certFile };
}

describe.skipIf(!present)('the GVM connector over GMP on TLS', () => {
  let db: TestDatabase;
  let gvmd: LocalGvmd;
  let dir: string;
  let certFile: string;
  beforeAll(async () => {
    db = await testDatabase();
    dir = mkdtempSync(path.join(os.tmpdir(), 'ctem-gvm-tls-'));
    const pair = selfSigned(dir);
    certFile = pair.certFile;
    gvmd = await startLocalGvmd({ username: 'ctem', password: 'tls-pass', tls: pair });
    gvmd.report = readFileSync(sample, 'utf8');
    process.env.TEST_GVM_TLS_PASSWORD = 'tls-pass';
  });
  afterAll(async () => await gvmd?.close());

  const gvmConfig = (tls: Record<string, string>) => ({
    version: 1,
    integrations: {
      gvm: {
        host: '127.0.0.1',
        port: gvmd.port,
        username: 'ctem',
        password: 'env:TEST_GVM_TLS_PASSWORD',
        pollInterval: '1s',
        ...tls,
      },
    },
    scopes: [{ name: 'servers', match: { cidrs: ['10.0.0.0/8'] }, scan: { connector: 'gvm' } }],
  });

  it('scans and ingests over TLS with the certificate trusted through caFile', async () => {
    gvmd.commands.length = 0;
    // caFile relative to the ctem.yaml folder, as a user writes it.
    const ctx = connectorContext(db.pool, gvmConfig({ caFile: 'gvmd.crt', serverName: 'gvm.test' }), dir);
    const summary = await createGvmConnector(ctx).scanScope(ctx.config.scopes[0]!);
    expect(gvmd.tlsSessions).toBeGreaterThanOrEqual(1);
    expect(gvmd.commands).toEqual([
      'authenticate',
      'create_target',
      'create_task',
      'start_task',
      'get_tasks',
      'get_tasks',
      'get_reports',
    ]);
    const keys = new Set<string>();
    for await (const f of parseReport(sample)) keys.add(f.weaknessKey);
    expect(summary).toMatchObject({
      status: 'ingested',
      format: 'openvas',
      assets: { created: 1, covered: 1 },
      exposures: { new: keys.size },
    });
    const { rows } = await db.pool.query<{ ips: string[]; scope: string }>('select ips, scope from assets');
    expect(rows).toEqual([{ ips: ['10.0.101.2'], scope: 'servers' }]);
  });

  it('refuses a server whose certificate it does not trust, before sending the credentials', async () => {
    gvmd.commands.length = 0;
    const ctx = connectorContext(db.pool, gvmConfig({ serverName: 'gvm.test' }), dir);
    await expect(createGvmConnector(ctx).scanScope(ctx.config.scopes[0]!)).rejects.toThrow(
      new RegExp(`cannot reach gvmd at 127\\.0\\.0\\.1:${gvmd.port}: self[- ]signed certificate`),
    );
    expect(gvmd.commands).toEqual([]);
  });

  it('refuses a trusted certificate issued for another name', async () => {
    gvmd.commands.length = 0;
    const ctx = connectorContext(
      db.pool,
      gvmConfig({ caFile: certFile, serverName: 'gvmd.example.org' }),
      dir,
    );
    await expect(createGvmConnector(ctx).scanScope(ctx.config.scopes[0]!)).rejects.toThrow(
      /cannot reach gvmd at 127\.0\.0\.1:\d+: .*(Hostname\/IP does not match|gvmd\.example\.org)/,
    );
    expect(gvmd.commands).toEqual([]);
  });
});
