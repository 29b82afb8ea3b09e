// FIRST EPSS daily scores (epss_scores-YYYY-MM-DD.csv[.gz]): an optional first line
// "#model_version:v2025.03.14,score_date:2026-01-30T12:55:00Z", the header "cve,epss,percentile",
// then one row per CVE. A full snapshot for its score date.
import { basename } from 'node:path';
import { inTransaction, type Pool } from '../runtime/pool.ts';
import { copyRows, type CopyValue } from './copy.ts';
import { mergeHistory, type HistoryTable } from './history.ts';
import {
  assertNotOlderSnapshot,
  failRun,
  FeedInputError,
  finishRun,
  startRun,
  type FeedRunResult,
} from './runs.ts';
import { lines, openBytes } from './source.ts';

export const EPSS_SCORES: HistoryTable = {
  table: 'epss_scores',
  key: ['cve'],
  compared: ['probability', 'percentile', 'model_version'],
};

const COMMENT = /^#model_version:([^,]*),score_date:(\S+)\s*$/;
const ROW = /^(CVE-\d{4}-\d{4,}),([0-9.eE+-]+),([0-9.eE+-]+)$/;

export interface EpssLoadOptions {
  /** Score date when the file has no "#…score_date:" line and its name carries no date. */
  scoreDate?: string;
}

function dateFromName(location: string): string | undefined {
  return /(\d{4}-\d{2}-\d{2})/.exec(basename(location))?.[1];
}

type Lines = AsyncGenerator<{ n: number; text: string }>;

/** The "#model_version…" line (optional) and the column header; the score date is required. */
async function readHeader(
  input: Lines,
  location: string,
  opts: EpssLoadOptions,
): Promise<{ modelVersion: string; scoreDate: Date }> {
  let modelVersion = 'unknown';
  let scoreDate: Date | undefined;
  let next = await input.next();
  if (!next.done && next.value.text.startsWith('#')) {
    const m = COMMENT.exec(next.value.text);
    if (!m)
      throw new FeedInputError(
        `${location} line 1: expected "#model_version:…,score_date:…", found "${next.value.text.slice(0, 80)}"`,
      );
    modelVersion = m[1] || 'unknown';
    scoreDate = new Date(m[2]!);
    if (Number.isNaN(scoreDate.getTime()))
      throw new FeedInputError(`${location} line 1: score_date "${m[2]}" is not a date`);
    next = await input.next();
  }
  if (next.done || next.value.text.trim() !== 'cve,epss,percentile') {
    const line = next.done ? 'end of file' : `line ${next.value.n}`;
    throw new FeedInputError(
      `${location} ${line}: expected the header "cve,epss,percentile"; is this a FIRST EPSS scores file?`,
    );
  }
  if (!scoreDate) {
    const fallback = opts.scoreDate ?? dateFromName(location);
    if (!fallback)
      throw new FeedInputError(
        `${location} has no "#model_version…,score_date:…" line and no date in its name; give the score date`,
      );
    scoreDate = new Date(`${fallback}T00:00:00Z`);
    if (Number.isNaN(scoreDate.getTime()))
      throw new FeedInputError(`score date "${fallback}" is not a date YYYY-MM-DD`);
  }
  return { modelVersion, scoreDate };
}

export async function loadEpss(
  pool: Pool,
  location: string,
  opts: EpssLoadOptions = {},
): Promise<FeedRunResult> {
  const started = Date.now();
  const runId = await startRun(pool, 'epss', location);
  try {
    const result = await inTransaction(pool, async (client) => {
      await client.query(`select pg_advisory_xact_lock(hashtext('ctem:feed:epss'))`);
      await client.query(
        `create temp table stage_epss on commit drop as select cve, probability, percentile, model_version, valid_from from epss_scores with no data`,
      );
      let records = 0;
      const input = lines(await openBytes(location));
      let header: { modelVersion: string; scoreDate: Date };
      try {
        header = await readHeader(input, location, opts);
      } catch (err) {
        await input.return(undefined);
        throw err;
      }
      const { scoreDate } = header;
      const model = header.modelVersion;
      const validFrom = scoreDate;

      async function* rows(): AsyncGenerator<CopyValue[]> {
        for await (const { n, text } of input) {
          if (text === '') continue;
          const m = ROW.exec(text);
          if (!m)
            throw new FeedInputError(
              `${location} line ${n}: expected "CVE-YYYY-NNNN,probability,percentile", found "${text.slice(0, 80)}"`,
            );
          const probability = Number(m[2]);
          const percentile = Number(m[3]);
          if (!(probability >= 0 && probability <= 1))
            throw new FeedInputError(
              `${location} line ${n}: epss ${m[2]} is not a probability between 0 and 1`,
            );
          if (!(percentile >= 0 && percentile <= 1))
            throw new FeedInputError(`${location} line ${n}: percentile ${m[3]} is not between 0 and 1`);
          records++;
          yield [m[1]!, probability, percentile, model, validFrom];
        }
      }
      await copyRows(
        client,
        'stage_epss',
        ['cve', 'probability', 'percentile', 'model_version', 'valid_from'],
        rows(),
      );
      if (records === 0) throw new FeedInputError(`${location} has no score rows`);
      await assertNotOlderSnapshot(
        client,
        'epss',
        scoreDate,
        `${location} (scores of ${scoreDate.toISOString()})`,
      );
      const counts = await mergeHistory(client, EPSS_SCORES, 'stage_epss', { runId, snapshotAt: scoreDate });
      return { counts, records, scoreDate, model };
    });
    await finishRun(pool, runId, {
      sourceVersion: result.model,
      sourceDate: result.scoreDate,
      records: result.records,
      counts: result.counts,
    });
    return {
      runId,
      feed: 'epss',
      source: location,
      sourceVersion: result.model,
      sourceDate: result.scoreDate.toISOString(),
      records: result.records,
      ...result.counts,
      durationMs: Date.now() - started,
    };
  } catch (err) {
    await failRun(pool, runId, err);
    throw err;
  }
}
