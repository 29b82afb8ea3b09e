// Streaming, header-driven CSV reading shared by the CSV scanner parsers (Nessus, OpenVAS, Qualys).
// Exports from the same scanner differ by version, template and UI ("Plugin" vs "Plugin ID", "Risk" vs
// "Severity"), and some prepend report metadata rows before the header (Qualys VMDR). So columns are
// looked up by name, never by position, and the header is the first row the format recognizes.

import type { Readable } from 'node:stream';
import { CsvError, parse } from 'csv-parse';
import { InputError } from '../../domain/finding.ts';

export interface CsvReadOptions {
  file: string;
  /** Recognizes the header row (cells trimmed, as written). Rows before it are report metadata. */
  isHeader: (cells: readonly string[]) => boolean;
  /** What the caller expects, for the "no header" message ("a Nessus CSV export"). */
  describe: string;
  /** Metadata rows tolerated before the header. */
  maxPreambleRows?: number;
  /** Largest single record (all fields), in characters. */
  maxRecordChars?: number;
}

export interface CsvRow {
  /** Line of the record's first line in the file. */
  readonly line: number;
  /** Trimmed value of the first of these columns that exists and is non-empty (names case-insensitive). */
  get(...columns: string[]): string | undefined;
  /** Whether any of these columns exists in the header. */
  has(...columns: string[]): boolean;
}

const DEFAULT_MAX_RECORD_CHARS = 8 * 1024 * 1024;

class HeaderIndex {
  private readonly index = new Map<string, number>();

  constructor(header: readonly string[]) {
    header.forEach((name, i) => {
      const key = name.trim().toLowerCase();
      if (!this.index.has(key)) this.index.set(key, i);
    });
  }

  position(column: string): number | undefined {
    return this.index.get(column.toLowerCase());
  }
}

function rowOf(cells: readonly string[], header: HeaderIndex, line: number): CsvRow {
  return {
    line,
    get(...columns) {
      for (const c of columns) {
        const i = header.position(c);
        if (i === undefined) continue;
        const v = cells[i]?.trim();
        if (v) return v;
      }
      return undefined;
    },
    has(...columns) {
      return columns.some((c) => header.position(c) !== undefined);
    },
  };
}

/** Stream the data rows after the header. Empty rows (",,,,") are skipped. */
export async function* readCsv(
  input: Readable,
  opts: CsvReadOptions,
): AsyncGenerator<CsvRow, void, undefined> {
  const { file } = opts;
  const maxPreamble = opts.maxPreambleRows ?? 20;
  const parser = parse({
    bom: true,
    relax_column_count: true,
    relax_quotes: true,
    skip_empty_lines: true,
    max_record_size: opts.maxRecordChars ?? DEFAULT_MAX_RECORD_CHARS,
    info: true,
  });
  // pipe() propagates backpressure from the parser to the file; errors of the source are forwarded.
  input.on('error', (err) => parser.destroy(err));
  input.pipe(parser);

  let header: HeaderIndex | undefined;
  let seen = 0;
  try {
    for await (const entry of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const { record, info } = entry;
      if (header === undefined) {
        const cells = record.map((c) => c.trim());
        if (opts.isHeader(cells)) {
          header = new HeaderIndex(cells);
          continue;
        }
        if (++seen > maxPreamble) break;
        continue;
      }
      if (!record.some((c) => c.trim() !== '')) continue;
      // csv-parse counts lines up to the end of the record; quoted fields may span lines.
      yield rowOf(record, header, info.lines - newlines(record));
    }
  } catch (err) {
    if (err instanceof CsvError) {
      const line = typeof err.lines === 'number' ? err.lines : undefined;
      throw new InputError(`malformed CSV: ${err.message.replace(/^Invalid [^:]*: /, '')}`, file, line);
    }
    throw err;
  } finally {
    input.unpipe(parser);
    parser.destroy();
    // We own the input: stop reading a file we gave up on (preamble too long, error, early return).
    if (!input.readableEnded) input.destroy();
  }
  if (header === undefined) {
    throw new InputError(
      seen === 0
        ? `the file is empty; expected ${opts.describe}`
        : `no header row recognized in the first ${seen} row(s); expected ${opts.describe}`,
      file,
    );
  }
}

function newlines(cells: readonly string[]): number {
  let n = 0;
  for (const c of cells) for (let i = c.indexOf('\n'); i >= 0; i = c.indexOf('\n', i + 1)) n++;
  return n;
}

/** Split one CSV line (no embedded newlines) into trimmed cells, honouring double quotes. */
export function splitCsvLine(line: string): string[] {
  const cells: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') {
        quoted = false;
      } else {
        cur += ch;
      }
    } else if (ch === '"') {
      quoted = true;
    } else if (ch === ',') {
      cells.push(cur.trim());
      cur = '';
    } else {
      cur += ch;
    }
  }
  cells.push(cur.trim());
  return cells;
}

/**
 * For detect(): the first of the head's opening lines that `isHeader` accepts, split into cells.
 * Headers never contain newlines, so a line-by-line look is enough and cheap.
 */
export function sniffCsvHeader(
  head: string,
  isHeader: (cells: readonly string[]) => boolean,
  maxLines = 10,
): string[] | undefined {
  const lines = head.replace(/^\uFEFF/, '').split(/\r?\n/, maxLines);
  for (const line of lines) {
    if (line.trim() === '' || line.length > 16 * 1024) continue;
    const cells = splitCsvLine(line);
    if (isHeader(cells)) return cells;
  }
  return undefined;
}

/** Case-insensitive "does the header have all of these columns". */
export function hasColumns(cells: readonly string[], ...names: string[]): boolean {
  const set = new Set(cells.map((c) => c.toLowerCase()));
  return names.every((n) => set.has(n.toLowerCase()));
}
