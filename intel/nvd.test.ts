// The NVD CVE API 2.0 client against a local server speaking the published API: documents shaped by
// the 2.0 schema (https://csrc.nist.gov/schema/nvd/api/2.0/cve_api_json_2.0.schema), paging with
// resultsPerPage/startIndex/totalResults, lastModStartDate/lastModEndDate filtering that refuses
// ranges over 120 days, the apiKey header, and 403/503 answers as NVD gives them under load.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../test/support/db.ts';
import type { Pool } from '../runtime/pool.ts';
import { weaknessIntel } from './intel.ts';
import { lastModifiedWindows, loadNvd, nvdRow, RollingRateLimit } from './nvd.ts';

const DAY = 86_400_000;
// NVD timestamps carry no offset: "2030-01-01T10:15:09.143".
const nvdTime = (ms: number) => new Date(ms).toISOString().replace('Z', '');

interface Cve {
  id: string;
  lastModified: number;
  vector: string;
  score: number;
  kev?: string;
}

function cveItem(c: Cve) {
  return {
    cve: {
      id: c.id,
      sourceIdentifier: 'cve@mitre.org',
      published: nvdTime(c.lastModified - 30 * DAY),
      lastModified: nvdTime(c.lastModified),
      vulnStatus: 'Analyzed',
      cveTags: [],
      descriptions: [
        { lang: 'es', value: 'Una falla.' },
        { lang: 'en', value: `Flaw ${c.id}.` },
      ],
      metrics: {
        cvssMetricV31: [
          {
            source: 'secalert@example.com',
            type: 'Secondary',
            cvssData: {
              version: '3.1',
              vectorString: 'CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N',
              baseScore: 1.8,
              baseSeverity: 'LOW',
            },
            exploitabilityScore: 0.3,
            impactScore: 1.4,
          },
          {
            source: 'nvd@nist.gov',
            type: 'Primary',
            cvssData: {
              version: '3.1',
              vectorString: c.vector,
              baseScore: c.score,
              baseSeverity: 'CRITICAL',
            },
            exploitabilityScore: 3.9,
            impactScore: 5.9,
          },
        ],
      },
      weaknesses: [
        {
          source: 'nvd@nist.gov',
          type: 'Primary',
          description: [
            { lang: 'en', value: 'CWE-502' },
            { lang: 'en', value: 'NVD-CWE-Other' },
          ],
        },
      ],
      configurations: [],
      references: [{ url: 'https://example.com/advisory', source: 'cve@mitre.org' }],
      ...(c.kev
        ? {
            cisaExploitAdd: c.kev,
            cisaActionDue: c.kev,
            cisaRequiredAction: 'Apply updates.',
            cisaVulnerabilityName: `Example ${c.id}`,
          }
        : {}),
    },
  };
}

function cvePage(all: Cve[], startIndex: number, perPage: number) {
  return {
    resultsPerPage: Math.min(perPage, Math.max(0, all.length - startIndex)),
    startIndex,
    totalResults: all.length,
    format: 'NVD_CVE',
    version: '2.0',
    timestamp: nvdTime(Date.now()),
    vulnerabilities: all.slice(startIndex, startIndex + perPage).map(cveItem),
  };
}

interface Seen {
  at: number;
  params: URLSearchParams;
  apiKey: string | undefined;
  status: number;
}

