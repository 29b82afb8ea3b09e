import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../domain/finding.ts';
import { type JsonEvent, type JsonReadOptions, readJsonEvents } from './index.ts';
import {
  boundText,
  cvssVersion,
  normalizeCwe,
  normalizeSeverity,
  parseImageReference,
  vulnerabilityKey,
} from './normalize.ts';
import { pathText } from './path.ts';
import { Spool } from './spool.ts';

const SCANS = join(import.meta.dirname, '../../../shared/data/scans');

async function* chunksOf(text: string, sizes: readonly number[]): AsyncGenerator<Buffer> {
  const bytes = Buffer.from(text);
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const size = Math.max(1, sizes[i % sizes.length]!);
    yield bytes.subarray(at, at + size);
    at += size;
  }
}

async function collect(
  text: string,
  options: Omit<JsonReadOptions, 'file'>,
  sizes: readonly number[] = [1 << 20],
): Promise<JsonEvent[]> {
  const events: JsonEvent[] = [];
  for await (const batch of readJsonEvents(chunksOf(text, sizes), { file: 'report.json', ...options })) {
    // Values are parsed when read: read each, as a parser would, and keep plain data to compare.
    for (const e of batch) {
      events.push(
        e.kind === 'value'
          ? { kind: e.kind, pattern: e.pattern, path: e.path, value: e.value, line: e.line, column: e.column }
          : e,
      );
    }
  }
  return events;
}

/**
 * The oracle: what the reader must report, computed from JSON.parse of the whole document by a
 * naive walk (keys literal, [*] any index).
 */
function expectedValues(document: unknown, patterns: readonly string[]): { path: string; value: unknown }[] {
  const out: { path: string; value: unknown }[] = [];
  const steps = patterns.map((p) => p.split(/\.|(?=\[\*\])/).filter(Boolean));
  const walk = (value: unknown, path: (string | number)[]): void => {
    const matched = steps.some(
      (s) =>
        s.length === path.length &&
        s.every((step, i) => (step === '[*]' ? typeof path[i] === 'number' : step === path[i])),
    );
    if (matched) {
      out.push({ path: pathText(path), value });
      return;
    }
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, [...path, i]));
    else if (value && typeof value === 'object')
      for (const [k, v] of Object.entries(value)) walk(v, [...path, k]);
  };
  walk(document, []);
  return out;
}

async function failure(
  text: string,
  options: Omit<JsonReadOptions, 'file'>,
  sizes?: number[],
): Promise<InputError> {
  try {
    await collect(text, options, sizes);
  } catch (err) {
    if (err instanceof InputError) return err;
    throw err;
  }
  throw new Error('expected an InputError');
}

const TRIVY_LIKE = {
  values: ['ArtifactName', 'Results[*].Target', 'Results[*].Vulnerabilities[*]'],
  scopes: ['Results', 'Results[*]'],
};

