// `npm run bench:intel [-- --exposures N --assets N --ephemeral --url postgres://…]`
//
// Loads the shared feeds (../shared/data/feeds): the full EPSS day (313k rows), the CISA KEV catalog
// (the 2025-08-25 snapshot) and the 18,000 CVE JSON 5 records, then synthesizes N open exposures
// (default 1,000,000 over 20,000 assets in three scopes) and re-scores them all. Figures:
//   loads_s          — EPSS + KEV + CVE5 loads together                         (target ≤ 15 s)
//   rescore_s           — re-score every exposure: all 1M decisions found and handed on (target ≤ 20 s)
//   rescore_and_write_s — the same, also writing the 1M decisions to exposures      (no target)
//   rescore_steady_s    — nothing changed since (the daily no-op)                   (target ≤ 20 s)
//   rescore_kev_s       — after loading the newer KEV catalog: find the changes     (target ≤ 20 s)
// Each figure carries the CPU seconds of this process and of PostgreSQL, and the load average: on a
// shared machine wall time depends on the neighbours.
// PostgreSQL is a real embedded server started by the bench unless --url is given.
// One JSON line per figure on stdout, with its target; progress on stderr.
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createPool } from '../runtime/pool.ts';
import { migrate } from '../runtime/migrate.ts';
import { loadCve5 } from '../intel/cve5.ts';
import { loadEpss } from '../intel/epss.ts';
import { loadKev } from '../intel/kev.ts';
import { PolicyCatalog } from '../intel/policyFiles.ts';
import { rescoreExposures, type RescoreResult } from '../intel/rescore.ts';
import type { FeedRunResult } from '../intel/runs.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FEEDS = path.resolve(root, '../shared/data/feeds');
const EPSS = path.join(FEEDS, 'epss/epss_scores-2026-01-30.csv.gz');
const KEV_OLD = path.join(FEEDS, 'kev/known_exploited_vulnerabilities-2025-08-25.cisagov-kev-data.json');
const KEV_NEW = path.join(FEEDS, 'kev/known_exploited_vulnerabilities.json');
const CVE5 = path.join(FEEDS, 'nvd/cve5-vulnrichment');

const { values } = parseArgs({
  options: {
    exposures: { type: 'string', default: '1000000' },
    assets: { type: 'string', default: '20000' },
    ephemeral: { type: 'boolean', default: false },
    url: { type: 'string' },
  },
  allowPositionals: false,
});

const round = (n: number, d = 2): number => Math.round(n * 10 ** d) / 10 ** d;
const log = (message: string): void => void process.stderr.write(`${message}\n`);

function figure(
  name: string,
  value: number,
  unit: string,
  target: number | null,
  detail: Record<string, unknown> = {},
): void {
  const ok = target === null ? null : value <= target;
  process.stdout.write(
    `${JSON.stringify({ bench: 'intel', figure: name, value: round(value), unit, target: target === null ? null : `<= ${target}`, ok, ...detail })}\n`,
  );
}

// CPU seconds of this process and of the PostgreSQL server (postmaster, its live backends and the
// ones that exited), from /proc: on a shared machine the wall time depends on the neighbours, the
// CPU time does not.
let postmasterPid: number | undefined;
const TICKS = 100;
function procCpu(pid: number, withChildren: boolean): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // After "pid (comm) ": state=0 ppid=1 … utime=11 stime=12 cutime=13 cstime=14
    return (Number(f[11]) + Number(f[12]) + (withChildren ? Number(f[13]) + Number(f[14]) : 0)) / TICKS;
  } catch {
    return 0;
  }
}
function serverCpu(): number {
  if (!postmasterPid) return 0;
  let total = procCpu(postmasterPid, true);
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      if (ppid === postmasterPid) total += procCpu(Number(d), false);
    } catch {
      // The process ended meanwhile.
    }
  }
  return total;
}
const nodeCpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function timed<T>(
  fn: () => Promise<T>,
): Promise<[T, number, { nodeCpuS: number; postgresCpuS: number }]> {
  const start = performance.now();
  const [n0, p0] = [nodeCpu(), serverCpu()];
  const result = await fn();
  return [
    result,
    (performance.now() - start) / 1000,
    { nodeCpuS: round(nodeCpu() - n0), postgresCpuS: round(serverCpu() - p0) },
  ];
}

