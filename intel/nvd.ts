// NVD CVE API 2.0 (https://nvd.nist.gov/developers/vulnerabilities): from saved response/feed files
// ({resultsPerPage, startIndex, totalResults, format, version, timestamp, vulnerabilities: [{cve}]}),
// or live from the paged API — resultsPerPage/startIndex paging, lastModStartDate/lastModEndDate
// windows of at most 120 days (the API's limit), the apiKey header, NVD's rolling rate limit (5
// requests per 30 s without a key, 50 with) and retries on 403/429/5xx, which is how NVD sheds load.
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { inTransaction, type Pool } from '../runtime/pool.ts';
import {
  copyCveRows,
  createCveStage,
  CVE_ID,
  mergeCveStage,
  utcTimestamp,
  type CveRecordRow,
  type CvssMetric,
} from './cveRecords.ts';
import { topLevelJson } from './jsonStream.ts';
import { failRun, FeedInputError, finishRun, startRun, type FeedRunResult } from './runs.ts';
import { isUrl, openBytes } from './source.ts';

type Json = Record<string, unknown>;
const obj = (x: unknown): Json | undefined =>
  x !== null && typeof x === 'object' && !Array.isArray(x) ? (x as Json) : undefined;
const arr = (x: unknown): unknown[] => (Array.isArray(x) ? x : []);
const str = (x: unknown): string | undefined => (typeof x === 'string' && x !== '' ? x : undefined);

export const NVD_API_URL = 'https://services.nvd.nist.gov/rest/json/cves/2.0';
/** The API refuses lastModified ranges longer than 120 days. */
export const MAX_WINDOW_DAYS = 120;
const DAY_MS = 86_400_000;

const METRIC_KEYS = [
  ['cvssMetricV40', '4.0'],
  ['cvssMetricV31', '3.1'],
  ['cvssMetricV30', '3.0'],
] as const;

/** Reduce one element of `vulnerabilities` to its row; `where` names it in errors. */
export function nvdRow(item: unknown, where: string): CveRecordRow {
  const cve = obj(obj(item)?.cve);
  const id = str(cve?.id);
  if (!cve || !id)
    throw new FeedInputError(`${where}: cve.id is missing; is this an NVD CVE API 2.0 document?`);
  if (!CVE_ID.test(id)) throw new FeedInputError(`${where}: cve.id "${id}" is not a CVE id`);
  const updatedAt = utcTimestamp(str(cve.lastModified) ?? str(cve.published));
  if (!updatedAt) throw new FeedInputError(`${where} (${id}): cve.lastModified is missing or not a date`);

  const metrics = obj(cve.metrics);
  const cvss: CvssMetric[] = [];
  for (const [key, version] of METRIC_KEYS) {
    const list = arr(metrics?.[key]).map(obj);
    // NVD's own (Primary) assessment first: preferredCvss keeps the first of the best version.
    const ordered = [
      ...list.filter((m) => m?.type === 'Primary'),
      ...list.filter((m) => m?.type !== 'Primary'),
    ];
    for (const m of ordered) {
      const data = obj(m?.cvssData);
      const vector = str(data?.vectorString);
      if (!m || !data || !vector) continue;
      cvss.push({
        version,
        vector,
        baseScore: typeof data.baseScore === 'number' ? data.baseScore : null,
        source: `nvd:${str(m.type) ?? 'Secondary'}:${str(m.source) ?? '?'}`,
      });
    }
  }
  const cwes = new Set<string>();
  for (const w of arr(cve.weaknesses).map(obj))
    for (const d of arr(w?.description).map(obj)) {
      const v = str(d?.value);
      if (v && /^CWE-\d+$/.test(v)) cwes.add(v);
    }
  const descriptions = arr(cve.descriptions).map(obj);
  const en = descriptions.find((d) => str(d?.lang)?.startsWith('en')) ?? descriptions[0];
  const kev = str(cve.cisaExploitAdd);
  return {
    cve: id,
    state: str(cve.vulnStatus) ?? 'Unknown',
    publishedAt: utcTimestamp(str(cve.published)) ?? null,
    updatedAt,
    title: str(cve.cisaVulnerabilityName) ?? null,
    description: str(en?.value) ?? null,
    cwes: [...cwes].sort(),
    cvss,
    ssvc: null,
    kevDateAdded: kev && /^\d{4}-\d{2}-\d{2}/.test(kev) ? kev.slice(0, 10) : null,
  };
}

