// Staging remembers a bounded number of weakness keys exactly and the forgotten ones in a Bloom
// filter: intel is staged again for a forgotten key (never lost), and the merge is told to
// de-duplicate only when a key may really repeat.
import { describe, expect, it } from 'vitest';
import { inTransaction } from '../../runtime/pool.ts';
import { ForgottenKeys, stageFindings } from '../../ingest/stage.ts';
import { ingestReport } from '../../ingest/ingest.ts';
import { testDatabase } from '../support/db.ts';
import { finding, host, stream } from './findings.ts';

describe('ForgottenKeys', () => {
  it('never forgets a key it was given, and rarely claims one it was not', () => {
    const forgotten = new ForgottenKeys();
    expect(forgotten.mightHave('CVE-2024-0001')).toBe(false);
    for (let i = 0; i < 300_000; i++) forgotten.add(`CVE-${2000 + (i % 25)}-${100000 + i}`);
    for (let i = 0; i < 300_000; i++)
      expect(forgotten.mightHave(`CVE-${2000 + (i % 25)}-${100000 + i}`)).toBe(true);
    let falseMaybes = 0;
    for (let i = 0; i < 100_000; i++) if (forgotten.mightHave(`GHSA-${i}-other`)) falseMaybes++;
    // 300,000 keys in 2^24 bits with 7 probes: about 1 in 20,000 by the formula.
    expect(falseMaybes).toBeLessThan(100);
  });
});

describe('staging intel with a bounded memory of keys', () => {
  const a = host('app-01.example.com', '10.9.0.1');
  const intel = (key: string) =>
    finding(a, key, { description: `about ${key}`, solution: `fix ${key}`, aliases: [`alias-${key}`] });

  async function stage(keys: string[], intelKeysRemembered: number) {
    const db = await testDatabase();
    return await inTransaction(db.pool, async (client) => {
      const report = await stageFindings(client, stream(keys.map(intel)), { intelKeysRemembered });
      const { rows } = await client.query<{
        k: string;
        intel: boolean;
        i_desc: string | null;
        i_again: boolean | null;
      }>('select k, intel, i_desc, i_again from stage_findings order by k, intel desc, i_again nulls first');
      return { report, rows };
    });
  }

  it('stays "unique" past the limit while no key repeats', async () => {
    const keys = Array.from({ length: 12 }, (_, i) => `CVE-2099-${1000 + i}`);
    const { report, rows } = await stage(keys, 4);
    expect(report.intelUnique).toBe(true);
    expect(rows.filter((r) => r.intel)).toHaveLength(12);
    expect(rows.filter((r) => r.i_again)).toEqual([]);
  });

  it('stages a forgotten key’s intel again and says the merge must de-duplicate', async () => {
    const keys = ['CVE-2099-1', 'CVE-2099-2', 'CVE-2099-3', 'CVE-2099-4', 'CVE-2099-5', 'CVE-2099-1'];
    const { report, rows } = await stage(keys, 4);
    expect(report.intelUnique).toBe(false);
    const first = rows.filter((r) => r.k === 'CVE-2099-1');
    // The second is marked: the merge sorts this key's rows, and no other key's.
    expect(first).toEqual([
      { k: 'CVE-2099-1', intel: true, i_desc: 'about CVE-2099-1', i_again: null },
      { k: 'CVE-2099-1', intel: true, i_desc: 'about CVE-2099-1', i_again: true },
    ]);
    expect(rows.filter((r) => r.i_again)).toHaveLength(1);
  });

  it('stages a remembered key’s intel once', async () => {
    const keys = ['CVE-2099-1', 'CVE-2099-2', 'CVE-2099-1', 'CVE-2099-2'];
    const { report, rows } = await stage(keys, 4);
    expect(report.intelUnique).toBe(true);
    expect(rows.map((r) => [r.k, r.intel])).toEqual([
      ['CVE-2099-1', true],
      ['CVE-2099-1', false],
      ['CVE-2099-2', true],
      ['CVE-2099-2', false],
    ]);
  });

  it('merges the intel of keys staged again into one row each, the best-described one', async () => {
    const db = await testDatabase();
    const b = host('app-02.example.com', '10.9.0.2');
    const findings = [
      finding(a, 'CVE-2099-10', { aliases: ['GHSA-aaaa'] }), // no description yet
      finding(a, 'CVE-2099-11', { description: 'eleven' }),
      finding(a, 'CVE-2099-12', { description: 'twelve' }),
      finding(b, 'CVE-2099-10', { description: 'ten, described', aliases: ['GHSA-bbbb'] }), // forgotten: again
      finding(b, 'CVE-2099-13', { description: 'thirteen' }),
    ];
    const summary = await ingestReport(
      db.pool,
      { source: 'again.nessus', format: 'nessus', findings: stream(findings), fileSha256: 'again-1' },
      { scopes: [], intelKeysRemembered: 2 },
    );
    expect(summary.exposures.new).toBe(5);
    const { rows } = await db.pool.query<{ key: string; description: string | null; aliases: string[] }>(
      'select key, description, aliases from vulnerabilities order by key',
    );
    expect(rows).toEqual([
      { key: 'CVE-2099-10', description: 'ten, described', aliases: ['GHSA-bbbb'] },
      { key: 'CVE-2099-11', description: 'eleven', aliases: [] },
      { key: 'CVE-2099-12', description: 'twelve', aliases: [] },
      { key: 'CVE-2099-13', description: 'thirteen', aliases: [] },
    ]);
  });
});
