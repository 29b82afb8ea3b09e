// Hostile input for the configuration and policy loaders (domain/config.ts parseYamlWithSchema under
// parseConfig and parsePolicy, runtime/config.ts loadConfig, intel/policyFiles.ts) and for
// format detection: the real ctem.example.yaml and policies/default.yaml mutated at random (byte flips,
// truncation, duplicated lines, YAML tokens: anchors, aliases, merge keys, tags, tabs, deep nesting),
// random YAML documents, and alias bombs. Each must give a clean result or one ConfigError naming
// the file (with a line where the problem has one), in bounded time and memory (sandbox thread).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it, vi } from 'vitest';
import { detectFormat } from '../../scanners/registry.ts';
import { readPolicyFile } from '../../intel/policyFiles.ts';
import { InputError } from '../../domain/finding.ts';
import { ConfigError } from '../../domain/config.ts';
import { loadConfig } from '../../runtime/config.ts';
import {
  SEED,
  Sandbox,
  describeInput,
  expectCleanOrClear,
  mutate,
  mutationsArb,
  reportCount,
  runs,
} from './support.ts';

// Property runs take seconds on a quiet machine and far longer on a loaded one: no speed is asserted.
vi.setConfig({ testTimeout: 300_000 });

const sandbox = new Sandbox();
let inProcess = 0;
reportCount('loaders', sandbox, () => inProcess);

const EXAMPLE = readFileSync('ctem.example.yaml');
const POLICY = readFileSync('policies/default.yaml');

const yamlTokens = [
  '&a ',
  '*a',
  '*undefined_anchor',
  '<<: *a\n',
  '!!js/function ',
  '!!binary ',
  '!!python/object:os.system ',
  '!!str ',
  '\t',
  ': ',
  '- ',
  '? ',
  '|\n',
  '>-\n',
  '---\n',
  '...\n',
  '%YAML 1.1\n',
  '{',
  '[',
  '"',
  "'",
  '#',
  '\u0000',
  '\uFEFF',
  '__proto__: {polluted: true}\n',
  'version: 2\n',
];

/** A line-level mutation of a YAML text: duplicate, delete, or insert a YAML token into a line. */
const lineEdit = fc.record({
  line: fc.nat(),
  op: fc.constantFrom('duplicate', 'delete', 'token', 'indent', 'dedent'),
  token: fc.constantFrom(...yamlTokens),
  col: fc.nat({ max: 40 }),
});

function editLines(text: string, edits: { line: number; op: string; token: string; col: number }[]): string {
  const lines = text.split('\n');
  for (const e of edits) {
    const i = e.line % lines.length;
    const l = lines[i]!;
    switch (e.op) {
      case 'duplicate':
        lines.splice(i, 0, l);
        break;
      case 'delete':
        lines.splice(i, 1);
        break;
      case 'token':
        lines[i] = l.slice(0, e.col) + e.token + l.slice(e.col);
        break;
      case 'indent':
        lines[i] = `  ${l}`;
        break;
      case 'dedent':
        lines[i] = l.replace(/^ {1,2}/, '');
        break;
    }
  }
  return lines.join('\n');
}

function aliasBomb(levels: number, width: number): string {
  const out = ['version: 1', `l0: &l0 [${Array(width).fill('"lol"').join(', ')}]`];
  for (let i = 1; i < levels; i++)
    out.push(
      `l${i}: &l${i} [${Array(width)
        .fill(`*l${i - 1}`)
        .join(', ')}]`,
    );
  return `${out.join('\n')}\n`;
}

