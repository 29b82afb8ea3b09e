// `ctem up` as a user runs it: a real process with its own embedded PostgreSQL and Temporal dev
// server (this file tests that start-up path itself, so it does not use the shared run servers).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, isPortFree } from '../../runtime/ports.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/ctem.js');
const home = mkdtempSync(path.join(os.tmpdir(), 'ctem-up-'));
chmodSync(home, 0o755);
const children: ChildProcess[] = [];
afterAll(async () => {
  // A failed assertion must not leave a stack running for the next test.
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGINT');
  await new Promise((r) => setTimeout(r, 3000));
  rmSync(home, { recursive: true, force: true });
});

async function stackEnv() {
  return {
    ...process.env,
    CTEM_HOME: home,
    CTEM_CONFIG: '',
    CTEM_PG_PORT: String(await freePort()),
    CTEM_TEMPORAL_PORT: String(await freePort()),
    CTEM_TEMPORAL_UI: '0',
    CTEM_HTTP_PORT: String(await freePort()),
    CTEM_METRICS_PORT: String(await freePort()),
  };
}

/** A free frontend port whose neighbours (the Temporal server's other services) are free too, below 33061. */
async function lowPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const all = [0, 1, 2, 6, 10, -300, -299, -298, -294].map((d) => port + d);
    if ((await Promise.all(all.map((p) => isPortFree(p)))).every(Boolean)) return port;
  }
}