describe('readJsonEvents', () => {
  const doc = JSON.stringify(
    {
      SchemaVersion: 2,
      ArtifactName: 'nginx:1.25',
      Metadata: { ImageConfig: { history: [{ created_by: 'RUN echo "[{not json}]" \\' }] } },
      Results: [
        {
          Target: 'nginx:1.25 (debian 12)',
          Vulnerabilities: [{ VulnerabilityID: 'CVE-1', Title: 'a "quoted" ]} title' }],
        },
        { Target: 'app/package-lock.json', Vulnerabilities: null },
        {
          Target: 'x',
          Vulnerabilities: [{ VulnerabilityID: 'CVE-2' }, { VulnerabilityID: 'CVE-3', Nested: [[{}], []] }],
        },
      ],
    },
    null,
    2,
  );

  it('hands over the picked values in document order, with their paths and where they start', async () => {
    const events = await collect(doc, TRIVY_LIKE);
    expect(
      events.map((e) =>
        e.kind === 'value'
          ? `${pathText(e.path)}=${JSON.stringify(e.value)}`
          : `${e.kind}:${'path' in e ? pathText(e.path) : e.type}`,
      ),
    ).toEqual([
      'root:object',
      'ArtifactName="nginx:1.25"',
      'Results[0].Target="nginx:1.25 (debian 12)"',
      'Results[0].Vulnerabilities[0]={"VulnerabilityID":"CVE-1","Title":"a \\"quoted\\" ]} title"}',
      'close:Results[0]',
      'Results[1].Target="app/package-lock.json"',
      'close:Results[1]',
      'Results[2].Target="x"',
      'Results[2].Vulnerabilities[0]={"VulnerabilityID":"CVE-2"}',
      'Results[2].Vulnerabilities[1]={"VulnerabilityID":"CVE-3","Nested":[[{}],[]]}',
      'close:Results[2]',
      'close:Results',
    ]);
    const first = events.find((e) => e.kind === 'value' && e.pattern === 'Results[*].Vulnerabilities[*]');
    const line = doc.split('\n').findIndex((l) => l.includes('"VulnerabilityID": "CVE-1"'));
    // The element's opening brace is on the line before its first property.
    expect(first).toMatchObject({ line, column: 9 });
  });

  it('gives the same events however the input is chunked', async () => {
    const strip = (events: JsonEvent[]): unknown[] =>
      events.map((e) => ({ ...e, line: undefined, column: undefined }));
    const reference = strip(await collect(doc, TRIVY_LIKE));
    const values = reference.flatMap((e) =>
      (e as JsonEvent).kind === 'value' ? [(e as { value: unknown }).value] : [],
    );
    expect(values).toEqual(expectedValues(JSON.parse(doc), TRIVY_LIKE.values).map((v) => v.value));
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 12 }),
        async (sizes) => {
          expect(strip(await collect(doc, TRIVY_LIKE, sizes))).toEqual(reference);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('hands over arbitrary JSON values intact, escapes and non-ASCII included, split anywhere', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.jsonValue(), { maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 5 }),
        fc.boolean(),
        async (items, sizes, pretty) => {
          const text = JSON.stringify(
            { skip: items, Results: [{ Vulnerabilities: items }] },
            null,
            pretty ? 2 : 0,
          );
          const events = await collect(text, TRIVY_LIKE, sizes);
          const values = events.flatMap((e) => (e.kind === 'value' ? [e.value] : []));
          // JSON round trip: -0 becomes 0, as JSON.parse would give it.
          expect(values).toEqual(JSON.parse(JSON.stringify(items)));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('reads a top-level array (legacy Trivy) and a top-level null', async () => {
    const options = { values: ['[*].Target'], scopes: ['[*]'] };
    expect(await collect('[{"Target":"a"},{"Target":"b"}]', options)).toEqual([
      { kind: 'root', type: 'array' },
      { kind: 'value', pattern: '[*].Target', path: [0, 'Target'], value: 'a', line: 1, column: 12 },
      { kind: 'close', pattern: '[*]', path: [0] },
      { kind: 'value', pattern: '[*].Target', path: [1, 'Target'], value: 'b', line: 1, column: 27 },
      { kind: 'close', pattern: '[*]', path: [1] },
    ]);
    expect(await collect('null\n', options)).toEqual([{ kind: 'root', type: 'null' }]);
    expect(await collect('null', options)).toEqual([{ kind: 'root', type: 'null' }]);
  });

  it('strips a UTF-8 byte-order mark and decodes multi-byte characters split across chunks', async () => {
    const text = '\uFEFF{"ArtifactName":"café – 日本 🐳"}';
    for (const sizes of [[1], [2], [3], [5]]) {
      const events = await collect(text, { values: ['ArtifactName'] }, sizes);
      expect(events[1]).toMatchObject({ value: 'café – 日本 🐳' });
    }
  });

  describe('bad input becomes one InputError naming file, line, column and what was expected', () => {
    it('truncated', async () => {
      const text = doc.slice(0, doc.indexOf('CVE-3') + 3);
      const err = await failure(text, TRIVY_LIKE);
      expect(err.file).toBe('report.json');
      expect(err.message).toMatch(
        /^report\.json, line \d+, column \d+: the file ends inside .*Results\[2\]\.Vulnerabilities\[1\].*truncated/,
      );
      expect(err.line).toBe(text.split('\n').length);
    });

    it('not JSON at all', async () => {
      const err = await failure('Scan failed: registry timeout\n', TRIVY_LIKE);
      expect(err.message).toBe(
        "report.json, line 1, column 1: this is not JSON: expected '{' or '[' at the start but found 'S'",
      );
      const xml = await failure('<?xml version="1.0"?><NessusClientData_v2/>', TRIVY_LIKE);
      expect(xml.message).toMatch(/this is XML or HTML, not JSON/);
    });

    it('wrong shape', async () => {
      const err = await failure('{"Results": {"Target": "x"}}', TRIVY_LIKE);
      expect(err.message).toContain('expected "Results" to be an array but found an object');
      const scalar = await failure('{"Results": [{"Vulnerabilities": "none"}]}', TRIVY_LIKE);
      expect(scalar.message).toContain(
        'expected "Results[0].Vulnerabilities" to be an array but found a string',
      );
      const root = await failure('"just a string"', TRIVY_LIKE);
      expect(root.message).toContain('expected the top-level value to be an object but found a string');
    });

    it('empty file', async () => {
      const err = await failure('  \n', TRIVY_LIKE);
      expect(err.message).toBe('report.json: the file is empty; expected a JSON report');
    });

    it('points into a picked value at the character JSON.parse rejected', async () => {
      const text =
        '{\n  "Results": [{\n    "Vulnerabilities": [\n      {"VulnerabilityID": "CVE-1",\n       "Title": tru}\n    ]\n  }]\n}';
      const err = await failure(text, TRIVY_LIKE);
      expect(err.message).toBe(
        "report.json, line 5, column 17: invalid JSON in Results[0].Vulnerabilities[0]: expected a JSON value but found 't'",
      );
      const control = await failure('{"Results":[{"Vulnerabilities":[{"Title":"a\u0001b"}]}]}', TRIVY_LIKE);
      expect(control.message).toBe(
        'report.json, line 1, column 44: invalid JSON in Results[0].Vulnerabilities[0]: expected no raw control characters in a string (they must be escaped) but found character code 1',
      );
    });

    it('rejects a missing comma and data after the document', async () => {
      const missing = await failure('{"ArtifactName": "a" "Results": []}', TRIVY_LIKE);
      expect(missing.message).toBe(
        "report.json, line 1, column 22: expected ',' or '}' after a value in the top-level value but found '\"'",
      );
      const trailing = await failure('{"Results": []}\n{"Results": []}', TRIVY_LIKE);
      expect(trailing.message).toBe(
        "report.json, line 2, column 1: expected nothing more after the end of the JSON document but found '{'",
      );
    });

    it('refuses a picked value larger than the cap without reading the rest of the file', async () => {
      let produced = 0;
      async function* endless(): AsyncGenerator<string> {
        yield '{"Results": [{"Vulnerabilities": [{"Description": "';
        for (;;) {
          produced++;
          yield 'A'.repeat(64 * 1024);
        }
      }
      const run = async (): Promise<void> => {
        for await (const _ of readJsonEvents(endless(), {
          file: 'huge.json',
          ...TRIVY_LIKE,
          maxValueChars: 1024 * 1024,
        })) {
          // drain
        }
      };
      await expect(run()).rejects.toThrow(
        /huge\.json, line 1, column 35: the value at Results\[0\]\.Vulnerabilities\[0\] is larger than 1 MiB/,
      );
      expect(produced).toBeLessThan(20);
    });

    it('skips huge values nobody asked for without keeping them', async () => {
      async function* big(): AsyncGenerator<string> {
        yield '{"Metadata": {"ImageConfig": "';
        for (let i = 0; i < 200; i++) yield 'B\\"'.repeat(100_000);
        yield '"}, "ArtifactName": "kept"}';
      }
      const events: JsonEvent[] = [];
      for await (const batch of readJsonEvents(big(), {
        file: 'big.json',
        ...TRIVY_LIKE,
        maxValueChars: 1024,
      })) {
        events.push(...batch);
      }
      expect(events).toContainEqual(expect.objectContaining({ kind: 'value', value: 'kept' }));
    });
  });

  describe.skipIf(!existsSync(SCANS))(
    'every real JSON sample: the values JSON.parse finds there, split at odd places (needs ../shared/data)',
    () => {
      const dirs = ['trivy', 'trivy_operator', 'anchore_grype', 'sarif'];
      const files = existsSync(SCANS)
        ? dirs.flatMap((d) => readdirSync(join(SCANS, d)).map((f) => join(SCANS, d, f)))
        : [];
      // Patterns from every JSON parser, so the walk is exercised on every shape they read.
      const options = {
        values: [
          'matches[*]',
          'source',
          'Results[*].Vulnerabilities[*]',
          'runs[*].results[*]',
          'Resources[*].Results[*].Misconfigurations[*]',
          'report.checks[*]',
          '[*].Target',
        ],
        scopes: ['runs[*]', 'Results[*]', '[*]'],
      };
      it.each(files.filter((f) => statSync(f).size > 0))('%s', async (file) => {
        const text = readFileSync(file, 'utf8');
        const events = await collect(text, options, [4093, 1, 17]);
        const got = events.flatMap((e) =>
          e.kind === 'value' ? [{ path: pathText(e.path), value: e.value }] : [],
        );
        expect(got).toEqual(expectedValues(JSON.parse(text.replace(/^\uFEFF/, '')), options.values));
      });
    },
  );
});

describe('Spool', () => {
  it('returns what it held in order, spilling to a temporary file past its memory limit and removing it after', async () => {
    const previous = process.env.TMPDIR;
    const tmp = mkdtempSync(join(tmpdir(), 'spool-test-'));
    process.env.TMPDIR = tmp;
    const spool = new Spool<{ n: number; text: string }>(1024);
    try {
      for (let n = 0; n < 5000; n++) spool.push({ n, text: `line\n${n} "quoted"` });
    } finally {
      process.env.TMPDIR = previous;
    }
    expect(spool.size).toBe(5000);
    expect(readdirSync(tmp)).toHaveLength(1);
    const out: number[] = [];
    for await (const item of spool.drain()) {
      expect(item.text).toBe(`line\n${item.n} "quoted"`);
      out.push(item.n);
    }
    expect(out).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    expect(spool.size).toBe(0);
    expect(readdirSync(tmp)).toHaveLength(0);
    rmSync(tmp, { recursive: true });
  });

  it('stays in memory when small', async () => {
    const spool = new Spool<string>();
    spool.push('a');
    spool.push('b');
    const out: string[] = [];
    for await (const item of spool.drain()) out.push(item);
    expect(out).toEqual(['a', 'b']);
  });
});

describe('normalization', () => {
  it('keys a vulnerability on its CVE, else a GHSA, else a scanner-scoped id', () => {
    expect(vulnerabilityKey('grype', ['GHSA-V6RH-HP5X-86RV', 'cve-2021-44420'])).toEqual({
      weaknessKey: 'CVE-2021-44420',
      aliases: ['GHSA-v6rh-hp5x-86rv'],
    });
    expect(vulnerabilityKey('grype', ['GHSA-v6rh-hp5x-86rv'])).toEqual({
      weaknessKey: 'GHSA-v6rh-hp5x-86rv',
      aliases: undefined,
    });
    expect(vulnerabilityKey('trivy', ['TEMP-0841856-B18BAF', 'DSA-1'])).toEqual({
      weaknessKey: 'trivy:TEMP-0841856-B18BAF',
      aliases: ['DSA-1'],
    });
    expect(vulnerabilityKey('trivy', [undefined, ' '])).toBeUndefined();
  });

  it('reads image references the same way whichever scanner wrote them', () => {
    expect(parseImageReference('nginx')).toEqual({ imageRepo: 'docker.io/library/nginx' });
    expect(parseImageReference('alpine:3.11')).toEqual({
      imageRepo: 'docker.io/library/alpine',
      imageTag: '3.11',
    });
    expect(parseImageReference('index.docker.io/library/redis:6')).toMatchObject({
      imageRepo: 'docker.io/library/redis',
    });
    expect(parseImageReference('localhost:5000/team/app:v1@sha256:' + 'a'.repeat(64))).toEqual({
      imageRepo: 'localhost:5000/team/app',
      imageTag: 'v1',
      imageDigest: 'sha256:' + 'a'.repeat(64),
    });
    expect(parseImageReference('not an image')).toBeUndefined();
  });

  it('normalizes severities, CWE ids and CVSS versions', () => {
    expect(
      ['CRITICAL', 'Important', 'moderate', 'Negligible', 'UNKNOWN', 'weird'].map(normalizeSeverity),
    ).toEqual(['critical', 'high', 'medium', 'info', 'unknown', 'unknown']);
    expect(
      ['CWE-79', 'external/cwe/cwe-079', 'CWE-327: Use of a Broken Algorithm', 'maintainability'].map(
        normalizeCwe,
      ),
    ).toEqual(['CWE-79', 'CWE-79', 'CWE-327', undefined]);
    expect(cvssVersion('CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H')).toBe('3.0');
    expect(cvssVersion('AV:N/AC:M/Au:N/C:N/I:P/A:N')).toBe('2.0');
    expect(cvssVersion(undefined, '3.1')).toBe('3.1');
  });

  it('bounds text in UTF-8 bytes and removes control characters PostgreSQL rejects', () => {
    expect(boundText('java 17.0.10+7\u0000-J')).toBe('java 17.0.10+7-J');
    const cut = boundText('é'.repeat(20_000), 16 * 1024)!;
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(16 * 1024);
    expect(cut.endsWith('é…')).toBe(true);
    expect(boundText('   ')).toBeUndefined();
  });
});
