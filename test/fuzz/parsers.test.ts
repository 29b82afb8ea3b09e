// Hostile input for every scanner parser: real samples from ../shared/data (and the project's own
// fixtures) mutated at random — byte flips, truncation, duplicated and deleted slices, hostile
// tokens, injected DOCTYPEs with entities, huge attributes and strings, deep nesting — plus JSON
// whose values are swapped for values of any other type, plus random bytes. Each input runs in a
// sandbox thread with a heap cap and a time limit, and must end in a clean result or one clear
// InputError naming the file. Never a TypeError, a RangeError, a hang or an out-of-memory death.
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { FORMATS } from '../../scanners/registry.ts';
import {
  SEED,
  Sandbox,
  describeInput,
  expectCleanOrClear,
  fixture,
  haveShared,
  mutate,
  mutationsArb,
  reportCount,
  runs,
  sample,
} from './support.ts';

// Property runs take seconds on a quiet machine and far longer on a loaded one: no speed is asserted.
vi.setConfig({ testTimeout: 300_000 });

const sandbox = new Sandbox();
reportCount('parsers', sandbox);

/** Real samples per format: small ones, so many mutations fit in the time budget. */
const SAMPLES: Record<string, { shared: string[]; fixtures: string[]; xml: boolean }> = {
  trivy: {
    shared: [
      'trivy/scheme_2_many_vulns.json',
      'trivy/misconfigurations_and_secrets.json',
      'trivy/legacy_trivy_mix.json',
      'trivy/cvssv4_severity_source.json',
    ],
    fixtures: ['trivy-bad-string.json', 'trivy-results-object.json'],
    xml: false,
  },
  'trivy-operator': {
    shared: [
      'trivy_operator/vulnerabilityreport_extended.json',
      'trivy_operator/findings_in_list.json',
      'trivy_operator/configauditreport_with_remediation.json',
      'trivy_operator/exposedsecretreport_many.json',
    ],
    fixtures: [],
    xml: false,
  },
  grype: {
    shared: [
      'anchore_grype/check_all_fields.json',
      'anchore_grype/fix_available.json',
      'anchore_grype/many_vulns4.json',
    ],
    fixtures: ['grype-matches-object.json'],
    xml: false,
  },
  sarif: {
    shared: [
      'sarif/appendix_k.sarif',
      'sarif/njsscan.sarif',
      'sarif/blackduck_nested_fingerprints.sarif',
      'sarif/suppression_test.sarif',
    ],
    fixtures: ['sarif-1.0.sarif'],
    xml: false,
  },
  nessus: { shared: [], fixtures: ['nessus-fields.nessus', 'nessus-truncated.nessus'], xml: true },
  openvas: {
    shared: ['openvas/report_detail_v2.xml', 'openvas/one_vuln.xml'],
    fixtures: ['openvas-overrides.xml'],
    xml: true,
  },
  nmap: {
    shared: ['nmap/nmap_1port.xml', 'nmap/issue12411.xml', 'nmap/nmap_script_vulners.xml'],
    fixtures: ['nmap-hosts.xml'],
    xml: true,
  },
  qualys: { shared: [], fixtures: ['qualys-host-detection.xml', 'qualys-api-error.xml'], xml: true },
  'nessus-csv': {
    shared: ['nessus/nessus_many_vuln.csv', 'tenable/issue_9612.csv'],
    fixtures: [],
    xml: false,
  },
  'openvas-csv': { shared: ['openvas/many_vuln.csv', 'openvas/one_vuln.csv'], fixtures: [], xml: false },
  'qualys-csv': { shared: ['qualys/monthly_pci_issue6932.csv'], fixtures: [], xml: false },
};

function samplesOf(format: string): { name: string; bytes: Buffer }[] {
  const s = SAMPLES[format]!;
  return [
    ...(haveShared ? s.shared.map((rel) => ({ name: rel.split('/').pop()!, bytes: sample(rel) })) : []),
    ...s.fixtures.map((rel) => ({ name: rel, bytes: fixture(rel) })),
  ];
}

