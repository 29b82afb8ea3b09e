// Every real scanner sample in ../shared/data/scans whose format ctem reads goes through ingest: the
// findings ingested match what parseReport yields, the scan's observations match its exposures, and
// a sample the parser refuses leaves nothing behind.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { testDatabase } from '../support/db.ts';
import { detectFileFormat, ingestFile } from '../../ingest/file.ts';
import { parseReport } from '../../scanners/registry.ts';

const samplesDir = path.resolve('../shared/data/scans');
const present = existsSync(samplesDir);
if (!present)
  console.warn(`skipping real scanner samples: ${samplesDir} is absent (a clone without ../shared)`);

function sampleFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else out.push(full);
    }
  };
  if (present) walk(samplesDir);
  return out;
}

async function parsedCount(file: string): Promise<{ count: number } | { error: string }> {
  let count = 0;
  try {
    for await (const _ of parseReport(file)) count++;
    return { count };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

describe.skipIf(!present)('ingest of every real sample of a supported format', () => {
  it('ingests what parseReport yields, and nothing from a file it refuses', async () => {
    const db = await testDatabase();
    const supported: { file: string; format: string }[] = [];
    for (const file of sampleFiles()) {
      const format = await detectFileFormat(file).catch(() => undefined);
      if (format) supported.push({ file, format });
    }
    // The folders of the formats ctem reads all contribute samples.
    const formats = new Set(supported.map((s) => s.format));
    for (const f of [
      'trivy',
      'grype',
      'sarif',
      'nessus',
      'openvas',
      'nmap',
      'qualys',
      'nessus-csv',
      'openvas-csv',
    ])
      expect(formats, `no sample detected as ${f}`).toContain(f);

    let ingestedFindings = 0;
    for (const { file, format } of supported) {
      // Each sample into an empty inventory, so its counts are its own.
      await db.pool.query(
        'truncate scans, assets, exposures, observations, asset_identifiers, scan_assets, scan_changes, vulnerabilities cascade',
      );
      const parsed = await parsedCount(file);
      const before = await db.pool.query<{ n: number }>('select count(*)::int as n from scans');
      if ('error' in parsed) {
        await expect(ingestFile(db.pool, file, { scopes: [] }), file).rejects.toThrow(parsed.error);
        const after = await db.pool.query<{ n: number }>('select count(*)::int as n from scans');
        expect(after.rows[0]!.n, file).toBe(before.rows[0]!.n);
        continue;
      }
      const summary = await ingestFile(db.pool, file, { scopes: [] });
      expect(summary.format, file).toBe(format);
      expect(summary.status, file).toBe('ingested');
      expect(summary.findings, file).toBe(parsed.count);
      ingestedFindings += summary.findings - summary.skippedFindings;
      const { rows } = await db.pool.query<{ findings: number; observed: number }>(
        `select s.finding_count as findings,
                (select count(*)::int from observations o where o.last_scan_id = s.id) as observed
           from scans s where s.id = $1`,
        [summary.scanId],
      );
      expect(rows[0]!.findings, file).toBe(parsed.count - summary.skippedFindings);
      expect(rows[0]!.observed, file).toBe(summary.exposures.new);
      expect(
        summary.exposures.stillPresent + summary.exposures.gone + summary.exposures.reappeared,
        file,
      ).toBe(0);
      if (summary.findings > summary.skippedFindings) expect(summary.assets.covered, file).toBeGreaterThan(0);
    }
    expect(ingestedFindings).toBeGreaterThan(1000);
  }, 300_000);
});
