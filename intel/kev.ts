// CISA Known Exploited Vulnerabilities catalog (known_exploited_vulnerabilities.json, schema in
// cisagov/kev-data). A full snapshot: an entry missing from a newer catalog is closed as removed.
import { z } from 'zod';
import { inTransaction, type Pool } from '../runtime/pool.ts';
import { copyRows, type CopyValue } from './copy.ts';
import { mergeHistory, type HistoryTable } from './history.ts';
import { topLevelJson } from './jsonStream.ts';
import {
  assertNotOlderSnapshot,
  failRun,
  FeedInputError,
  finishRun,
  startRun,
  type FeedRunResult,
} from './runs.ts';
import { openBytes } from './source.ts';
import { CVE_ID } from './cveRecords.ts';

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date YYYY-MM-DD');

const kevEntry = z.object({
  cveID: z.string().regex(CVE_ID, 'must be a CVE id such as CVE-2021-44228'),
  vendorProject: z.string().optional(),
  product: z.string().optional(),
  vulnerabilityName: z.string().optional(),
  dateAdded: isoDate,
  shortDescription: z.string().optional(),
  requiredAction: z.string().optional(),
  dueDate: isoDate.nullable().optional(),
  knownRansomwareCampaignUse: z.string().optional(),
  notes: z.string().optional(),
  cwes: z.array(z.string()).optional(),
});

export const KEV_ENTRIES: HistoryTable = {
  table: 'kev_entries',
  key: ['cve'],
  compared: [
    'vendor_project',
    'product',
    'vulnerability_name',
    'date_added',
    'due_date',
    'known_ransomware',
    'required_action',
    'short_description',
    'notes',
    'cwes',
  ],
  carried: ['catalog_version'],
};

function issueText(err: z.ZodError): string {
  const issue = err.issues[0]!;
  return `${issue.path.join('.') || 'entry'}: ${issue.message}`;
}

/** Load a KEV catalog from a file or URL. Returns the run, with the CVEs it added to the catalog. */
export async function loadKev(pool: Pool, location: string): Promise<FeedRunResult> {
  const started = Date.now();
  const runId = await startRun(pool, 'kev', location);
  try {
    const result = await inTransaction(pool, async (client) => {
      await client.query(`select pg_advisory_xact_lock(hashtext('ctem:feed:kev'))`);
      await client.query(
        `create temp table stage_kev on commit drop as select cve, ${[...KEV_ENTRIES.compared, 'catalog_version', 'valid_from'].join(', ')} from kev_entries with no data`,
      );
      const fields = new Map<string, unknown>();
      let entries = 0;
      async function* rows(): AsyncGenerator<CopyValue[]> {
        const bytes = await openBytes(location);
        for await (const ev of topLevelJson(bytes, new Set(['vulnerabilities']), location)) {
          if (ev.kind === 'field') {
            fields.set(ev.key, ev.value);
            continue;
          }
          if (ev.key !== 'vulnerabilities') continue;
          const parsed = kevEntry.safeParse(ev.value);
          if (!parsed.success)
            throw new FeedInputError(`${location}: vulnerabilities[${ev.index}].${issueText(parsed.error)}`);
          const v = parsed.data;
          entries++;
          yield [
            v.cveID,
            v.vendorProject ?? null,
            v.product ?? null,
            v.vulnerabilityName ?? null,
            v.dateAdded,
            v.dueDate ?? null,
            v.knownRansomwareCampaignUse ?? null,
            v.requiredAction ?? null,
            v.shortDescription ?? null,
            v.notes ?? null,
            v.cwes ?? [],
            null,
            null,
          ];
        }
      }
      await copyRows(
        client,
        'stage_kev',
        ['cve', ...KEV_ENTRIES.compared, 'catalog_version', 'valid_from'],
        rows(),
      );

      const released = fields.get('dateReleased');
      const version = fields.get('catalogVersion');
      const releasedAt = typeof released === 'string' ? new Date(released) : undefined;
      if (!releasedAt || Number.isNaN(releasedAt.getTime()))
        throw new FeedInputError(
          `${location}: dateReleased is missing or not a date; is this a CISA KEV catalog?`,
        );
      if (typeof version !== 'string')
        throw new FeedInputError(`${location}: catalogVersion is missing; is this a CISA KEV catalog?`);
      const count = fields.get('count');
      if (typeof count === 'number' && count !== entries)
        throw new FeedInputError(
          `${location}: the catalog says count ${count} but lists ${entries} entries (truncated file?)`,
        );
      const catalogVersion = version;
      await assertNotOlderSnapshot(
        client,
        'kev',
        releasedAt,
        `${location} (catalog ${catalogVersion} of ${releasedAt.toISOString()})`,
      );
      await client.query(`update stage_kev set valid_from = $1, catalog_version = $2`, [
        releasedAt,
        catalogVersion,
      ]);

      const counts = await mergeHistory(client, KEV_ENTRIES, 'stage_kev', { runId, snapshotAt: releasedAt });
      const added = await client.query<{ cve: string }>(
        `select cve from stage_kev_diff where kind = 'added' order by cve`,
      );
      return {
        counts,
        releasedAt,
        catalogVersion,
        records: entries,
        addedKeys: added.rows.map((r) => r.cve),
      };
    });
    await finishRun(pool, runId, {
      sourceVersion: result.catalogVersion,
      sourceDate: result.releasedAt,
      records: result.records,
      counts: result.counts,
      details: { addedCves: result.addedKeys.slice(0, 1000) },
    });
    return {
      runId,
      feed: 'kev',
      source: location,
      sourceVersion: result.catalogVersion,
      sourceDate: result.releasedAt.toISOString(),
      records: result.records,
      ...result.counts,
      addedKeys: result.addedKeys,
      durationMs: Date.now() - started,
    };
  } catch (err) {
    await failRun(pool, runId, err);
    throw err;
  }
}
