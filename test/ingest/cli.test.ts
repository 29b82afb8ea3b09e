// `ctem ingest` as a user runs it: the real bin/ctem.js in a child process, against this file's
// database (DATABASE_URL), with a ctem.yaml defining a scope.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { testDatabase } from '../support/db.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/ctem.js');

function nmapReport(start: number, ports: number[]): string {
  return `<?xml version="1.0"?>
<nmaprun scanner="nmap" args="nmap -oX - 10.20.0.5" start="${start}" version="7.93" xmloutputversion="1.05">
<host starttime="${start}" endtime="${start}"><status state="up" reason="syn-ack"/>
<address addr="10.20.0.5" addrtype="ipv4"/>
<hostnames><hostname name="app-01.example.com" type="user"/></hostnames>
<ports>${ports
    .map(
      (p) =>
        `<port protocol="tcp" portid="${p}"><state state="open" reason="syn-ack"/><service name="unknown" method="table" conf="3"/></port>`,
    )
    .join('')}</ports>
</host>
<runstats><finished time="${start}"/><hosts up="1" down="0" total="1"/></runstats>
</nmaprun>
`;
}

describe('ctem ingest', () => {
  it('prints a JSON summary, recognizes a file already ingested, and fails a broken file alone', async () => {
    const db = await testDatabase();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ctem-ingest-cli-'));
    writeFileSync(
      path.join(dir, 'ctem.yaml'),
      'version: 1\nscopes:\n  - name: apps\n    match:\n      cidrs: [10.20.0.0/16]\n',
    );
    const first = path.join(dir, 'week1.xml');
    const second = path.join(dir, 'week2.xml');
    const broken = path.join(dir, 'broken.xml');
    writeFileSync(first, nmapReport(1_700_000_000, [22, 80, 443]));
    writeFileSync(second, nmapReport(1_700_604_800, [22, 443]));
    writeFileSync(broken, nmapReport(1_700_000_000, [22]).slice(0, 400));
    const ctem = (...args: string[]) =>
      spawnSync(process.execPath, [bin, ...args], {
        cwd: dir,
        env: { ...process.env, DATABASE_URL: db.url, CTEM_CONFIG: '' },
        encoding: 'utf8',
      });

    const r1 = ctem('ingest', first, '--json');
    expect(r1.stderr).toBe('');
    expect(r1.status).toBe(0);
    const s1 = JSON.parse(r1.stdout);
    expect(s1).toMatchObject({
      ok: true,
      files: [
        {
          source: first,
          format: 'nmap',
          scanner: 'nmap',
          status: 'ingested',
          findings: 3,
          assets: { covered: 1, created: 1, matched: 0 },
          exposures: { new: 3, stillPresent: 0, gone: 0, reappeared: 0 },
        },
      ],
    });

    const r2 = ctem('ingest', first, second, broken, '--json');
    expect(r2.status).toBe(2);
    const s2 = JSON.parse(r2.stdout);
    expect(s2.ok).toBe(false);
    expect(s2.files).toHaveLength(3);
    expect(s2.files[0]).toMatchObject({ status: 'already-ingested', scanId: s1.files[0].scanId });
    expect(s2.files[1]).toMatchObject({
      status: 'ingested',
      exposures: { new: 0, stillPresent: 2, gone: 1 },
    });
    expect(s2.files[2]).toMatchObject({ source: broken, status: 'failed' });
    expect(s2.files[2].error).toMatch(/broken\.xml/);

    const { rows } = await db.pool.query(`select scope, identity_key from assets`);
    expect(rows).toEqual([{ scope: 'apps', identity_key: 'host:app-01.example.com' }]);
    const scans = await db.pool.query<{ n: number }>('select count(*)::int as n from scans');
    expect(scans.rows[0]!.n).toBe(2);

    // Without --json: one line per file, and the error as a sentence on stderr.
    const r3 = ctem('ingest', second, broken);
    expect(r3.status).toBe(2);
    expect(r3.stdout).toMatch(/week2\.xml: already ingested as scan \d+ \(same file\); nothing changed/);
    expect(r3.stderr).toMatch(/^ctem: .*broken\.xml.*; nothing was ingested from .*broken\.xml\n$/);

    const r4 = ctem('ingest', first, '--scope', 'nope');
    expect(r4.status).toBe(2);
    expect(r4.stderr).toMatch(/unknown scope "nope" \(ctem.yaml scopes: apps\)/);
  }, 120_000);
});
