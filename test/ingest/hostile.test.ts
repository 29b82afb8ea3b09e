// Hostile XML through the whole ingest path: an entity-expansion bomb or an external entity is
// refused as one clear error, having read only the start of the input (so memory and time stay
// bounded whatever follows), and nothing reaches the inventory.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../domain/finding.ts';
import { ingestFile } from '../../ingest/file.ts';
import { parserFor } from '../../scanners/registry.ts';
import { testDatabase } from '../support/db.ts';

const fixtures = path.resolve(import.meta.dirname, '../fixtures/scans');

/**
 * The file's bytes followed by an endless run of ReportHosts: a parser that does not stop at the
 * DOCTYPE never finishes (the test times out), and `pulled` says how much it read before refusing.
 */
function endlessAfter(head: Buffer): { stream: Readable; pulled: () => number } {
  let pulled = 0;
  let sentHead = false;
  const filler = Buffer.from(
    '<ReportHost name="10.0.0.1"><ReportItem pluginID="1" port="0" severity="0"/></ReportHost>\n'.repeat(
      1000,
    ),
  );
  const stream = new Readable({
    read() {
      const chunk = sentHead ? filler : head;
      sentHead = true;
      pulled += chunk.length;
      this.push(chunk);
    },
  });
  return { stream, pulled: () => pulled };
}

async function refusal(findings: AsyncIterable<unknown>): Promise<InputError> {
  try {
    for await (const _ of findings) {
      // Any finding at all means the bomb was parsed.
      throw new Error('a finding came out of a hostile file');
    }
  } catch (err) {
    if (err instanceof InputError) return err;
    throw err;
  }
  throw new Error('the hostile file was accepted');
}

describe('hostile XML', () => {
  it('refuses an entity-expansion bomb having read only its head, however much follows', async () => {
    // The DOCTYPE without its closing part: the refusal cannot wait for the end of the subset.
    const bomb = readFileSync(path.join(fixtures, 'xml-billion-laughs.xml'));
    const { stream, pulled } = endlessAfter(bomb);
    const heapBefore = process.memoryUsage().heapUsed;
    const err = await refusal(parserFor('nessus').parse(stream, { file: 'bomb.nessus' }));
    expect(err.message).toMatch(/bomb\.nessus.*DOCTYPE with an internal subset/);
    // At most a few read-ahead chunks, not the endless rest.
    expect(pulled()).toBeLessThan(2 * 1024 * 1024);
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
    stream.destroy();
  });

  it('refuses an external entity declaration having read only its head', async () => {
    const xxe = readFileSync(path.join(fixtures, 'xml-xxe.xml'));
    const { stream, pulled } = endlessAfter(xxe.subarray(0, xxe.indexOf('<nmaprun scanner')));
    const err = await refusal(parserFor('nmap').parse(stream, { file: 'xxe.xml' }));
    expect(err.message).toMatch(/xxe\.xml/);
    expect(err.message).toMatch(/XXE|external entit|internal subset/);
    expect(pulled()).toBeLessThan(2 * 1024 * 1024);
    stream.destroy();
  });

  it('ingests nothing from either file and names the file and line', async () => {
    const db = await testDatabase();
    for (const [name, format] of [
      ['xml-billion-laughs.xml', 'nessus'],
      ['xml-xxe.xml', 'nmap'],
    ] as const) {
      const file = path.join(fixtures, name);
      const err = await ingestFile(db.pool, file, { scopes: [], format }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, name).toBeInstanceOf(InputError);
      expect((err as InputError).message, name).toContain(name);
      expect((err as InputError).line, name).toBe(2);
    }
    const { rows } = await db.pool.query<{ scans: number; assets: number; exposures: number }>(
      `select (select count(*)::int from scans) as scans, (select count(*)::int from assets) as assets,
              (select count(*)::int from exposures) as exposures`,
    );
    expect(rows[0]).toEqual({ scans: 0, assets: 0, exposures: 0 });
  });
});
