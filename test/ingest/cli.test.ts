// `ctem ingest` as a user runs it: the real bin/ctem.js in a child process, against this file's
// database (DATABASE_URL), with a ctem.yaml defining a scope — without Temporal (it says the
// workflows were not started) and with the run's real Temporal server (it starts them).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { campaignOf } from '../lifecycle/support.ts';
import { testDatabase } from '../support/db.ts';
import { testTemporal } from '../support/temporal.ts';
import { FakeSlackApi } from '../fakes/slack-api.ts';

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
        env: ctemEnv(dir, db.url),
        encoding: 'utf8',
      });

    const r1 = ctem('ingest', first, '--json');
    // No Temporal anywhere: the scan is in, and the user is told its workflows are not.
    expect(r1.stderr).toMatch(
      /workflows were NOT started for the changes of 1 scan\(s\): no Temporal server is configured.*run `ctem ingest .*week1\.xml` again/,
    );
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
          lifecycle: { status: 'not-started' },
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
    expect(r3.stdout).toMatch(/lifecycle: workflows not started \(no Temporal server is configured/);
    expect(r3.stderr).toMatch(/^ctem: .*broken\.xml.*; nothing was ingested from .*broken\.xml\n/);

    const r4 = ctem('ingest', first, '--scope', 'nope');
    expect(r4.status).toBe(2);
    expect(r4.stderr).toMatch(/unknown scope "nope" \(ctem.yaml scopes: apps\)/);
  }, 120_000);
});

describe('ctem ingest with Temporal', () => {
  it('hands each scan diff to the campaign workflows, and hands over a scan ingested earlier without Temporal', async () => {
    const db = await testDatabase();
    const t = await testTemporal();
    const taskQueue = t.taskQueue('ingest-cli');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ctem-ingest-cli-temporal-'));
    writeFileSync(
      path.join(dir, 'ctem.yaml'),
      'version: 1\nscopes:\n  - name: apps\n    match:\n      cidrs: [10.20.0.0/16]\n',
    );
    const first = path.join(dir, 'week1.xml');
    const second = path.join(dir, 'week2.xml');
    writeFileSync(first, nmapReport(1_700_000_000, [22, 80, 443]));
    writeFileSync(second, nmapReport(1_700_604_800, [22, 443, 8443]));
    const ctem = (temporal: boolean, ...args: string[]) =>
      spawnSync(process.execPath, [bin, ...args], {
        cwd: dir,
        env: ctemEnv(
          dir,
          db.url,
          temporal ? { CTEM_TEMPORAL_ADDRESS: t.address, CTEM_TASK_QUEUE: taskQueue } : {},
        ),
        encoding: 'utf8',
      });
    /** The exposure was filed into a campaign whose workflow runs (no worker runs here: not queried). */
    const exists = async (exposureId: string): Promise<boolean> => {
      const place = await campaignOf(db.pool, exposureId).catch(() => undefined);
      if (!place) return false;
      return await t.client.workflow
        .getHandle(place.workflowId)
        .describe()
        .then((d) => d.taskQueue === taskQueue && d.status.name === 'RUNNING')
        .catch(() => false);
    };

    // Week 1 goes in while no Temporal is known: nothing is started.
    const r1 = ctem(false, 'ingest', first, '--json');
    expect(r1.status).toBe(0);
    const s1 = JSON.parse(r1.stdout).files[0];
    expect(s1.lifecycle.status).toBe('not-started');
    const { rows: week1 } = await db.pool.query<{ id: string }>(
      'select id from exposures where first_scan_id = $1 order by id',
      [s1.scanId],
    );
    expect(week1).toHaveLength(3);
    for (const { id } of week1) expect(await exists(id)).toBe(false);

    // Ingesting it again with Temporal reachable hands the recorded diff over.
    const r2 = ctem(true, 'ingest', first, '--json');
    expect(r2.stderr).not.toMatch(/NOT started/);
    expect(r2.status).toBe(0);
    const s2 = JSON.parse(r2.stdout).files[0];
    expect(s2).toMatchObject({ status: 'already-ingested', scanId: s1.scanId });
    expect(s2.lifecycle).toMatchObject({ status: 'dispatched', changes: 3, started: 3, signalled: 0 });
    for (const { id } of week1) expect(await exists(id)).toBe(true);

    // Week 2: port 80 is gone (its campaign is told), 8443 is new (its campaign starts). Human output.
    const r3 = ctem(true, 'ingest', second);
    expect(r3.status).toBe(0);
    expect(r3.stdout).toMatch(/exposures: 1 new, 2 still present, 1 gone, 0 reappeared/);
    expect(r3.stdout).toMatch(
      /lifecycle: 2 change\(s\) handed over — 1 exposure\(s\) filed into campaigns \(1 campaign workflow\(s\) started, 1 told\)/,
    );
    const { rows: added } = await db.pool.query<{ id: string }>(
      `select e.id from exposures e join scans s on s.id = e.first_scan_id where s.source = $1`,
      [second],
    );
    expect(added).toHaveLength(1);
    expect(await exists(added[0]!.id)).toBe(true);
    const { rows: dispatched } = await db.pool.query<{ change: string; n: number }>(
      'select change, count(*)::int as n from lifecycle_dispatches group by change order by change',
    );
    expect(dispatched).toEqual([
      { change: 'gone', n: 1 },
      { change: 'new', n: 4 },
    ]);

    // A third run changes nothing and starts nothing twice.
    const r4 = ctem(true, 'ingest', first, second, '--json');
    const s4 = JSON.parse(r4.stdout).files;
    expect(s4.map((f: { lifecycle: { started: number } }) => f.lifecycle.started)).toEqual([0, 0]);

    for (const id of [...week1.map((r) => r.id), added[0]!.id])
      await t.client.workflow
        .getHandle((await campaignOf(db.pool, id)).workflowId)
        .terminate('test over')
        .catch(() => undefined);
  }, 180_000);
});