function startUp(
  env: NodeJS.ProcessEnv,
  args: string[] = [],
): {
  child: ChildProcess;
  ready: Promise<string>;
  exited: Promise<number | null>;
  stderr: () => string;
} {
  const child = spawn(process.execPath, [bin, 'up', ...args], {
    env,
    cwd: home,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let err = '';
  const ready = new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('press Ctrl-C to stop')) resolve(err);
    });
    child.once('exit', () => reject(new Error(`ctem up exited early:\n${err}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, ready, exited, stderr: () => err };
}

function status(env: NodeJS.ProcessEnv): {
  code: number | null;
  json: { healthy: boolean; parts: { part: string; ok: boolean }[] };
} {
  const r = spawnSync(process.execPath, [bin, 'status', '--json'], { env, cwd: home, encoding: 'utf8' });
  return {
    code: r.status,
    json: JSON.parse(r.stdout) as { healthy: boolean; parts: { part: string; ok: boolean }[] },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('ctem up', () => {
  it('reaches healthy, stops cleanly on SIGTERM leaving no process, and keeps its data across restarts', async () => {
    const env = await stackEnv();
    const first = startUp(env);
    await first.ready;
    const s1 = status(env);
    expect(s1.json.parts.map((p) => [p.part, p.ok])).toEqual([
      ['postgresql', true],
      ['temporal', true],
      ['worker', true],
      ['http', true],
    ]);
    expect(s1.code).toBe(0);

    // Metrics are on their own loopback listener, not on the address the bots and dashboard answer on.
    expect(first.stderr()).toContain(`metrics    http://127.0.0.1:${env.CTEM_METRICS_PORT}/metrics`);
    expect((await fetch(`http://127.0.0.1:${env.CTEM_HTTP_PORT}/metrics`)).status).toBe(404);
    const metrics = await (await fetch(`http://127.0.0.1:${env.CTEM_METRICS_PORT}/metrics`)).text();
    expect(metrics).toMatch(/^# TYPE ctem_exposures gauge$/m);
    expect(metrics).toMatch(/^ctem_process_resident_memory_bytes \d+/m);
    const ready = await fetch(`http://127.0.0.1:${env.CTEM_HTTP_PORT}/readyz`);
    expect(await ready.json()).toEqual({
      database: true,
      worker: 'RUNNING',
      instance: `${first.child.pid}@${os.hostname()}`,
    });

    const credDir = path.join(home, 'postgres');
    const creds = JSON.parse(readFileSync(path.join(credDir, 'credentials.json'), 'utf8')) as {
      user: string;
      password: string;
    };
    const dbUrl = `postgres://${creds.user}:${encodeURIComponent(creds.password)}@127.0.0.1:${env.CTEM_PG_PORT}/ctem`;
    const beats = async () => {
      const c = new pg.Client({ connectionString: dbUrl });
      await c.connect();
      const { rows } = await c.query<{ n: string }>('select count(*) as n from worker_heartbeats');
      await c.end();
      return Number(rows[0]!.n);
    };
    expect(await beats()).toBe(1);
    const pgPid = Number(readFileSync(path.join(credDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    expect(alive(pgPid)).toBe(true);

    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.stderr()).toContain('stopped');
    expect(alive(pgPid)).toBe(false);
    expect(existsSync(path.join(credDir, 'data', 'postmaster.pid'))).toBe(false);
    // The Temporal dev server was our child: nothing may still listen on its port.
    expect(await portOpen(Number(env.CTEM_TEMPORAL_PORT))).toBe(false);
    expect(status(env).code).toBe(1);

    const second = startUp(env);
    await second.ready;
    expect(status(env).json.healthy).toBe(true);
    // The first run's heartbeat survived (PostgreSQL data dir), and the second probe added one.
    expect(await beats()).toBe(2);
    second.child.kill('SIGINT');
    expect(await second.exited).toBe(0);
  });

  it('--temporal server: the real Temporal server on the embedded PostgreSQL, stopped with the stack, its schemas kept', async () => {
    const serverHome = mkdtempSync(path.join(os.tmpdir(), 'ctem-up-server-'));
    chmodSync(serverHome, 0o755);
    const env = {
      ...(await stackEnv()),
      CTEM_HOME: serverHome,
      CTEM_TEMPORAL_PORT: String(await lowPort()),
      CTEM_METRICS_TOKEN: 'scrape-token-1',
    };
    try {
      const first = startUp(env, ['--temporal', 'server']);
      const said = await first.ready;
      expect(said).toContain('starting the Temporal server 1.29.1 on PostgreSQL (4 history shards)');
      expect(said).toContain(
        `Temporal   127.0.0.1:${env.CTEM_TEMPORAL_PORT} (Temporal server on PostgreSQL)`,
      );
      expect(status(env).json.healthy).toBe(true);
      const info = JSON.parse(readFileSync(path.join(serverHome, 'stack.json'), 'utf8')) as {
        temporal: { engine: string; embedded: boolean };
      };
      expect(info.temporal).toMatchObject({ engine: 'server', embedded: true });
      // metrics.token: a scrape without the bearer token is refused.
      const scrape = `http://127.0.0.1:${env.CTEM_METRICS_PORT}/metrics`;
      expect((await fetch(scrape)).status).toBe(401);
      expect((await fetch(scrape, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      const scraped = await fetch(scrape, { headers: { authorization: 'Bearer scrape-token-1' } });
      expect(scraped.status).toBe(200);
      expect(await scraped.text()).toMatch(/^# TYPE ctem_exposures gauge$/m);
      // Its configuration names the password only as a template reference.
      const rendered = readFileSync(path.join(serverHome, 'temporal-server', 'config', 'ctem.yaml'), 'utf8');
      const creds = JSON.parse(
        readFileSync(path.join(serverHome, 'postgres', 'credentials.json'), 'utf8'),
      ) as {
        password: string;
      };
      expect(rendered).not.toContain(creds.password);
      expect(rendered).toContain('numHistoryShards: 4');

      first.child.kill('SIGTERM');
      expect(await first.exited).toBe(0);
      expect(await portOpen(Number(env.CTEM_TEMPORAL_PORT))).toBe(false);

      // Again on the same state: the schemas are there already, the namespace too.
      const second = startUp(env, ['--temporal', 'server']);
      await second.ready;
      expect(status(env).json.healthy).toBe(true);
      second.child.kill('SIGINT');
      expect(await second.exited).toBe(0);
      expect(await portOpen(Number(env.CTEM_TEMPORAL_PORT))).toBe(false);
    } finally {
      rmSync(serverHome, { recursive: true, force: true });
    }
  });

  it('--temporal takes dev or server, and not with a temporal.address', async () => {
    const env = await stackEnv();
    const bogus = spawnSync(process.execPath, [bin, 'up', '--temporal', 'cluster'], {
      env,
      cwd: home,
      encoding: 'utf8',
    });
    expect(bogus.status).toBe(2);
    expect(bogus.stderr).toBe('ctem: --temporal takes dev or server, not "cluster"\n');
    const both = spawnSync(process.execPath, [bin, 'up', '--temporal', 'server'], {
      env: { ...env, CTEM_TEMPORAL_ADDRESS: 'temporal.internal:7233' },
      cwd: home,
      encoding: 'utf8',
    });
    expect(both.status).toBe(2);
    expect(both.stderr).toContain(
      '--temporal server starts a Temporal of its own, and temporal.address (temporal.internal:7233)',
    );
    expect(await portOpen(Number(env.CTEM_PG_PORT))).toBe(false);
  });

  it('refuses a port in use with one sentence and starts nothing', async () => {
    const env = await stackEnv();
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(Number(env.CTEM_HTTP_PORT), '127.0.0.1', () => r()));
    try {
      const run = startUp(env);
      run.ready.catch(() => undefined);
      const code = await run.exited;
      expect(code).toBe(1);
      expect(run.stderr()).toContain(
        `the HTTP server cannot listen on 127.0.0.1:${env.CTEM_HTTP_PORT} because the port is in use`,
      );
      expect(await portOpen(Number(env.CTEM_TEMPORAL_PORT))).toBe(false);
      expect(await portOpen(Number(env.CTEM_PG_PORT))).toBe(false);
    } finally {
      blocker.close();
    }
  });

  it('refuses a fixed clock (CTEM_NOW is for one-shot commands) and starts nothing', async () => {
    const env = { ...(await stackEnv()), CTEM_NOW: '2026-11-23T12:00:00Z' };
    const r = spawnSync(process.execPath, [bin, 'up'], { env, cwd: home, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      'ctem: ctem up runs on the real clock and CTEM_NOW is set (2026-11-23T12:00:00Z); unset it to start the stack\n',
    );
    expect(await portOpen(Number(env.CTEM_PG_PORT))).toBe(false);
  });
});

async function portOpen(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