class FakeNvd {
  data: Cve[] = [];
  seen: Seen[] = [];
  /** Status codes to answer the next requests with before serving normally. */
  failures: number[] = [];
  server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://localhost');
      const apiKey = req.headers.apikey as string | undefined;
      const answer = (status: number, body?: unknown, message?: string) => {
        this.seen.push({ at: Date.now(), params: u.searchParams, apiKey, status });
        if (message) res.setHeader('message', message);
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(body === undefined ? '' : JSON.stringify(body));
      };
      if (u.pathname !== '/rest/json/cves/2.0') return answer(404, undefined, 'Not found');
      if (apiKey !== undefined && apiKey !== 'test-key') return answer(404, undefined, 'Invalid apiKey');
      const failure = this.failures.shift();
      if (failure) return answer(failure);
      const start = u.searchParams.get('lastModStartDate');
      const end = u.searchParams.get('lastModEndDate');
      let rows = this.data;
      if (start || end) {
        if (!start || !end)
          return answer(404, undefined, 'Both lastModStartDate and lastModEndDate are required');
        const [s, e] = [Date.parse(start), Date.parse(end)];
        if (Number.isNaN(s) || Number.isNaN(e)) return answer(404, undefined, 'Invalid date');
        if (e - s > 120 * DAY)
          return answer(404, undefined, 'The lastMod date range must not exceed 120 days');
        rows = rows.filter((c) => c.lastModified >= s && c.lastModified <= e);
      }
      const perPage = Number(u.searchParams.get('resultsPerPage') ?? 2000);
      const startIndex = Number(u.searchParams.get('startIndex') ?? 0);
      answer(200, cvePage(rows, startIndex, perPage));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/rest/json/cves/2.0`;
  }
}

let pool: Pool;
const nvd = new FakeNvd();
let dir: string;
beforeAll(async () => {
  ({ pool } = await testDatabase());
  await nvd.start();
  dir = await mkdtemp(path.join(os.tmpdir(), 'ctem-nvd-'));
});
afterAll(() => new Promise<void>((resolve) => nvd.server.close(() => resolve())));

const now = Date.now();
const dataset = (): Cve[] =>
  Array.from({ length: 8 }, (_, i) => ({
    id: `CVE-2030-${String(1000 + i)}`,
    lastModified: now - (8 - i) * DAY,
    vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
    score: 9.8,
    ...(i === 0 ? { kev: '2030-01-15' } : {}),
  }));

describe('NVD API 2.0 documents → rows', () => {
  it('takes NVD’s Primary CVSS, English description, CWEs and the KEV date', () => {
    const row = nvdRow(
      cveItem({
        id: 'CVE-2030-0001',
        lastModified: Date.parse('2030-01-01T10:15:09.143Z'),
        vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
        score: 9.8,
        kev: '2030-01-15',
      }),
      'page',
    );
    expect(row).toMatchObject({
      cve: 'CVE-2030-0001',
      state: 'Analyzed',
      updatedAt: '2030-01-01T10:15:09.143Z',
      description: 'Flaw CVE-2030-0001.',
      cwes: ['CWE-502'],
      kevDateAdded: '2030-01-15',
    });
    expect(row.cvss[0]).toEqual({
      version: '3.1',
      vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
      baseScore: 9.8,
      source: 'nvd:Primary:nvd@nist.gov',
    });
  });

  it('splits a lastModified range into windows of at most 120 days', () => {
    const w = lastModifiedWindows(new Date('2030-01-01T00:00:00Z'), new Date('2030-10-01T00:00:00Z'));
    expect(w.map((x) => [x.start.toISOString().slice(0, 10), x.end.toISOString().slice(0, 10)])).toEqual([
      ['2030-01-01', '2030-05-01'],
      ['2030-05-01', '2030-08-29'],
      ['2030-08-29', '2030-10-01'],
    ]);
  });
});

describe('NVD’s rolling rate limit', () => {
  it('never lets more than N requests into any window', async () => {
    const limit = new RollingRateLimit(2, 200);
    const at: number[] = [];
    for (let i = 0; i < 6; i++) {
      await limit.acquire();
      at.push(Date.now());
    }
    for (let i = 2; i < at.length; i++) expect(at[i]! - at[i - 2]!).toBeGreaterThanOrEqual(200);
    expect(at[1]! - at[0]!).toBeLessThan(50);
  });
});

describe('the paged NVD API on 127.0.0.1', () => {
  it('pages through everything with the API key, retrying 503 and 403, within the rate limit', async () => {
    nvd.data = dataset();
    nvd.seen = [];
    nvd.failures = [503, 403];
    const r = await loadNvd(pool, nvd.url, {
      apiKey: 'test-key',
      resultsPerPage: 3,
      rateLimit: { requests: 2, windowMs: 400 },
      retryDelayMs: 10,
    });
    expect(r).toMatchObject({ feed: 'nvd', records: 8, added: 8 });
    expect(nvd.seen.map((s) => s.status)).toEqual([503, 403, 200, 200, 200]);
    expect(nvd.seen.every((s) => s.apiKey === 'test-key')).toBe(true);
    expect(nvd.seen.filter((s) => s.status === 200).map((s) => s.params.get('startIndex'))).toEqual([
      '0',
      '3',
      '6',
    ]);
    expect(nvd.seen.every((s) => s.params.get('resultsPerPage') === '3')).toBe(true);
    // 5 requests at 2 per 400 ms take at least two full windows (the server's clock, so some slack).
    expect(nvd.seen.at(-1)!.at - nvd.seen[0]!.at).toBeGreaterThanOrEqual(700);
    const run = await pool.query<{
      details: { requests: number; retries: number; pages: number; lastModEnd: string };
    }>(`select details from feed_runs where id = $1`, [r.runId]);
    expect(run.rows[0]!.details).toMatchObject({ requests: 5, retries: 2, pages: 3 });
    expect((await weaknessIntel(pool, 'CVE-2030-1000')).kev).toMatchObject({
      dateAdded: '2030-01-15',
      source: 'nvd',
    });
  });

  it('continues from the last run: only CVEs modified since, in a lastModified window', async () => {
    nvd.seen = [];
    const later = Date.now() + 1000;
    nvd.data = [
      ...nvd.data.map((c, i) =>
        i < 2
          ? { ...c, lastModified: later, vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H', score: 8.8 }
          : c,
      ),
      {
        id: 'CVE-2030-2000',
        lastModified: later,
        vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N',
        score: 7.5,
      },
    ];
    const r = await loadNvd(pool, nvd.url, { apiKey: 'test-key', now: () => new Date(later + 1000) });
    expect(r).toMatchObject({ records: 3, added: 1, changed: 2 });
    expect(nvd.seen).toHaveLength(1);
    const params = nvd.seen[0]!.params;
    expect(params.get('lastModStartDate')).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00$/);
    expect(params.get('lastModEndDate')).toBe(new Date(later + 1000).toISOString().replace('Z', '+00:00'));
    expect((await weaknessIntel(pool, 'CVE-2030-1000')).cvss?.vector).toBe(
      'CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H',
    );
  });

  it('asks a long range in 120-day windows (the server refuses longer ones)', async () => {
    nvd.seen = [];
    const r = await loadNvd(pool, nvd.url, {
      lastModStart: new Date(now - 300 * DAY),
      lastModEnd: new Date(now + 2 * DAY),
      rateLimit: { requests: 10, windowMs: 1000 },
    });
    expect(nvd.seen.map((s) => s.status)).toEqual([200, 200, 200]);
    for (const s of nvd.seen)
      expect(
        Date.parse(s.params.get('lastModEndDate')!) - Date.parse(s.params.get('lastModStartDate')!),
      ).toBeLessThanOrEqual(120 * DAY);
    expect(nvd.seen.every((s) => s.apiKey === undefined)).toBe(true);
    expect(r).toMatchObject({ records: 9, added: 0, changed: 0, unchanged: 9 });
  });

  it('fails at once, with NVD’s message, on an answer that retrying cannot fix', async () => {
    nvd.seen = [];
    await expect(loadNvd(pool, nvd.url, { apiKey: 'wrong-key', incremental: false })).rejects.toThrow(
      /answered HTTP 404 \(Invalid apiKey\); check the URL and parameters/,
    );
    expect(nvd.seen).toHaveLength(1);
  });

  it('gives up after the configured attempts', async () => {
    nvd.failures = [503, 503, 503];
    await expect(
      loadNvd(pool, nvd.url, { attempts: 3, retryDelayMs: 5, incremental: false }),
    ).rejects.toThrow(/failed 3 times, last with HTTP 503/);
    nvd.failures = [];
  });
});

describe('NVD 2.0 documents from files', () => {
  it('loads a gzipped document and a folder of them; a second load changes nothing', async () => {
    const docs = path.join(dir, 'docs');
    await import('node:fs/promises').then((fs) => fs.mkdir(docs, { recursive: true }));
    const data: Cve[] = Array.from({ length: 5 }, (_, i) => ({
      id: `CVE-2031-${1000 + i}`,
      lastModified: Date.parse('2031-01-01T00:00:00Z') + i * DAY,
      vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
      score: 9.8,
    }));
    await writeFile(
      path.join(docs, 'nvdcve-2.0-a.json.gz'),
      gzipSync(JSON.stringify(cvePage(data.slice(0, 3), 0, 3))),
    );
    await writeFile(path.join(docs, 'nvdcve-2.0-b.json'), JSON.stringify(cvePage(data.slice(3), 0, 5)));
    expect(await loadNvd(pool, docs)).toMatchObject({ records: 5, added: 5 });
    expect(await loadNvd(pool, path.join(docs, 'nvdcve-2.0-a.json.gz'))).toMatchObject({
      records: 3,
      unchanged: 3,
      added: 0,
    });
  });

  it('refuses a document that is not NVD 2.0, naming the element', async () => {
    const file = path.join(dir, 'odd.json');
    await writeFile(
      file,
      JSON.stringify({
        vulnerabilities: [
          { cve: { id: 'CVE-2031-9999', lastModified: '2031-01-01T00:00:00' } },
          { nope: true },
        ],
      }),
    );
    await expect(loadNvd(pool, file)).rejects.toThrow(
      `${file} vulnerabilities[1]: cve.id is missing; is this an NVD CVE API 2.0 document?`,
    );
  });
});
