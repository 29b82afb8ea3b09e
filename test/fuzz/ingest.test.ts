// Hostile files through the whole ingest path (ingestFile: detection, streaming parse, staging, the
// set-based merge) into a real PostgreSQL that already holds an inventory. A file that fails must
// fail with one InputError naming it and leave every table exactly as it was (one transaction per
// file); a file that happens to stay valid may change the inventory, and becomes the new baseline.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ingestFile } from '../../ingest/file.ts';
import { InputError } from '../../domain/finding.ts';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import {
  SEED,
  describeInput,
  fixture,
  haveShared,
  mutate,
  mutationsArb,
  runs,
  sample,
  SCALE,
} from './support.ts';

// Property runs take seconds on a quiet machine and far longer on a loaded one: no speed is asserted.
vi.setConfig({ testTimeout: 300_000 });

const TABLES = [
  'assets',
  'asset_identifiers',
  'scans',
  'scan_assets',
  'scan_changes',
  'observations',
  'exposures',
  'vulnerabilities',
  'events',
];

let db: TestDatabase;
const dir = mkdtempSync(path.join(os.tmpdir(), 'ctem-fuzz-ingest-'));
let inputs = 0;
let failed = 0;

/** Row count and a content hash of every inventory table. */
async function fingerprint(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of TABLES) {
    const { rows } = await db.pool.query<{ n: number; h: string | null }>(
      `select count(*)::int as n, md5(string_agg(md5(x::text), ',' order by md5(x::text))) as h from ${t} x`,
    );
    out[t] = `${rows[0]!.n}:${rows[0]!.h ?? ''}`;
  }
  return out;
}

const SOURCES = [
  ...(haveShared
    ? [
        { name: 'many_vulns4.json', bytes: sample('anchore_grype/many_vulns4.json'), xml: false },
        { name: 'scheme_2_many_vulns.json', bytes: sample('trivy/scheme_2_many_vulns.json'), xml: false },
        { name: 'report_detail_v2.xml', bytes: sample('openvas/report_detail_v2.xml'), xml: true },
        { name: 'nessus_many_vuln.csv', bytes: sample('nessus/nessus_many_vuln.csv'), xml: false },
        { name: 'issue12411.xml', bytes: sample('nmap/issue12411.xml'), xml: true },
      ]
    : []),
  { name: 'nessus-fields.nessus', bytes: fixture('nessus-fields.nessus'), xml: true },
  { name: 'qualys-host-detection.xml', bytes: fixture('qualys-host-detection.xml'), xml: true },
];

beforeAll(async () => {
  db = await testDatabase();
  // An inventory to protect: every source ingested once, intact.
  for (const s of SOURCES) {
    const file = path.join(dir, s.name);
    writeFileSync(file, s.bytes);
    await ingestFile(db.pool, file, { scopes: [] });
  }
});

afterAll(() => {
  console.log(
    `fuzz ingest: ${inputs} files ingested (${failed} refused, none half-written; seed ${SEED}, scale ${SCALE})`,
  );
  rmSync(dir, { recursive: true, force: true });
});

describe('ingest of hostile files', () => {
  it('a refused file leaves every table as it was; a file that still parses is ingested whole', async () => {
    let baseline = await fingerprint();
    expect(Number(baseline.observations!.split(':')[0])).toBeGreaterThan(0);
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: SOURCES.length - 1 }),
        // Truncation near the end is the case that matters most: many findings staged, then an error.
        fc.oneof(
          { weight: 2, arbitrary: fc.double({ min: 0.5, max: 0.999, noNaN: true }).map((f) => ({ cut: f })) },
          { weight: 3, arbitrary: mutationsArb.map((m) => ({ mutations: m })) },
        ),
        async (i, how) => {
          const s = SOURCES[i]!;
          const bytes =
            'cut' in how
              ? s.bytes.subarray(0, Math.floor(s.bytes.length * how.cut))
              : mutate(s.bytes, how.mutations, s.xml);
          const label = 'cut' in how ? `${s.name} cut at ${how.cut}` : describeInput(s.name, how.mutations);
          const file = path.join(dir, `fuzz-${inputs}-${s.name}`);
          writeFileSync(file, bytes);
          inputs++;
          try {
            await ingestFile(db.pool, file, { scopes: [] });
            baseline = await fingerprint();
          } catch (err) {
            failed++;
            expect(err, `${label}: ${(err as Error).stack}`).toBeInstanceOf(InputError);
            expect((err as Error).message, label).toContain(file);
            expect(await fingerprint(), `${label}: nothing half-written`).toEqual(baseline);
          } finally {
            rmSync(file, { force: true });
          }
        },
      ),
      { seed: SEED, numRuns: runs(60) },
    );
    expect(failed).toBeGreaterThan(0);
  });
});
