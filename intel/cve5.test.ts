import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../test/support/db.ts';
import type { Pool } from '../runtime/pool.ts';
import { cve5Row, loadCve5 } from './cve5.ts';
import { preferredCvss } from './cveRecords.ts';
import { weaknessIntel } from './intel.ts';

const TREE = path.resolve(import.meta.dirname, '../../shared/data/feeds/nvd/cve5-vulnrichment');

let pool: Pool;
let dir: string;
beforeAll(async () => {
  ({ pool } = await testDatabase());
  dir = await mkdtemp(path.join(os.tmpdir(), 'ctem-cve5-'));
});

const record = (id: string, updated: string, over: Record<string, unknown> = {}) => ({
  dataType: 'CVE_RECORD',
  dataVersion: '5.1',
  cveMetadata: { cveId: id, state: 'PUBLISHED', datePublished: '2030-01-01T00:00:00Z', dateUpdated: updated },
  containers: {
    cna: {
      title: 'Example flaw',
      descriptions: [{ lang: 'en', value: 'An example flaw.' }],
      problemTypes: [{ descriptions: [{ lang: 'en', cweId: 'CWE-79', type: 'CWE', description: 'XSS' }] }],
      metrics: [
        {
          cvssV3_1: {
            version: '3.1',
            vectorString: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N',
            baseScore: 6.1,
          },
        },
        {
          cvssV4_0: {
            version: '4.0',
            vectorString: 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N',
            baseScore: 9.3,
          },
        },
      ],
      providerMetadata: { orgId: 'x', shortName: 'example' },
    },
    adp: [
      {
        title: 'CISA ADP Vulnrichment',
        providerMetadata: { orgId: 'y', shortName: 'CISA-ADP' },
        metrics: [
          {
            other: {
              type: 'ssvc',
              content: {
                options: [{ Exploitation: 'PoC' }, { Automatable: 'Yes' }, { 'Technical Impact': 'Total' }],
                timestamp: '2030-01-02T00:00:00Z',
              },
            },
          },
          { other: { type: 'kev', content: { dateAdded: '2030-01-03' } } },
        ],
      },
    ],
  },
  ...over,
});

describe('one CVE JSON 5 record → row', () => {
  it('takes CNA text and CWEs, the best valid CVSS vector, CISA’s SSVC (normalized) and KEV flag', () => {
    const row = cve5Row(record('CVE-2030-0001', '2030-01-05T00:00:00'), 'x.json');
    expect(row).toMatchObject({
      cve: 'CVE-2030-0001',
      state: 'PUBLISHED',
      updatedAt: '2030-01-05T00:00:00.000Z', // no offset in the record: UTC by the format's definition
      title: 'Example flaw',
      description: 'An example flaw.',
      cwes: ['CWE-79'],
      ssvc: {
        exploitation: 'public poc',
        automatable: 'yes',
        technicalImpact: 'total',
        assessedAt: '2030-01-02T00:00:00.000Z',
      },
      kevDateAdded: '2030-01-03',
    });
    expect(row.cvss.map((c) => `${c.version} ${c.source}`)).toEqual(['3.1 cna:example', '4.0 cna:example']);
    expect(preferredCvss(row.cvss)?.vector).toBe(
      'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N',
    );
    // A broken v4.0 vector is never preferred over a valid v3.1 one.
    expect(
      preferredCvss([
        { version: '4.0', vector: 'CVSS:4.0/AV:N', baseScore: 9, source: 'cna:x' },
        ...row.cvss.slice(0, 1),
      ])?.version,
    ).toBe('3.1');
  });

  it('names the file when the record is not CVE JSON 5', () => {
    expect(() => cve5Row({ foo: 1 }, 'odd.json')).toThrow(
      'odd.json: cveMetadata.cveId is missing; is this a CVE JSON 5 record?',
    );
  });
});