/** The rows of one NVD 2.0 document (file or response body), streamed. */
async function* documentRows(
  bytes: AsyncIterable<Buffer | Uint8Array>,
  where: string,
  meta?: Map<string, unknown>,
): AsyncGenerator<CveRecordRow> {
  for await (const ev of topLevelJson(bytes, new Set(['vulnerabilities']), where)) {
    if (ev.kind === 'field') meta?.set(ev.key, ev.value);
    else if (ev.key === 'vulnerabilities') yield nvdRow(ev.value, `${where} vulnerabilities[${ev.index}]`);
  }
}

export interface NvdApiOptions {
  apiKey?: string;
  /** At most 2000 (the API's maximum and default here). */
  resultsPerPage?: number;
  /** Only CVEs modified in [lastModStart, lastModEnd]; split into windows of ≤ 120 days. */
  lastModStart?: Date;
  lastModEnd?: Date;
  /** Requests per rolling window; default NVD's published limits (5 or, with a key, 50 per 30 s). */
  rateLimit?: { requests: number; windowMs: number };
  /** Attempts per request on 403/429/5xx/network errors, and the first back-off. */
  attempts?: number;
  retryDelayMs?: number;
  /** Clock for the windows' end when lastModEnd is not given. */
  now?: () => Date;
}

/** NVD's documented rolling-window limit: wait until the oldest request in the window ages out. */
export class RollingRateLimit {
  private readonly sent: number[] = [];
  constructor(
    private readonly requests: number,
    private readonly windowMs: number,
  ) {}