/** Every value path of a JSON document (for swapping one value for a value of another type). */
function jsonPaths(v: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []) {
  out.push(prefix);
  if (out.length > 5000) return out;
  if (Array.isArray(v)) v.forEach((x, i) => jsonPaths(x, [...prefix, i], out));
  else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) jsonPaths(x, [...prefix, k], out);
  return out;
}

function replaceAt(doc: unknown, p: (string | number)[], value: unknown): unknown {
  if (p.length === 0) return value;
  const copy: unknown = structuredClone(doc);
  let node = copy as Record<string | number, unknown>;
  for (const k of p.slice(0, -1)) node = node[k] as Record<string | number, unknown>;
  node[p.at(-1)!] = value;
  return copy;
}

describe('every parser is covered', () => {
  it('has samples for every registered format', ({ expect }) => {
    expect(Object.keys(SAMPLES).sort()).toEqual([...FORMATS].sort());
  });
});

describe.each(Object.keys(SAMPLES))('%s parser under hostile input', (format) => {
  const samples = samplesOf(format);
  const xml = SAMPLES[format]!.xml;

  it('survives mutations of real samples', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: samples.length - 1 }), mutationsArb, async (i, mutations) => {
        const s = samples[i]!;
        const bytes = mutate(s.bytes, mutations, xml);
        const v = await sandbox.run({ mode: 'parser', format, file: s.name, bytes });
        expectCleanOrClear(v, s.name, describeInput(s.name, mutations));
      }),
      { seed: SEED, numRuns: runs(30) },
    );
  });

  it.skipIf(xml || format.endsWith('-csv'))(
    'survives any value of any type anywhere in the document',
    async () => {
      const docs = samples.flatMap((s) => {
        try {
          const doc: unknown = JSON.parse(s.bytes.toString('utf8'));
          return [{ name: s.name, doc, paths: jsonPaths(doc) }];
        } catch {
          return [];
        }
      });
      await fc.assert(
        fc.asyncProperty(
          fc.nat({ max: docs.length - 1 }),
          fc.nat(),
          fc.jsonValue({ maxDepth: 3 }),
          async (i, at, value) => {
            const d = docs[i]!;
            const p = d.paths[at % d.paths.length]!;
            const bytes = Buffer.from(JSON.stringify(replaceAt(d.doc, p, value)));
            const v = await sandbox.run({ mode: 'parser', format, file: d.name, bytes });
            expectCleanOrClear(
              v,
              d.name,
              `${d.name} with ${JSON.stringify(p)} = ${JSON.stringify(value)?.slice(0, 200)}`,
            );
          },
        ),
        { seed: SEED, numRuns: runs(30) },
      );
    },
  );

  it('survives random bytes and random text', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)),
          fc.string({ unit: 'binary', maxLength: 1024 }).map((s) => Buffer.from(s)),
          fc.jsonValue().map((j) => Buffer.from(JSON.stringify(j))),
        ),
        async (bytes) => {
          const file = `random.${xml ? 'xml' : format.endsWith('-csv') ? 'csv' : 'json'}`;
          const v = await sandbox.run({ mode: 'parser', format, file, bytes });
          expectCleanOrClear(v, file, `random input ${bytes.subarray(0, 80).toString('hex')}`);
        },
      ),
      { seed: SEED, numRuns: runs(12) },
    );
  });
});

