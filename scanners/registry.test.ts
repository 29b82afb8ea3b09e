import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, extname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Finding, InputError } from '../domain/finding.ts';
import { FORMATS, detectFormat, parseReport } from './registry.ts';

const SCANS = join(import.meta.dirname, '../../shared/data/scans');
const FIXTURES = join(import.meta.dirname, '../test/fixtures/scans');

async function collect(path: string, format?: string): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const f of parseReport(path, { format })) out.push(f);
  return out;
}

async function inputError(run: () => Promise<unknown>): Promise<InputError> {
  try {
    await run();
  } catch (err) {
    if (err instanceof InputError) return err;
    throw err;
  }
  throw new Error('expected an InputError');
}

function head(path: string): string {
  return readFileSync(path)
    .subarray(0, 64 * 1024)
    .toString('utf8')
    .replace(/^\uFEFF/, '');
}

describe('format registry', () => {
  it('lists every format once', () => {
    expect(new Set(FORMATS).size).toBe(FORMATS.length);
    expect(FORMATS).toEqual(
      expect.arrayContaining([
        'trivy',
        'trivy-operator',
        'grype',
        'sarif',
        'nessus',
        'openvas',
        'nmap',
        'qualys',
        'nessus-csv',
        'openvas-csv',
        'qualys-csv',
      ]),
    );
  });

  describe.skipIf(!existsSync(SCANS))(
    'recognizes every real sample of the supported tools, and claims no other tool’s (needs ../shared/data)',
    () => {
      const expected: Record<string, (file: string) => string> = {
        trivy: () => 'trivy',
        trivy_operator: () => 'trivy-operator',
        anchore_grype: () => 'grype',
        sarif: () => 'sarif',
        nessus: (f) => (extname(f) === '.csv' ? 'nessus-csv' : 'nessus'),
        tenable: (f) => (extname(f) === '.csv' ? 'nessus-csv' : 'nessus'),
        openvas: (f) => (extname(f) === '.csv' ? 'openvas-csv' : 'openvas'),
        nmap: () => 'nmap',
        qualys: (f) => (extname(f) === '.csv' ? 'qualys-csv' : 'qualys'),
      };
      const samples = existsSync(SCANS)
        ? Object.keys(expected).flatMap((dir) =>
            readdirSync(join(SCANS, dir))
              .map((f) => join(SCANS, dir, f))
              .filter((f) => statSync(f).isFile())
              .map((f) => [dir, f] as const),
          )
        : [];
      it.each(samples.filter(([, f]) => basename(f) !== 'legacy_no_vuln.json'))('%s %s', (dir, file) => {
        expect(detectFormat(head(file), basename(file)).format).toBe(expected[dir]!(file));
      });

      it('a report that is just "null" cannot be recognized and says to pass --format', () => {
        expect(() => detectFormat('null\n', 'legacy_no_vuln.json')).toThrow(
          /could not recognize the report format; supported formats are trivy, trivy-operator, grype, sarif, .*; pass --format <format> if it is one of them/,
        );
      });

      const others = existsSync(SCANS)
        ? readdirSync(SCANS)
            .filter((d) => !(d in expected) && !d.startsWith('qualys_'))
            .flatMap((d) => readdirSync(join(SCANS, d)).map((f) => join(SCANS, d, f)))
            .filter((f) => statSync(f).isFile() && /\.json$/.test(f) && statSync(f).size > 0)
        : [];
      it.each(others)('does not claim %s', (file) => {
        expect(() => detectFormat(head(file), basename(file))).toThrow(InputError);
      });
    },
  );

  it('ambiguous heads are refused with the candidates', () => {
    const both = '{"SchemaVersion": 2, "ArtifactName": "x", "matches": [{"artifact": {}}]}';
    expect(() => detectFormat(both, 'x.json')).toThrow(
      'x.json: the format is ambiguous (it looks like trivy and grype); pass --format with one of them',
    );
  });
});

describe('parseReport', () => {
  // Created when the tests run, not when they are collected, so a filtered run leaves nothing behind.
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'parse-report-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!existsSync(SCANS))(
    'reads gzip (by magic, whatever the name) and drops a byte-order mark',
    async () => {
      const sample = readFileSync(join(SCANS, 'trivy/scheme_2_many_vulns.json'));
      const plain = await collect(join(SCANS, 'trivy/scheme_2_many_vulns.json'));
      expect(plain).toHaveLength(5);
      writeFileSync(join(dir, 'report.json.gz'), gzipSync(sample));
      writeFileSync(join(dir, 'report-gz-without-suffix'), gzipSync(sample));
      writeFileSync(join(dir, 'bom.json'), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), sample]));
      expect(await collect(join(dir, 'report.json.gz'))).toEqual(plain);
      expect(await collect(join(dir, 'report-gz-without-suffix'))).toEqual(plain);
      expect(await collect(join(dir, 'bom.json'))).toEqual(plain);
    },
  );

  it.skipIf(!existsSync(SCANS))('--format skips detection', async () => {
    expect(await collect(join(SCANS, 'trivy/legacy_no_vuln.json'), 'trivy')).toEqual([]);
    const err = await inputError(() => collect(join(SCANS, 'trivy/legacy_no_vuln.json')));
    expect(err.message).toMatch(/legacy_no_vuln\.json: could not recognize the report format/);
  });

  it('unknown formats, missing files, directories, UTF-16, corrupt gzip: one sentence each', async () => {
    expect((await inputError(() => collect(join(FIXTURES, 'not-json.txt')))).message).toMatch(
      /not-json\.txt: could not recognize the report format; supported formats are .*; pass --format <format> if it is one of them$/,
    );
    expect((await inputError(() => collect(join(FIXTURES, 'not-json.txt'), 'trivy'))).message).toMatch(
      /not-json\.txt, line 1, column 1: this is not JSON: expected '\{' or '\[' at the start but found 'S'$/,
    );
    expect((await inputError(() => collect(join(FIXTURES, 'not-json.txt'), 'trivvy'))).message).toBe(
      `unknown format "trivvy"; supported formats are ${FORMATS.join(', ')}`,
    );
    expect((await inputError(() => collect(join(dir, 'missing.json')))).message).toBe(
      `${join(dir, 'missing.json')}: no such file; check the path`,
    );
    expect((await inputError(() => collect(dir))).message).toBe(`${dir}: is a directory; pass a report file`);
    writeFileSync(
      join(dir, 'utf16.json'),
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('{"a":1}', 'utf16le')]),
    );
    expect((await inputError(() => collect(join(dir, 'utf16.json')))).message).toMatch(
      /is UTF-16 encoded; convert it to UTF-8/,
    );
    const gz = gzipSync(Buffer.from(JSON.stringify({ SchemaVersion: 2, Results: [] })));
    writeFileSync(join(dir, 'cut.json.gz'), gz.subarray(0, gz.length - 12));
    expect((await inputError(() => collect(join(dir, 'cut.json.gz')))).message).toBe(
      `${join(dir, 'cut.json.gz')}: the gzip data is corrupt or truncated; re-download or re-compress the report`,
    );
    writeFileSync(join(dir, 'empty.json'), '');
    expect((await inputError(() => collect(join(dir, 'empty.json')))).message).toBe(
      `${join(dir, 'empty.json')}: the file is empty; there is no report to read`,
    );
  });
});