for (const f of [EPSS, KEV_OLD, KEV_NEW, CVE5])
  if (!existsSync(f)) {
    log(`bench:intel needs the shared feeds: ${f} is missing (see ../shared/data/SOURCES.md)`);
    process.exit(2);
  }

const exposures = Number(values.exposures);
const assets = Number(values.assets);
if (
  !Number.isInteger(exposures) ||
  exposures < 1 ||
  !Number.isInteger(assets) ||
  assets < 1 ||
  exposures < assets
)
  throw new Error('--exposures and --assets must be positive integers, with at least one exposure per asset');

let stopServer: (() => Promise<void>) | undefined;
let workDir: string | undefined;
let url = values.url ?? process.env.DATABASE_URL;
if (!url) {
  workDir = mkdtempSync(path.join(os.tmpdir(), 'ctem-bench-intel-'));
  chmodSync(workDir, 0o755);
  const { startEmbeddedPostgres, ensureDatabase } = await import('../runtime/postgres.ts');
  const { freePort } = await import('../runtime/ports.ts');
  const server = await startEmbeddedPostgres({
    dataDir: path.join(workDir, 'pg'),
    port: await freePort(),
    ephemeral: values.ephemeral,
  });
  stopServer = server.stop;
  url = await ensureDatabase(server.url, `bench_intel_${process.pid}`);
  postmasterPid = Number(
    readFileSync(path.join(workDir, 'pg', 'data', 'postmaster.pid'), 'utf8').split('\n')[0],
  );
}
const pool = createPool(url, 4);
try {
  await migrate(pool);
  log('loading EPSS, KEV (2025-08-25) and the CVE5 tree…');
  const loads: FeedRunResult[] = [];
  const [, loadSeconds, loadCpu] = await timed(async () => {
    loads.push(await loadEpss(pool, EPSS));
    loads.push(await loadKev(pool, KEV_OLD));
    loads.push(await loadCve5(pool, CVE5));
  });
  figure('loads_s', loadSeconds, 's', 15, {
    ...Object.fromEntries(
      loads.map((r) => [r.feed, { records: r.records, seconds: round(r.durationMs / 1000) }]),
    ),
    ...loadCpu,
    loadAverage: round(os.loadavg()[0]!),
  });

  log(`synthesizing ${exposures.toLocaleString('en')} exposures over ${assets.toLocaleString('en')} assets…`);
  const perAsset = Math.ceil(exposures / assets);
  await pool.query(`insert into scopes (name, config) values
      ('dmz', '{"internetFacing": true, "cia": {"confidentiality": "H", "integrity": "H", "availability": "M"}}'),
      ('prod', '{"internetFacing": false, "cia": {"confidentiality": "M", "integrity": "H", "availability": "H"}}')
      on conflict (name) do nothing`);
  await pool.query(
    `insert into assets (identity_key, kind, hostname, scope, criticality)
     select 'host:bench-' || g, 'host', 'bench-' || g, (array['dmz', 'prod', null])[1 + g % 3], (array['low', 'medium', 'high', 'critical'])[1 + g % 4]
       from generate_series(1, $1) g`,
    [assets],
  );
  // Weaknesses drawn from every CVE EPSS scores (one in 25 from KEV), first seen over the last year.
  await pool.query(
    `create table bench_cves as select cve, (row_number() over (order by cve))::int as n from epss_scores where valid_to is null`,
  );
  await pool.query(
    `create table bench_kev as select cve, (row_number() over (order by cve))::int as n from kev_entries where valid_to is null`,
  );
  log(`feeds loaded in ${round(loadSeconds)} s`);
  const [, synthSeconds] = await timed(() =>
    pool.query(
      `insert into exposures (id, asset_id, vuln_key, scope, first_seen, last_seen)
       with a as (select id, scope, row_number() over (order by id) as i from assets where identity_key like 'host:bench-%'),
       candidates as (
         select distinct on (a.id, cve) a.id, a.i, a.scope, k, case when k % 25 = 0 then kv.cve else c.cve end as cve
           from a
           cross join generate_series(1, $1 + 3) k
           join bench_cves c on c.n = 1 + ((a.i * 7919 + k * 104729) % (select count(*) from bench_cves))
           join bench_kev kv on kv.n = 1 + ((a.i * 13 + k) % (select count(*) from bench_kev))
          order by a.id, cve, k
       ), ranked as (select *, row_number() over (partition by id order by k) as r from candidates)
       select 'bench-' || i || '-' || r, id, cve, scope,
              timestamptz '2026-01-30' - ((i * 31 + r * 17) % 365) * interval '1 day', timestamptz '2026-01-30'
         from ranked
        where r <= $1 and (i - 1) * $1 + r <= $2`,
      [perAsset, exposures],
    ),
  );
  const count = (await pool.query<{ n: number }>(`select count(*)::int n from exposures`)).rows[0]!.n;
  await pool.query('analyze');
  log(`${count.toLocaleString('en')} exposures in ${round(synthSeconds)} s; re-scoring…`);

  const catalog = new PolicyCatalog();
  const rescore = async (
    apply: boolean,
  ): Promise<[RescoreResult, number, number, Record<string, number>]> => {
    let handed = 0;
    const [r, s, cpu] = await timed(() =>
      rescoreExposures(pool, {
        policy: (name) => catalog.get(name),
        apply,
        onBatch: async (rows) => {
          handed += rows.length;
        },
      }),
    );
    return [r, s, handed, { ...cpu, loadAverage: round(os.loadavg()[0]!) }];
  };

  // 1. Find every exposure's decision (all 1,000,000 change: none has one yet) and hand them on.
  const [first, firstSeconds, handedFirst, firstCpu] = await rescore(false);
  figure('rescore_s', firstSeconds, 's', 20, {
    exposures: first.examined,
    changed: first.changed,
    handedOn: handedFirst,
    phasesMs: first.phasesMs,
    ...firstCpu,
  });
  // 2. The same, also writing the million decisions back to exposures (no target: normally the
  //    lifecycle records decisions as it acts on them, a few at a time).
  const [written, writtenSeconds, , writtenCpu] = await rescore(true);
  figure('rescore_and_write_s', writtenSeconds, 's', null, {
    exposures: written.examined,
    changed: written.changed,
    phasesMs: written.phasesMs,
    ...writtenCpu,
  });
  // 3. Nothing new: the daily no-op.
  const [steady, steadySeconds, , steadyCpu] = await rescore(true);
  figure('rescore_steady_s', steadySeconds, 's', 20, {
    exposures: steady.examined,
    changed: steady.changed,
    phasesMs: steady.phasesMs,
    ...steadyCpu,
  });

  log('loading the newer KEV catalog and re-scoring…');
  const kev = await loadKev(pool, KEV_NEW);
  const [afterKev, kevSeconds, handedKev, kevCpu] = await rescore(true);
  figure('rescore_kev_s', kevSeconds, 's', 20, {
    exposures: afterKev.examined,
    kevAdded: kev.added,
    changed: afterKev.changed,
    handedOn: handedKev,
    phasesMs: afterKev.phasesMs,
    ...kevCpu,
  });
  figure('peak_rss_mb', process.resourceUsage().maxRSS / 1024, 'MB', null);
} finally {
  await pool.end();
  await stopServer?.();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
}