  async acquire(): Promise<void> {
    for (;;) {
      const now = Date.now();
      while (this.sent.length > 0 && now - this.sent[0]! >= this.windowMs) this.sent.shift();
      if (this.sent.length < this.requests) {
        this.sent.push(now);
        return;
      }
      await sleep(this.windowMs - (now - this.sent[0]!) + 1);
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** NVD expects ISO-8601 with an explicit offset, e.g. 2024-01-01T00:00:00.000+00:00. */
function nvdDate(d: Date): string {
  return d.toISOString().replace('Z', '+00:00');
}

export interface NvdWindow {
  start: Date;
  end: Date;
}

/** Split [start, end] into consecutive windows of at most 120 days. */
export function lastModifiedWindows(start: Date, end: Date): NvdWindow[] {
  if (end.getTime() < start.getTime())
    throw new FeedInputError(`lastModStart ${start.toISOString()} is after lastModEnd ${end.toISOString()}`);
  const windows: NvdWindow[] = [];
  let from = start.getTime();
  do {
    const to = Math.min(from + MAX_WINDOW_DAYS * DAY_MS, end.getTime());
    windows.push({ start: new Date(from), end: new Date(to) });
    from = to;
  } while (from < end.getTime());
  return windows;
}

const RETRYABLE = new Set([403, 429, 500, 502, 503, 504]);

async function fetchPage(
  url: URL,
  opts: NvdApiOptions,
  limit: RollingRateLimit,
  stats: { requests: number; retries: number },
): Promise<Response> {
  const attempts = opts.attempts ?? 5;
  let delay = opts.retryDelayMs ?? 6_000;
  for (let attempt = 1; ; attempt++) {
    await limit.acquire();
    stats.requests++;
    let response: Response | undefined;
    let failure: string;
    try {
      response = await fetch(url, { headers: opts.apiKey ? { apiKey: opts.apiKey } : {} });
      if (response.ok && response.body) return response;
      // NVD explains refusals in a "message" header.
      failure = `HTTP ${response.status}${response.headers.get('message') ? ` (${response.headers.get('message')})` : ''}`;
      await response.body?.cancel();
      if (!RETRYABLE.has(response.status))
        throw new FeedInputError(
          `${url.origin}${url.pathname} answered ${failure}; check the URL and parameters`,
        );
    } catch (err) {
      if (err instanceof FeedInputError) throw err;
      failure = err instanceof Error ? err.message : String(err);
    }
    if (attempt >= attempts)
      throw new Error(`NVD API request ${url.search} failed ${attempts} times, last with ${failure}`);
    stats.retries++;
    const retryAfter = Number(response?.headers.get('retry-after'));
    await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : delay);
    delay = Math.min(delay * 2, 60_000);
  }
}

export interface NvdApiStats {
  requests: number;
  retries: number;
  pages: number;
  windows: NvdWindow[];
  /** The newest response timestamp (NVD's clock). */
  timestamp?: string;
}

/** Every CVE of the API (or of the lastModified range), page by page. */
export async function* nvdApiRows(
  baseUrl: string,
  opts: NvdApiOptions,
  stats: NvdApiStats,
): AsyncGenerator<CveRecordRow> {
  const perPage = Math.min(opts.resultsPerPage ?? 2000, 2000);
  const limit =
    opts.rateLimit ?? (opts.apiKey ? { requests: 50, windowMs: 30_000 } : { requests: 5, windowMs: 30_000 });
  const limiter = new RollingRateLimit(limit.requests, limit.windowMs);
  const windows: (NvdWindow | undefined)[] = opts.lastModStart
    ? lastModifiedWindows(opts.lastModStart, opts.lastModEnd ?? (opts.now ?? (() => new Date()))())
    : [undefined];
  stats.windows = windows.filter((w): w is NvdWindow => w !== undefined);
  for (const window of windows) {
    let startIndex = 0;
    for (;;) {
      const url = new URL(baseUrl);
      url.searchParams.set('resultsPerPage', String(perPage));
      url.searchParams.set('startIndex', String(startIndex));
      if (window) {
        url.searchParams.set('lastModStartDate', nvdDate(window.start));
        url.searchParams.set('lastModEndDate', nvdDate(window.end));
      }
      const response = await fetchPage(url, opts, limiter, stats);
      const meta = new Map<string, unknown>();
      let onPage = 0;
      const stream = response.body as unknown as AsyncIterable<Uint8Array>;
      for await (const row of documentRows(stream, `NVD API page startIndex=${startIndex}`, meta)) {
        onPage++;
        yield row;
      }
      stats.pages++;
      const total = meta.get('totalResults');
      const timestamp = meta.get('timestamp');
      if (typeof timestamp === 'string' && (!stats.timestamp || timestamp > stats.timestamp))
        stats.timestamp = timestamp;
      if (typeof total !== 'number')
        throw new FeedInputError(
          `NVD API page startIndex=${startIndex} has no totalResults; is ${baseUrl} the CVE API 2.0?`,
        );
      startIndex += onPage;
      if (onPage === 0 || startIndex >= total) break;
    }
  }
}

async function* fileRows(location: string, counter: { files: number }): AsyncGenerator<CveRecordRow> {
  const info = await stat(location).catch(() => undefined);
  if (!info) throw new FeedInputError(`${location} does not exist`);
  const files = info.isDirectory()
    ? (await readdir(location, { recursive: true }))
        .filter((f) => /\.json(\.gz)?$/.test(f))
        .sort()
        .map((f) => path.join(location, f))
    : [location];
  if (files.length === 0) throw new FeedInputError(`${location} holds no .json or .json.gz files`);
  for (const file of files) {
    counter.files++;
    yield* documentRows(await openBytes(file), file);
  }
}

/** Whether a location is the live API rather than a saved document. */
export function isNvdApi(location: string): boolean {
  return isUrl(location) && /\/rest\/json\/cves\/2\.0\/?(\?.*)?$/.test(location);
}

export interface NvdLoadOptions extends NvdApiOptions {
  /**
   * For the API without lastModStart: continue from the end of the last successful run against the
   * same URL (default true). Without such a run, everything is fetched.
   */
  incremental?: boolean;
}

/** Load NVD CVE data from a file, a folder of files, a document URL, or the paged API. */
export async function loadNvd(
  pool: Pool,
  location: string,
  opts: NvdLoadOptions = {},
): Promise<FeedRunResult> {
  const started = Date.now();
  const runId = await startRun(pool, 'nvd', location);
  try {
    const api = isNvdApi(location);
    const apiOpts: NvdApiOptions = { ...opts };
    if (api && !opts.lastModStart && opts.incremental !== false) {
      const { rows } = await pool.query<{ end: string | null }>(
        `select details->>'lastModEnd' as "end" from feed_runs
          where feed = 'nvd' and source = $1 and status = 'succeeded' and details ? 'lastModEnd' order by id desc limit 1`,
        [location],
      );
      if (rows[0]?.end) apiOpts.lastModStart = new Date(rows[0].end);
    }
    // The window's end is fixed before the first request, so the next run starts exactly there.
    if (api && apiOpts.lastModStart && !apiOpts.lastModEnd)
      apiOpts.lastModEnd = (opts.now ?? (() => new Date()))();
    // A previous run may have ended ahead of this clock (skew, or an explicit future end).
    if (
      api &&
      !opts.lastModStart &&
      apiOpts.lastModStart &&
      apiOpts.lastModEnd &&
      apiOpts.lastModStart > apiOpts.lastModEnd
    )
      apiOpts.lastModStart = apiOpts.lastModEnd;
    const fetchStartedAt = new Date();
    const stats: NvdApiStats = { requests: 0, retries: 0, pages: 0, windows: [] };
    const files = { files: 0 };
    const source = api
      ? nvdApiRows(location, apiOpts, stats)
      : isUrl(location)
        ? documentRows(await openBytes(location), location)
        : fileRows(location, files);

    let records = 0;
    let newest = 0;
    async function* tracked(): AsyncGenerator<CveRecordRow> {
      for await (const r of source) {
        records++;
        newest = Math.max(newest, Date.parse(r.updatedAt));
        yield r;
      }
    }
    const counts = await inTransaction(pool, async (client) => {
      await client.query(`select pg_advisory_xact_lock(hashtext('ctem:feed:cve'))`);
      await createCveStage(client, 'stage_nvd');
      await copyCveRows(client, 'stage_nvd', 'nvd', tracked());
      return mergeCveStage(client, 'stage_nvd', runId);
    });
    const details: Record<string, unknown> = api
      ? {
          requests: stats.requests,
          retries: stats.retries,
          pages: stats.pages,
          windows: stats.windows.length,
          ...(apiOpts.lastModStart ? { lastModStart: apiOpts.lastModStart.toISOString() } : {}),
          // A full download's successor continues from when this one started.
          lastModEnd: (apiOpts.lastModEnd ?? fetchStartedAt).toISOString(),
        }
      : { files: files.files };
    const sourceDate = newest > 0 ? new Date(newest) : null;
    await finishRun(pool, runId, { sourceVersion: 'NVD CVE API 2.0', sourceDate, records, counts, details });
    return {
      runId,
      feed: 'nvd',
      source: location,
      sourceVersion: 'NVD CVE API 2.0',
      sourceDate: sourceDate?.toISOString() ?? null,
      records,
      ...counts,
      durationMs: Date.now() - started,
    };
  } catch (err) {
    await failRun(pool, runId, err);
    throw err;
  }
}
