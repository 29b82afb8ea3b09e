// Shared parts of the hostile-input tests: a sandbox thread with a heap cap and a per-input time
// limit, mutations of real samples (byte flips, truncation, duplication, deletion, injected DOCTYPEs
// and entities, huge attributes and strings, deep nesting), and the verdict every input must get:
// a clean result, or one clear error (InputError / ConfigError) naming the file.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { afterAll, expect } from 'vitest';
import type { FuzzReply, FuzzRequest } from './protocol.ts';

export const SHARED = path.resolve(process.cwd(), '../shared/data');
export const haveShared = existsSync(path.join(SHARED, 'scans'));
if (!haveShared) console.warn(`fuzz: ${SHARED} is absent; the real-sample mutations are skipped`);

/** Fixed by default so a failure reproduces; FUZZ_SEED=<n> explores elsewhere. */
export const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
/** Scales every property's runs (FUZZ_SCALE=10 for a long local run). */
export const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
export const runs = (n: number) => Math.max(1, Math.round(n * SCALE));

/** Generous: the machine is shared; a real hang never finishes at all. */
export const PER_INPUT_MS = 60_000;
export const HEAP_CAP_MB = 256;

export type Verdict =
  | FuzzReply
  | { id: number; ok: false; name: 'Timeout' | 'WorkerDied'; message: string; stack: ''; clear: false };

/** A worker thread running test/fuzz/parseWorker.ts; replaced when an input kills or hangs it. */
export class Sandbox {
  private worker?: Worker;
  private ready?: Promise<void>;
  private nextId = 1;
  private pending = new Map<number, (v: Verdict) => void>();
  inputs = 0;
  clean = 0;
  refused = 0;

  private start(): Promise<void> {
    const tsx = pathToFileURL(path.resolve('node_modules/tsx/dist/esm/api/index.mjs')).href;
    const entry = pathToFileURL(path.resolve('test/fuzz/parseWorker.ts')).href;
    // The worker's entry must be JavaScript: it registers tsx, then loads the TypeScript sandbox.
    const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
    const w = new Worker(code, {
      eval: true,
      resourceLimits: { maxOldGenerationSizeMb: HEAP_CAP_MB, maxYoungGenerationSizeMb: 32 },
      stdout: true,
      stderr: true,
    });
    this.worker = w;
    this.ready = new Promise((resolve, reject) => {
      w.once('message', () => resolve());
      w.once('error', reject);
    });
    w.on('message', (m: FuzzReply | { ready: true }) => {
      if ('id' in m) {
        this.pending.get(m.id)?.(m);
        this.pending.delete(m.id);
      }
    });
    w.on('error', (err) => this.failAll(`the sandbox thread died: ${err.message}`));
    w.on('exit', (code) => this.failAll(`the sandbox thread exited with code ${code}`));
    return this.ready;
  }

  private failAll(message: string): void {
    for (const [id, resolve] of this.pending)
      resolve({ id, ok: false, name: 'WorkerDied', message, stack: '', clear: false });
    this.pending.clear();
    this.worker = undefined;
  }

  async run(req: Omit<FuzzRequest, 'id'>, timeoutMs = PER_INPUT_MS): Promise<Verdict> {
    if (!this.worker) await this.start();
    else await this.ready;
    const w = this.worker!;
    const id = this.nextId++;
    this.inputs++;
    return await new Promise<Verdict>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.worker = undefined;
        void w.terminate();
        resolve({
          id,
          ok: false,
          name: 'Timeout',
          message: `no answer in ${timeoutMs} ms`,
          stack: '',
          clear: false,
        });
      }, timeoutMs);
      this.pending.set(id, (v) => {
        clearTimeout(timer);
        if (v.ok) this.clean++;
        else if (v.clear) this.refused++;
        resolve(v);
      });
      w.postMessage({ ...req, id });
    });
  }

  async stop(): Promise<void> {
    await this.worker?.terminate();
    this.worker = undefined;
  }
}

/** A clean result, or one clear error that names the file: anything else fails with the input. */
export function expectCleanOrClear(v: Verdict, file: string, what: string): void {
  if (v.ok) return;
  const detail = `${what}: ${v.name}: ${v.message}\n${v.stack.split('\n').slice(0, 6).join('\n')}`;
  expect(v.clear, detail).toBe(true);
  expect(v.message, detail).toContain(file);
}

/** Inputs fuzzed by each test file, printed when the file ends (the issue's closing note wants it). */
export function reportCount(label: string, sandbox: Sandbox, extra: () => number = () => 0): void {
  afterAll(async () => {
    console.log(
      `fuzz ${label}: ${sandbox.inputs + extra()} inputs (${sandbox.clean} parsed cleanly, ${sandbox.refused} refused with a clear error; seed ${SEED}, scale ${SCALE})`,
    );
    await sandbox.stop();
  });
}

export function sample(rel: string): Buffer {
  return readFileSync(path.join(SHARED, 'scans', rel));
}

export function fixture(rel: string): Buffer {
  return readFileSync(path.resolve('test/fixtures/scans', rel));
}

// ---- mutations --------------------------------------------------------------------------------

export type Mutation =
  | { kind: 'flip'; at: number[]; value: number[] }
  | { kind: 'truncate'; at: number }
  | { kind: 'duplicate'; from: number; len: number; to: number }
  | { kind: 'delete'; from: number; len: number }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'doctype'; decl: string }
  | { kind: 'hugeAttribute'; size: number }
  | { kind: 'hugeString'; size: number }
  | { kind: 'nest'; depth: number };

