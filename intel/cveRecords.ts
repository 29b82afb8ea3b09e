// The cve_records row both CVE sources (CVE JSON 5 and NVD API 2.0) are reduced to, and its staged
// load: COPY into a temporary table, then the history merge.
import { parseCvssVector } from '../domain/cvss.ts';
import type { PoolClient } from '../runtime/pool.ts';
import { copyRows, type CopyValue } from './copy.ts';
import { mergeHistory, type HistoryTable, type MergeCounts } from './history.ts';

export interface CvssMetric {
  version: string;
  vector: string;
  baseScore: number | null;
  /** "cna:<org>", "adp:<org>", "nvd:Primary:<source>", … */
  source: string;
}

export interface CveRecordRow {
  cve: string;
  state: string;
  publishedAt: string | null;
  updatedAt: string;
  title: string | null;
  description: string | null;
  cwes: string[];
  cvss: CvssMetric[];
  ssvc: {
    exploitation: string | null;
    automatable: string | null;
    technicalImpact: string | null;
    assessedAt: string | null;
  } | null;
  kevDateAdded: string | null;
}

export const CVE_ID = /^CVE-\d{4}-\d{4,}$/;

/**
 * An ISO timestamp in UTC. CVE and NVD timestamps without an offset are UTC by those formats'
 * definitions (JavaScript and PostgreSQL would read them as local time). Undefined if not a date.
 */
export function utcTimestamp(text: string | undefined): string | undefined {
  if (!text) return undefined;
  const zoned = /([zZ]|[+-]\d{2}:?\d{2})$/.test(text) || !text.includes('T') ? text : `${text}Z`;
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(zoned) ? `${zoned}T00:00:00Z` : zoned);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

const VERSION_RANK: Record<string, number> = { '4.0': 3, '3.1': 2, '3.0': 1 };

/**
 * The vector decisions use: the newest CVSS version, the first publisher in `metrics` order (callers
 * list the CNA or NVD Primary first), and only a vector that validates.
 */
export function preferredCvss(metrics: readonly CvssMetric[]): CvssMetric | undefined {
  let best: CvssMetric | undefined;
  for (const m of metrics) {
    const rank = VERSION_RANK[m.version] ?? 0;
    if (rank === 0 || (best && rank <= (VERSION_RANK[best.version] ?? 0))) continue;
    try {
      parseCvssVector(m.vector);
      best = m;
    } catch {
      // An invalid vector is kept in cvss_all for the record, never used to decide.
    }
  }
  return best;
}

const SSVC_VALUES: Record<string, Record<string, string>> = {
  exploitation: { none: 'none', poc: 'public poc', 'public poc': 'public poc', active: 'active' },
  automatable: { no: 'no', yes: 'yes' },
  technicalImpact: { partial: 'partial', total: 'total' },
};

/** CISA's vulnrichment writes SSVC values in mixed case ("PoC", "Total"); normalize or drop. */
export function ssvcValue(
  kind: 'exploitation' | 'automatable' | 'technicalImpact',
  raw: unknown,
): string | null {
  return typeof raw === 'string' ? (SSVC_VALUES[kind]![raw.trim().toLowerCase()] ?? null) : null;
}

export const CVE_RECORDS: HistoryTable = {
  table: 'cve_records',
  key: ['source', 'cve'],
  compared: [
    'state',
    'published_at',
    'updated_at',
    'title',
    'description',
    'cwes',
    'cvss_vector',
    'cvss_base_score',
    'cvss_source',
    'cvss_all',
    'ssvc_exploitation',
    'ssvc_automatable',
    'ssvc_technical_impact',
    'ssvc_assessed_at',
    'kev_date_added',
  ],
};

const STAGE_COLUMNS = ['source', 'cve', ...CVE_RECORDS.compared, 'valid_from'];

export async function createCveStage(client: PoolClient, stage: string): Promise<void> {
  await client.query(
    `create temp table ${stage} on commit drop as
     select ${STAGE_COLUMNS.join(', ')} from cve_records with no data`,
  );
}

export function cveCopyRow(source: 'cve5' | 'nvd', r: CveRecordRow): CopyValue[] {
  const preferred = preferredCvss(r.cvss);
  return [
    source,
    r.cve,
    r.state,
    r.publishedAt,
    r.updatedAt,
    r.title,
    r.description,
    r.cwes,
    preferred?.vector ?? null,
    preferred?.baseScore ?? null,
    preferred?.source ?? null,
    JSON.stringify(r.cvss),
    r.ssvc?.exploitation ?? null,
    r.ssvc?.automatable ?? null,
    r.ssvc?.technicalImpact ?? null,
    r.ssvc?.assessedAt ?? null,
    r.kevDateAdded,
    r.updatedAt,
  ];
}

export async function copyCveRows(
  client: PoolClient,
  stage: string,
  source: 'cve5' | 'nvd',
  rows: AsyncIterable<CveRecordRow> | Iterable<CveRecordRow>,
): Promise<number> {
  async function* encoded(): AsyncGenerator<CopyValue[]> {
    for await (const r of rows) yield cveCopyRow(source, r);
  }
  return copyRows(client, stage, STAGE_COLUMNS, encoded());
}

export async function mergeCveStage(client: PoolClient, stage: string, runId: number): Promise<MergeCounts> {
  return mergeHistory(client, CVE_RECORDS, stage, { runId, keepNewestDuplicate: true });
}