describe('parseReport (gzip, byte-order marks, format detection) under hostile input', () => {
  it('detects or refuses mutated reports of every format with one clear error', async () => {
    const all = Object.keys(SAMPLES).flatMap((f) =>
      samplesOf(f).map((s) => ({ ...s, xml: SAMPLES[f]!.xml })),
    );
    const { gzipSync } = await import('node:zlib');
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: all.length - 1 }),
        mutationsArb,
        fc.constantFrom('plain', 'gzip', 'bom', 'utf16', 'gzip-truncated'),
        async (i, mutations, wrap) => {
          const s = all[i]!;
          let bytes = mutate(s.bytes, mutations, s.xml);
          if (wrap === 'gzip') bytes = gzipSync(bytes);
          if (wrap === 'gzip-truncated') bytes = gzipSync(bytes).subarray(0, Math.max(10, bytes.length >> 3));
          if (wrap === 'bom') bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes]);
          if (wrap === 'utf16')
            bytes = Buffer.concat([
              Buffer.from([0xff, 0xfe]),
              Buffer.from(bytes.toString('utf8'), 'utf16le'),
            ]);
          const v = await sandbox.run({ mode: 'report', file: s.name, bytes });
          expectCleanOrClear(v, s.name, `${wrap} ${describeInput(s.name, mutations)}`);
        },
      ),
      { seed: SEED, numRuns: runs(40) },
    );
  });
});

describe('gigantic nodes, past every parser limit, inside the sandbox heap cap', () => {
  // Each node is larger than the parsers' 8 MiB token, value and record limits; the sandbox has a
  // 256 MB heap, so a parser that buffered it several times over would die out of memory instead.
  const GIANT = 12 * 1024 * 1024;
  const inject = (bytes: Buffer, marker: string, piece: Buffer): Buffer => {
    const at = bytes.indexOf(marker) + marker.length;
    expect(at).toBeGreaterThan(marker.length - 1);
    return Buffer.concat([bytes.subarray(0, at), piece, bytes.subarray(at)]);
  };
  const cases: [string, string, () => Buffer][] = [
    [
      'nessus',
      'nessus-fields.nessus',
      () =>
        inject(
          fixture('nessus-fields.nessus'),
          '<ReportHost',
          Buffer.concat([Buffer.from(' huge="'), Buffer.alloc(GIANT, 'A'), Buffer.from('"')]),
        ),
    ],
    [
      'nmap',
      'nmap-hosts.xml',
      () =>
        inject(
          fixture('nmap-hosts.xml'),
          '<host',
          Buffer.concat([Buffer.from(' huge="'), Buffer.alloc(GIANT, 'A'), Buffer.from('"')]),
        ),
    ],
    [
      'qualys',
      'qualys-host-detection.xml',
      () =>
        inject(
          fixture('qualys-host-detection.xml'),
          '<HOST_LIST_VM_DETECTION_OUTPUT>',
          Buffer.concat([Buffer.from('<X>'), Buffer.alloc(GIANT, 'T'), Buffer.from('</X>')]),
        ),
    ],
    ...(haveShared
      ? ([
          [
            'trivy',
            'scheme_2_many_vulns.json',
            () =>
              inject(sample('trivy/scheme_2_many_vulns.json'), '"Description": "', Buffer.alloc(GIANT, 'D')),
          ],
          [
            'grype',
            'check_all_fields.json',
            () =>
              inject(
                sample('anchore_grype/check_all_fields.json'),
                '"description": "',
                Buffer.alloc(GIANT, 'D'),
              ),
          ],
        ] as [string, string, () => Buffer][])
      : []),
    [
      'nessus-csv',
      'huge.csv',
      () =>
        Buffer.concat([
          Buffer.from('"Plugin ID","Host","Name","Risk","Description"\n"1","web-01","x","High","'),
          Buffer.alloc(GIANT, 'D'),
          Buffer.from('"\n'),
        ]),
    ],
  ];
  it.each(cases)(
    '%s: a 12 MB node in %s is refused with a clear error',
    async (format, name, build) => {
      const v = await sandbox.run({ mode: 'parser', format, file: name, bytes: build() }, 120_000);
      expect(v, JSON.stringify(v).slice(0, 300)).toMatchObject({ ok: false, clear: true });
      expect(v.ok ? '' : v.message).toMatch(/longer than|larger than|too large|too long|exceed|limit|MiB/i);
    },
    180_000,
  );
});