/** This process's environment without any Temporal address a developer may have set. */
describe('ctem ingest with chat configured', () => {
  it('exits once done, after starting workflows (the chat runtime keeps nothing alive)', async () => {
    const db = await testDatabase();
    const t = await testTemporal();
    const slack = await new FakeSlackApi({ token: 'xoxb-ingest-exit' }).start();
    try {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'ctem-ingest-cli-chat-'));
      writeFileSync(
        path.join(dir, 'ctem.yaml'),
        [
          'version: 1',
          'people:',
          '  - { id: olivia, name: Olivia, slack: U0OLIVIA }',
          'integrations:',
          '  slack:',
          '    botToken: env:CTEM_T_SLACK_BOT',
          '    signingSecret: env:CTEM_T_SLACK_SIGNING',
          `    apiUrl: ${slack.url}`,
          'scopes:',
          '  - name: apps',
          '    match: { cidrs: [10.20.0.0/16] }',
          '    roles: { owner: [olivia] }',
          '    internetFacing: true',
          '    criticality: critical',
        ].join('\n'),
      );
      const report = path.join(dir, 'week1.xml');
      writeFileSync(report, nmapReport(1_700_000_000, [22, 80]));
      const started = Date.now();
      const r = spawnSync(process.execPath, [bin, 'ingest', report, '--json'], {
        cwd: dir,
        env: ctemEnv(dir, db.url, {
          CTEM_TEMPORAL_ADDRESS: t.address,
          CTEM_TASK_QUEUE: t.taskQueue('ingest-exit'),
          CTEM_T_SLACK_BOT: 'xoxb-ingest-exit',
          CTEM_T_SLACK_SIGNING: 'signing-secret',
        }),
        encoding: 'utf8',
        timeout: 60_000,
      });
      // Killed by the timeout, it would have signal SIGTERM and no status.
      expect({ signal: r.signal, status: r.status, stderr: r.stderr }).toEqual({
        signal: null,
        status: 0,
        stderr: '',
      });
      expect(Date.now() - started).toBeLessThan(60_000);
      expect(JSON.parse(r.stdout).files[0].lifecycle).toMatchObject({ status: 'dispatched', started: 2 });
    } finally {
      await slack.stop();
    }
  }, 120_000);
});

/** The environment of a `ctem` child: this file's database, no ctem.yaml but the folder's, its own home. */
function ctemEnv(dir: string, databaseUrl: string, more: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...withoutTemporal(),
    DATABASE_URL: databaseUrl,
    CTEM_CONFIG: '',
    CTEM_HOME: path.join(dir, '.ctem'),
    ...more,
  };
}

function withoutTemporal(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.CTEM_TEMPORAL_ADDRESS;
  delete env.CTEM_TASK_QUEUE;
  return env;
}