describe.each([
  { mode: 'config' as const, file: 'ctem.example.yaml', text: EXAMPLE },
  { mode: 'policy' as const, file: 'default.yaml', text: POLICY },
])('the $mode loader under hostile input', ({ mode, file, text }) => {
  it('the unmutated file loads (the control)', async () => {
    const v = await sandbox.run({ mode, file, bytes: text });
    expect(v).toMatchObject({ ok: true });
  });

  it('survives line edits with YAML tokens (anchors, aliases, merge keys, tags, tabs)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(lineEdit, { minLength: 1, maxLength: 4 }), async (edits) => {
        const bytes = Buffer.from(editLines(text.toString('utf8'), edits));
        const v = await sandbox.run({ mode, file, bytes });
        expectCleanOrClear(v, file, `${file} with ${JSON.stringify(edits)}`);
        // A schema or syntax problem says where it is.
        if (!v.ok && !/alias|anchor/i.test(v.message))
          expect(v.message, JSON.stringify(edits)).toMatch(/:\d+:\d+: /);
      }),
      { seed: SEED, numRuns: runs(60) },
    );
  });

  it('survives byte-level mutations', async () => {
    await fc.assert(
      fc.asyncProperty(mutationsArb, async (mutations) => {
        const bytes = mutate(text, mutations, false);
        const v = await sandbox.run({ mode, file, bytes });
        expectCleanOrClear(v, file, describeInput(file, mutations));
      }),
      { seed: SEED, numRuns: runs(40) },
    );
  });

  it('survives random YAML documents', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), fc.boolean(), async (value, withVersion) => {
        const doc =
          withVersion && value && typeof value === 'object' && !Array.isArray(value)
            ? { version: 1, ...value }
            : value;
        const bytes = Buffer.from(stringify(doc));
        const v = await sandbox.run({ mode, file, bytes });
        expectCleanOrClear(v, file, `random YAML ${JSON.stringify(doc).slice(0, 200)}`);
      }),
      { seed: SEED, numRuns: runs(30) },
    );
  });

  it('refuses alias bombs and dangling aliases with a ConfigError, quickly', async () => {
    for (const bytes of [
      aliasBomb(9, 9),
      aliasBomb(30, 2),
      'version: 1\nhttp: *nowhere\n',
      'version: 1\n<<: *nowhere\n',
    ].map((t) => Buffer.from(t))) {
      const v = await sandbox.run({ mode, file, bytes });
      expect(v).toMatchObject({ ok: false, clear: true });
      expect(v.ok ? '' : v.message).toContain(file);
    }
  });
});

describe('loadConfig and readPolicyFile on files', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ctem-fuzz-load-'));

  it('name the file and line for a broken file, and say what to do for a missing one', () => {
    const broken = path.join(dir, 'ctem.yaml');
    writeFileSync(broken, 'version: 1\nhttp:\n  port: "eighty"\n');
    expect(() => loadConfig(broken, {})).toThrow(ConfigError);
    expect(() => loadConfig(broken, {})).toThrow(/ctem\.yaml:3:\d+: http\.port/);
    expect(() => loadConfig(path.join(dir, 'nope.yaml'), {})).toThrow(
      /file not found; copy ctem.example.yaml/,
    );
    writeFileSync(broken, aliasBomb(9, 9));
    expect(() => loadConfig(broken, {})).toThrow(ConfigError);
    expect(() => readPolicyFile(path.join(dir, 'none.yaml'))).toThrow(/the policy file cannot be read/);
    writeFileSync(path.join(dir, 'p.yaml'), 'name: x\nversion: "1"\ntree: *t\n');
    expect(() => readPolicyFile(path.join(dir, 'p.yaml'))).toThrow(ConfigError);
    inProcess += 6;
  });
});

describe('format detection under hostile heads', () => {
  it('picks one parser or throws one InputError naming the file, for any head and name', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 2048 }),
          fc.jsonValue().map((j) => JSON.stringify(j)),
          fc
            .constantFrom(
              '<?xml version="1.0"?><NessusClientData_v2>',
              '{"SchemaVersion": 2',
              '<nmaprun',
              '"Plugin ID","Host"',
              '{"$schema":"sarif"',
            )
            .chain((p) => fc.string({ maxLength: 200 }).map((s) => p + s)),
        ),
        fc.constantFrom('report.json', 'scan.nessus', 'x.xml', 'a.csv', 'b.sarif', 'noext', ''),
        (head, name) => {
          inProcess++;
          try {
            const parser = detectFormat(head, name, `/in/${name || 'unnamed'}`);
            expect(typeof parser.format).toBe('string');
          } catch (err) {
            expect(err).toBeInstanceOf(InputError);
            expect((err as Error).message).toContain(`/in/${name || 'unnamed'}`);
          }
        },
      ),
      { seed: SEED, numRuns: runs(300) },
    );
  });
});