const hostileTokens = [
  '<',
  '>',
  '"',
  "'",
  '&',
  '&lt',
  '&#0;',
  '&#xFFFFFFFF;',
  '&undefined;',
  ']]>',
  '<![CDATA[',
  '<!--',
  '\u0000',
  '\uFFFD',
  '\uD800',
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  '\\',
  '\\u',
  '\\uD800',
  '1e999999',
  '-0',
  'null',
  'NaN',
  '"__proto__":{"polluted":1},',
  '"constructor":{"prototype":{"polluted":1}},',
  '\r\n',
  '\n"',
  ';',
  "=cmd|' /C calc'!A0",
];

const doctypes = [
  // billion laughs
  `<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">]>`,
  // XXE
  `<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>`,
  // external DTD
  `<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">`,
  // parameter entity
  `<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>`,
  // a DOCTYPE that never ends
  `<!DOCTYPE r [<!ENTITY x "`,
];

const pos = fc.nat({ max: 1 << 24 });

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('flip' as const),
      at: fc.array(pos, { minLength: 1, maxLength: 8 }),
      value: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 8, maxLength: 8 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: pos }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('duplicate' as const),
      from: pos,
      len: fc.integer({ min: 1, max: 8192 }),
      to: pos,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('delete' as const),
      from: pos,
      len: fc.integer({ min: 1, max: 4096 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('insert' as const),
      at: pos,
      text: fc.constantFrom(...hostileTokens),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('doctype' as const), decl: fc.constantFrom(...doctypes) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('hugeAttribute' as const),
      size: fc.integer({ min: 100_000, max: 1_500_000 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('hugeString' as const),
      size: fc.integer({ min: 100_000, max: 1_500_000 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('nest' as const),
      depth: fc.integer({ min: 100, max: 200_000 }),
    }),
  },
);

export const mutationsArb = fc.array(mutationArb, { minLength: 1, maxLength: 3 });

/** Where the first element or object opens (attributes and strings are injected there). */
function firstOpen(buf: Buffer, xml: boolean): number {
  if (xml) {
    for (let i = buf.indexOf('<'); i >= 0 && i < buf.length; i = buf.indexOf('<', i + 1)) {
      const c = buf[i + 1];
      if (c !== undefined && c !== 0x3f && c !== 0x21) {
        const end = buf.indexOf('>', i);
        return end > i ? (buf[end - 1] === 0x2f ? end - 1 : end) : i + 1;
      }
    }
    return 0;
  }
  const i = buf.indexOf('{');
  return i >= 0 ? i + 1 : 0;
}

export function mutate(input: Buffer, mutations: Mutation[], xml: boolean): Buffer {
  let buf = input;
  for (const m of mutations) {
    const at = (n: number) => (buf.length === 0 ? 0 : n % (buf.length + 1));
    switch (m.kind) {
      case 'flip': {
        buf = Buffer.from(buf);
        m.at.forEach((p, i) => {
          if (buf.length) buf[p % buf.length] = m.value[i]!;
        });
        break;
      }
      case 'truncate':
        buf = buf.subarray(0, at(m.at));
        break;
      case 'duplicate': {
        const from = at(m.from);
        const piece = buf.subarray(from, from + m.len);
        const to = at(m.to);
        buf = Buffer.concat([buf.subarray(0, to), piece, buf.subarray(to)]);
        break;
      }
      case 'delete': {
        const from = at(m.from);
        buf = Buffer.concat([buf.subarray(0, from), buf.subarray(from + m.len)]);
        break;
      }
      case 'insert': {
        const p = at(m.at);
        buf = Buffer.concat([buf.subarray(0, p), Buffer.from(m.text), buf.subarray(p)]);
        break;
      }
      case 'doctype': {
        // After an XML declaration when there is one, else at the very start.
        const decl = buf
          .subarray(0, 200)
          .toString('latin1')
          .match(/^\uFEFF?<\?xml[^>]*\?>/);
        const p = decl ? Buffer.byteLength(decl[0], 'latin1') : 0;
        const use = xml ? `${m.decl}<r>&e;&xxe;</r>` : m.decl;
        buf = Buffer.concat([buf.subarray(0, p), Buffer.from(xml ? m.decl : use), buf.subarray(p)]);
        break;
      }
      case 'hugeAttribute': {
        const p = firstOpen(buf, true);
        buf = Buffer.concat([
          buf.subarray(0, p),
          Buffer.from(` huge="${'A'.repeat(m.size)}"`),
          buf.subarray(p),
        ]);
        break;
      }
      case 'hugeString': {
        const p = firstOpen(buf, xml);
        const piece = xml ? `<huge>${'B'.repeat(m.size)}</huge>` : `"huge":"${'B'.repeat(m.size)}",`;
        const q = xml ? (buf.indexOf('>', p) >= 0 ? buf.indexOf('>', p) + 1 : p) : p;
        buf = Buffer.concat([buf.subarray(0, q), Buffer.from(piece), buf.subarray(q)]);
        break;
      }
      case 'nest': {
        const p = firstOpen(buf, xml);
        const q = xml ? (buf.indexOf('>', p) >= 0 ? buf.indexOf('>', p) + 1 : p) : p;
        const piece = xml
          ? '<n>'.repeat(m.depth) + '</n>'.repeat(m.depth)
          : `"n":${'['.repeat(m.depth)}${']'.repeat(m.depth)},`;
        buf = Buffer.concat([buf.subarray(0, q), Buffer.from(piece), buf.subarray(q)]);
        break;
      }
    }
  }
  return buf;
}

/** Describe a mutated input briefly for a failure message (never the whole buffer). */
export function describeInput(file: string, mutations: Mutation[]): string {
  return `${file} with ${JSON.stringify(mutations, (_k, v: unknown) => (typeof v === 'string' && v.length > 80 ? `${v.slice(0, 80)}…` : v))}`;
}
