import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../domain/finding.ts';
import { hasColumns, readCsv, sniffCsvHeader, splitCsvLine } from './index.ts';
import type { CsvReadOptions } from './index.ts';

const isHeader = (cells: readonly string[]): boolean => hasColumns(cells, 'QID', 'IP');

async function rows(text: string, opts: Partial<CsvReadOptions> = {}): Promise<string[]> {
  const out: string[] = [];
  for await (const r of readCsv(Readable.from([text]), {
    file: 't.csv',
    isHeader,
    describe: 'a test CSV',
    ...opts,
  })) {
    out.push(`${r.line}:${r.get('qid')}:${r.get('Missing', 'Ip') ?? '-'}:${r.get('Title') ?? '-'}`);
  }
  return out;
}

describe('readCsv', () => {
  it('skips metadata rows before the header and empty rows after it; columns by name, any case', async () => {
    const text = [
      '"Asset Vuln Datalist Report","04 Feb 2026"',
      '"TestCompany","123 Test Street"',
      '"Title","QID","IP"',
      '"multi',
      'line",1,10.0.0.1',
      ',,',
      '"",2,',
      '',
    ].join('\n');
    expect(await rows(text)).toEqual(['4:1:10.0.0.1:multi\nline', '7:2:-:-']);
  });

  it('refuses a file whose header is not where the format puts it', async () => {
    const err = await rows('a,b\n1,2\n3,4\n', { maxPreambleRows: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).message).toBe(
      't.csv: no header row recognized in the first 2 row(s); expected a test CSV',
    );
  });

  it('caps the size of one record', async () => {
    const text = `QID,IP,Title\n1,10.0.0.1,"${'x'.repeat(500)}"\n`;
    await expect(rows(text, { maxRecordChars: 100 })).rejects.toThrow(/t\.csv, line 2: malformed CSV: .*100/);
  });

  it('stops reading its input when the consumer stops', async () => {
    async function* endless(): AsyncGenerator<string> {
      yield 'QID,IP\n';
      for (let i = 0; ; i++) yield `${i},10.0.0.1\n`;
    }
    const input = Readable.from(endless());
    let n = 0;
    for await (const _row of readCsv(input, { file: 'endless.csv', isHeader, describe: 'x' }))
      if (++n === 5) break;
    expect(input.destroyed).toBe(true);
  });
});

describe('CSV header sniffing', () => {
  it('splits quoted cells with commas and doubled quotes', () => {
    expect(splitCsvLine('"a, b",c,"d ""e""", f ')).toEqual(['a, b', 'c', 'd "e"', 'f']);
  });

  it('finds the header among the first lines only', () => {
    const head = '"Report"\n"Company"\n"QID","Title","IP"\n1,x,10.0.0.1';
    expect(sniffCsvHeader(head, isHeader)).toEqual(['QID', 'Title', 'IP']);
    expect(sniffCsvHeader(head, isHeader, 2)).toBeUndefined();
    expect(sniffCsvHeader('\uFEFFQID,IP\n', isHeader)).toEqual(['QID', 'IP']);
  });
});
