// The feeds section of ctem.yaml, and loading one feed or all configured ones:
//
//   feeds:
//     kev:  { url: https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json }
//     epss: { url: https://epss.empiricalsecurity.com/epss_scores-current.csv.gz }
//     cve5: { path: ./vulnrichment }
//     nvd:  { url: https://services.nvd.nist.gov/rest/json/cves/2.0, apiKey: env:NVD_API_KEY, since: 2026-01-01 }
import path from 'node:path';
import { z } from 'zod';
import { secretRef, type Config } from '../domain/config.ts';
import type { Pool } from '../runtime/pool.ts';
import { resolveSecret } from '../runtime/config.ts';
import { loadCve5 } from './cve5.ts';
import { loadEpss } from './epss.ts';
import { loadKev } from './kev.ts';
import { loadNvd, type NvdLoadOptions } from './nvd.ts';
import type { FeedName, FeedRunResult } from './runs.ts';

export const FEED_NAMES: readonly FeedName[] = ['kev', 'epss', 'cve5', 'nvd'];

const source = z
  .object({
    url: z
      .string()
      .regex(/^https?:\/\//, 'must be an http(s) URL')
      .optional(),
    path: z.string().min(1).optional(),
    enabled: z.boolean().default(true),
  })
  .strict();
const exactlyOne = (s: { url?: string; path?: string }) => (s.url === undefined) !== (s.path === undefined);
const oneLocation = { message: 'give exactly one of url or path' };

export const feedsSchema = z
  .object({
    kev: source.refine(exactlyOne, oneLocation).optional(),
    epss: source.refine(exactlyOne, oneLocation).optional(),
    cve5: source.refine(exactlyOne, oneLocation).optional(),
    nvd: source
      .extend({
        apiKey: secretRef.optional(),
        /** First sync only: fetch CVEs modified since this date rather than the whole NVD. */
        since: z
          .union([z.string().regex(/^\d{4}-\d{2}-\d{2}/, 'must be a date YYYY-MM-DD'), z.date()])
          .optional(),
      })
      .strict()
      .refine(exactlyOne, oneLocation)
      .optional(),
  })
  .strict();
export type FeedsConfig = z.infer<typeof feedsSchema>;

/** Validate ctem.yaml's feeds section; problems name the field. */
export function feedsConfig(config: Pick<Config, 'feeds'>, file = 'ctem.yaml'): FeedsConfig {
  const r = feedsSchema.safeParse(config.feeds);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  throw new Error(`${file}: feeds.${issue.path.join('.')}: ${issue.message}`);
}

export interface LoadFeedOptions {
  /** NVD API key (the value, not a reference). */
  nvdApiKey?: string;
  /** NVD: fetch CVEs modified since (explicit range start). */
  since?: Date;
  /** EPSS: score date for a file without one. */
  scoreDate?: string;
  nvd?: Omit<NvdLoadOptions, 'apiKey' | 'lastModStart'>;
}

export async function loadFeed(
  pool: Pool,
  feed: FeedName,
  location: string,
  opts: LoadFeedOptions = {},
): Promise<FeedRunResult> {
  switch (feed) {
    case 'kev':
      return loadKev(pool, location);
    case 'epss':
      return loadEpss(pool, location, opts.scoreDate ? { scoreDate: opts.scoreDate } : {});
    case 'cve5':
      return loadCve5(pool, location);
    case 'nvd':
      return loadNvd(pool, location, {
        ...opts.nvd,
        ...(opts.nvdApiKey ? { apiKey: opts.nvdApiKey } : {}),
        ...(opts.since ? { lastModStart: opts.since } : {}),
      });
  }
}

/**
 * Load every configured, enabled feed in order (KEV, EPSS, CVE records, NVD). NVD's `since` applies
 * only while no NVD run has succeeded yet; later syncs continue from the last one.
 */
export async function syncFeeds(
  pool: Pool,
  config: Pick<Config, 'feeds'>,
  baseDir: string,
  env: NodeJS.ProcessEnv = process.env,
  onResult?: (r: FeedRunResult) => void,
): Promise<FeedRunResult[]> {
  const feeds = feedsConfig(config);
  const configured = FEED_NAMES.filter((f) => feeds[f] && feeds[f].enabled);
  if (configured.length === 0)
    throw new Error(
      'no feeds are configured: add a feeds: section to ctem.yaml, e.g. feeds: { kev: { url: https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json } }',
    );
  const results: FeedRunResult[] = [];
  for (const feed of configured) {
    const s = feeds[feed]!;
    const location = s.url ?? path.resolve(baseDir, s.path!);
    const opts: LoadFeedOptions = {};
    if (feed === 'nvd' && feeds.nvd) {
      if (feeds.nvd.apiKey) opts.nvdApiKey = resolveSecret(feeds.nvd.apiKey, env, baseDir);
      if (feeds.nvd.since) {
        const previous = await pool.query(
          `select 1 from feed_runs where feed = 'nvd' and source = $1 and status = 'succeeded' limit 1`,
          [location],
        );
        if (previous.rowCount === 0)
          opts.since = new Date(
            feeds.nvd.since instanceof Date ? feeds.nvd.since : `${feeds.nvd.since.slice(0, 10)}T00:00:00Z`,
          );
      }
    }
    const r = await loadFeed(pool, feed, location, opts);
    results.push(r);
    onResult?.(r);
  }
  return results;
}
