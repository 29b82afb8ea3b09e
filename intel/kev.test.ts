import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../test/support/db.ts';
import type { Pool } from '../runtime/pool.ts';
import { weaknessIntel } from './intel.ts';
import { loadKev } from './kev.ts';

const KEV_DIR = path.resolve(import.meta.dirname, '../../shared/data/feeds/kev');
const OLD = path.join(KEV_DIR, 'known_exploited_vulnerabilities-2025-08-25.cisagov-kev-data.json');
const NEW = path.join(KEV_DIR, 'known_exploited_vulnerabilities.json');

interface Catalog {
  catalogVersion: string;
  dateReleased: string;
  vulnerabilities: { cveID: string; dateAdded: string }[];
}
const catalog = (file: string): Catalog => JSON.parse(readFileSync(file, 'utf8')) as Catalog;

let pool: Pool;
beforeAll(async () => {
  ({ pool } = await testDatabase());
});

describe.skipIf(!existsSync(NEW) || !existsSync(OLD))(
  'CISA KEV catalogs from ../shared/data/feeds/kev',
  () => {
    it('loads the 2025-08-25 catalog, then the 2026-08-07 one reporting exactly the CVEs added in between', async () => {
      const older = catalog(OLD);
      const newer = catalog(NEW);
      const before = new Set(older.vulnerabilities.map((v) => v.cveID));
      const expectedAdded = newer.vulnerabilities
        .map((v) => v.cveID)
        .filter((id) => !before.has(id))
        .sort();
      const expectedRemoved = [...before].filter((id) => !newer.vulnerabilities.some((v) => v.cveID === id));

      const first = await loadKev(pool, OLD);
      expect(first).toMatchObject({
        feed: 'kev',
        sourceVersion: older.catalogVersion,
        records: older.vulnerabilities.length,
        added: older.vulnerabilities.length,
        changed: 0,
      });

      const second = await loadKev(pool, NEW);
      expect(second.sourceVersion).toBe(newer.catalogVersion);
      expect(second.sourceDate).toBe(new Date(newer.dateReleased).toISOString());
      expect(second.addedKeys).toEqual(expectedAdded);
      expect(second.added).toBe(expectedAdded.length);
      expect(second.removed).toBe(expectedRemoved.length);
      expect(second.added + second.changed + second.unchanged).toBe(newer.vulnerabilities.length);

      const runs = await pool.query<{ status: string; source_version: string; added: number }>(
        `select status, source_version, added from feed_runs where feed = 'kev' order by id`,
      );
      expect(runs.rows).toEqual([
        { status: 'succeeded', source_version: older.catalogVersion, added: older.vulnerabilities.length },
        { status: 'succeeded', source_version: newer.catalogVersion, added: expectedAdded.length },
      ]);
    });

    it('loading the same catalog again changes nothing (and records the run)', async () => {
      const snapshot = async () =>
        (
          await pool.query(
            `select cve, valid_from, valid_to, run_id from kev_entries order by cve, valid_from`,
          )
        ).rows;
      const before = await snapshot();
      const again = await loadKev(pool, NEW);
      expect(again).toMatchObject({
        added: 0,
        changed: 0,
        removed: 0,
        unchanged: catalog(NEW).vulnerabilities.length,
      });
      expect(await snapshot()).toEqual(before);
    });

    it('answers what was known on a past date', async () => {
      const newer = catalog(NEW);
      const older = catalog(OLD);
      const added = newer.vulnerabilities.find(
        (v) => !older.vulnerabilities.some((o) => o.cveID === v.cveID),
      )!;
      expect((await weaknessIntel(pool, added.cveID, new Date('2025-09-01T00:00:00Z'))).kev).toBeNull();
      expect((await weaknessIntel(pool, added.cveID)).kev?.dateAdded).toBe(added.dateAdded);
      const count = async (at: string) =>
        (
          await pool.query<{ n: number }>(
            `select count(*)::int n from kev_entries where valid_from <= $1 and (valid_to is null or valid_to > $1)`,
            [at],
          )
        ).rows[0]!.n;
      expect(await count('2025-09-01T00:00:00Z')).toBe(older.vulnerabilities.length);
      expect(await count('2026-09-01T00:00:00Z')).toBe(newer.vulnerabilities.length);
    });

    it('refuses an older catalog after a newer one, recording the failed run', async () => {
      await expect(loadKev(pool, OLD)).rejects.toThrow(
        /is older than the KEV data already loaded \(2026\.08\.07 of .*\); load snapshots oldest first/,
      );
      const last = await pool.query<{ status: string; error: string }>(
        `select status, error from feed_runs where feed = 'kev' order by id desc limit 1`,
      );
      expect(last.rows[0]!.status).toBe('failed');
    });
  },
);

describe('bad KEV input', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ctem-kev-'));
  });
  const write = async (name: string, text: string) => {
    const file = path.join(dir, name);
    await writeFile(file, text);
    return file;
  };

  it('names the entry and field of an invalid entry, and loads nothing', async () => {
    const file = await write(
      'bad.json',
      JSON.stringify({
        catalogVersion: '2030.01.01',
        dateReleased: '2030-01-01T00:00:00Z',
        count: 2,
        vulnerabilities: [
          { cveID: 'CVE-2030-0001', dateAdded: '2030-01-01' },
          { cveID: 'CVE-2030-0002', dateAdded: '01/01/2030' },
        ],
      }),
    );
    await expect(loadKev(pool, file)).rejects.toThrow(
      `${file}: vulnerabilities[1].dateAdded: must be a date YYYY-MM-DD`,
    );
    expect((await pool.query(`select 1 from kev_entries where cve like 'CVE-2030-%'`)).rowCount).toBe(0);
  });

  it('says so when the file is truncated', async () => {
    const file = await write(
      'truncated.json',
      '{"catalogVersion": "2030.01.01", "dateReleased": "2030-01-01T00:00:00Z", "vulnerabilities": [{"cveID": "CVE-2030-0001"',
    );
    await expect(loadKev(pool, file)).rejects.toThrow(/truncated|not valid JSON/);
  });

  it('says so when the file is not a KEV catalog', async () => {
    const file = await write('other.json', JSON.stringify({ hello: 'world' }));
    await expect(loadKev(pool, file)).rejects.toThrow(/is this a CISA KEV catalog\?/);
  });
});