describe('small trees', () => {
  it('loads a folder, skips older versions as stale, and keeps each version', async () => {
    const tree = path.join(dir, 'tree', '2030', '0xxx');
    await mkdir(tree, { recursive: true });
    await writeFile(
      path.join(tree, 'CVE-2030-0001.json'),
      JSON.stringify(record('CVE-2030-0001', '2030-01-05T00:00:00Z')),
    );
    await writeFile(
      path.join(tree, 'CVE-2030-0002.json'),
      JSON.stringify(record('CVE-2030-0002', '2030-01-05T00:00:00Z')),
    );
    await writeFile(path.join(dir, 'tree', 'delta.json'), '{"not":"a record"}');
    expect(await loadCve5(pool, path.join(dir, 'tree'))).toMatchObject({
      records: 2,
      added: 2,
      sourceDate: '2030-01-05T00:00:00.000Z',
    });

    // A newer version of one record, an older version of the other.
    const newer = record('CVE-2030-0001', '2030-02-01T00:00:00Z');
    newer.containers.cna.title = 'Renamed flaw';
    await writeFile(path.join(tree, 'CVE-2030-0001.json'), JSON.stringify(newer));
    await writeFile(
      path.join(tree, 'CVE-2030-0002.json'),
      JSON.stringify(record('CVE-2030-0002', '2029-12-01T00:00:00Z')),
    );
    expect(await loadCve5(pool, path.join(dir, 'tree'))).toMatchObject({
      records: 2,
      added: 0,
      changed: 1,
      stale: 1,
    });

    const versions = await pool.query<{ title: string; valid_from: Date; valid_to: Date | null }>(
      `select title, valid_from, valid_to from cve_records where cve = 'CVE-2030-0001' order by valid_from`,
    );
    expect(
      versions.rows.map((r) => [r.title, r.valid_from.toISOString(), r.valid_to?.toISOString() ?? null]),
    ).toEqual([
      ['Example flaw', '2030-01-05T00:00:00.000Z', '2030-02-01T00:00:00.000Z'],
      ['Renamed flaw', '2030-02-01T00:00:00.000Z', null],
    ]);
    expect((await weaknessIntel(pool, 'CVE-2030-0001', new Date('2030-01-10T00:00:00Z'))).record?.title).toBe(
      'Example flaw',
    );
  });

  it('refuses a broken record file, naming it, and loads nothing of the tree', async () => {
    const tree = path.join(dir, 'broken');
    await mkdir(tree, { recursive: true });
    await writeFile(
      path.join(tree, 'CVE-2031-0001.json'),
      JSON.stringify(record('CVE-2031-0001', '2031-01-01T00:00:00Z')),
    );
    await writeFile(path.join(tree, 'CVE-2031-0002.json'), '{"cveMetadata": ');
    await expect(loadCve5(pool, tree)).rejects.toThrow(
      `${path.join(tree, 'CVE-2031-0002.json')} is not valid JSON`,
    );
    expect((await pool.query(`select 1 from cve_records where cve like 'CVE-2031-%'`)).rowCount).toBe(0);
  });
});

describe.skipIf(!existsSync(TREE))('the 18,000 CISA vulnrichment records from ../shared/data', () => {
  it('loads them all, then a second load changes nothing', async () => {
    const { pool: fresh } = await testDatabase();
    const first = await loadCve5(fresh, TREE);
    expect(first).toMatchObject({ records: 18_000, added: 18_000, changed: 0 });
    const second = await loadCve5(fresh, TREE);
    expect(second).toMatchObject({ records: 18_000, added: 0, changed: 0, stale: 0, unchanged: 18_000 });

    // Spot check against the file itself.
    const file = JSON.parse(readFileSync(path.join(TREE, '2021/24xxx/CVE-2021-24080.json'), 'utf8')) as {
      containers: { cna: { title: string } };
    };
    const intel = await weaknessIntel(fresh, 'CVE-2021-24080');
    expect(intel.record?.title).toBe(file.containers.cna.title);
    expect(intel.ssvc).toMatchObject({ exploitation: 'none', automatable: 'no', technicalImpact: 'partial' });
    expect(intel.cvss?.vector).toBe('CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H/E:U/RL:O/RC:C');

    const flagged = await fresh.query<{ n: number }>(
      `select count(*)::int n from cve_records where kev_date_added is not null`,
    );
    expect(flagged.rows[0]!.n).toBe(223);
  });
});
