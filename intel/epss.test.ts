import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../test/support/db.ts';
import type { Pool } from '../runtime/pool.ts';
import { weaknessIntel } from './intel.ts';
import { loadEpss } from './epss.ts';

const EPSS_FILE = path.resolve(
  import.meta.dirname,
  '../../shared/data/feeds/epss/epss_scores-2026-01-30.csv.gz',
);

let pool: Pool;
let dir: string;
beforeAll(async () => {
  ({ pool } = await testDatabase());
  dir = await mkdtemp(path.join(os.tmpdir(), 'ctem-epss-'));
});

const write = async (name: string, content: string | Buffer) => {
  const file = path.join(dir, name);
  await writeFile(file, content);
  return file;
};

describe('small EPSS files, gzip or not', () => {
  const day1 =
    '#model_version:v2025.03.14,score_date:2025-01-01T12:55:00Z\ncve,epss,percentile\nCVE-2021-44228,0.94358,0.99962\nCVE-2014-0160,0.94468,0.99978\nCVE-1999-0001,0.01151,0.78086\n';
  const day2 =
    '#model_version:v2025.03.14,score_date:2025-01-02T12:55:00Z\r\ncve,epss,percentile\r\nCVE-2021-44228,0.94358,0.99962\r\nCVE-2014-0160,0.9,0.99\r\nCVE-2024-3094,0.8,0.98\r\n';

  it('loads a plain CSV with its model version and score date', async () => {
    const r = await loadEpss(pool, await write('day1.csv', day1));
    expect(r).toMatchObject({
      feed: 'epss',
      sourceVersion: 'v2025.03.14',
      sourceDate: '2025-01-01T12:55:00.000Z',
      records: 3,
      added: 3,
    });
    expect((await weaknessIntel(pool, 'CVE-2021-44228')).epss).toEqual({
      probability: 0.94358,
      percentile: 0.99962,
      scoreDate: '2025-01-01',
      modelVersion: 'v2025.03.14',
    });
  });

  it('loads the next day gzipped (CRLF lines): changed, added and removed scores, history kept', async () => {
    const r = await loadEpss(pool, await write('day2.csv.gz', gzipSync(day2)));
    expect(r).toMatchObject({ records: 3, added: 1, changed: 1, unchanged: 1, removed: 1 });
    expect((await weaknessIntel(pool, 'CVE-2014-0160'))!.epss?.probability).toBe(0.9);
    expect(
      (await weaknessIntel(pool, 'CVE-2014-0160', new Date('2025-01-01T18:00:00Z'))).epss?.probability,
    ).toBe(0.94468);
    expect((await weaknessIntel(pool, 'CVE-1999-0001')).epss).toBeNull();
    expect(
      (await weaknessIntel(pool, 'CVE-1999-0001', new Date('2025-01-01T18:00:00Z'))).epss?.percentile,
    ).toBe(0.78086);
  });

  it('takes the score date from the file name when the comment line is absent', async () => {
    const r = await loadEpss(
      pool,
      await write('epss_scores-2025-01-03.csv', 'cve,epss,percentile\nCVE-2021-44228,0.9,0.99\n'),
    );
    expect(r).toMatchObject({
      sourceDate: '2025-01-03T00:00:00.000Z',
      sourceVersion: 'unknown',
      changed: 1,
      removed: 2,
    });
  });

  it('loads from a URL, gzip detected from the bytes (not the name)', async () => {
    const body = gzipSync(
      '#model_version:v2025.03.14,score_date:2025-01-04T00:00:00Z\ncve,epss,percentile\nCVE-2021-44228,0.95,0.999\n',
    );
    const server = createServer((req, res) => {
      if (req.url === '/epss_scores-current.csv')
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      expect(await loadEpss(pool, `${base}/epss_scores-current.csv`)).toMatchObject({
        records: 1,
        changed: 1,
        sourceDate: '2025-01-04T00:00:00.000Z',
      });
      await expect(loadEpss(pool, `${base}/missing.csv`)).rejects.toThrow(
        `${base}/missing.csv answered HTTP 404 Not Found`,
      );
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it.each([
    [
      'header.csv',
      '#model_version:v1,score_date:2025-02-01T00:00:00Z\ncve,score\n',
      /line 2: expected the header "cve,epss,percentile"/,
    ],
    [
      'row.csv',
      '#model_version:v1,score_date:2025-02-01T00:00:00Z\ncve,epss,percentile\nCVE-2021-1,0.1,0.2\nCVE-2021-44228,0.1\n',
      /row\.csv line 3: expected "CVE-YYYY-NNNN,probability,percentile", found "CVE-2021-1,0\.1,0\.2"/,
    ],
    [
      'range.csv',
      '#model_version:v1,score_date:2025-02-01T00:00:00Z\ncve,epss,percentile\nCVE-2021-44228,1.5,0.2\n',
      /range\.csv line 3: epss 1\.5 is not a probability between 0 and 1/,
    ],
    [
      'nodate.csv',
      'cve,epss,percentile\nCVE-2021-44228,0.1,0.2\n',
      /no "#model_version…,score_date:…" line and no date in its name/,
    ],
    [
      'older.csv',
      '#model_version:v1,score_date:2024-12-01T00:00:00Z\ncve,epss,percentile\nCVE-2021-44228,0.1,0.2\n',
      /older than the EPSS data already loaded/,
    ],
  ])('refuses %s with a clear error naming the line', async (name, text, message) => {
    const before = (await pool.query('select count(*)::int n from epss_scores')).rows[0] as { n: number };
    await expect(loadEpss(pool, await write(name, text))).rejects.toThrow(message);
    expect((await pool.query('select count(*)::int n from epss_scores')).rows[0]).toEqual(before);
  });
});

describe.skipIf(!existsSync(EPSS_FILE))('the full EPSS day from ../shared/data/feeds/epss', () => {
  it('loads 313,089 scores, and a second load changes nothing', async () => {
    const { pool: fresh } = await testDatabase();
    const first = await loadEpss(fresh, EPSS_FILE);
    expect(first).toMatchObject({
      records: 313_089,
      added: 313_089,
      sourceVersion: 'v2025.03.14',
      sourceDate: '2026-01-30T12:55:00.000Z',
    });
    const second = await loadEpss(fresh, EPSS_FILE);
    expect(second).toMatchObject({ records: 313_089, added: 0, changed: 0, removed: 0, unchanged: 313_089 });
    const rows = await fresh.query<{ n: number }>(`select count(*)::int n from epss_scores`);
    expect(rows.rows[0]!.n).toBe(313_089);
  });
});
