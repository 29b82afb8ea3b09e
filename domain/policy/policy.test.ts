import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../config.ts';
import { decidePriority, type PriorityFacts } from './decide.ts';
import { compileDecisionTable, cvssBucket } from './decisionTable.ts';
import { parsePolicy } from './schema.ts';
import { sha256Hex } from './sha256.ts';
import { technicalImpactFromCvss } from './ssvc.ts';
import { baseCharacteristics, parseCvssVector } from '../cvss.ts';

const DEFAULT_FILE = path.resolve(import.meta.dirname, '../../policies/default.yaml');
const defaultText = readFileSync(DEFAULT_FILE, 'utf8');
const policy = parsePolicy(defaultText, 'policies/default.yaml');
const NOW = new Date('2026-11-21T09:00:00Z');

// CERT/CC SSVC "Deployer Patch Application Priority" v1.0.0, row by row as published in
// github.com/CERTCC/SSVC data/csv/ssvc/deployer_patch_application_priority_1_0_0.csv
// (Exploitation, System Exposure, Automatable, Human Impact → defer/scheduled/out-of-cycle/immediate).
const DEPLOYER_TREE = `
none,small,no,low,defer
none,small,no,medium,defer
none,small,no,high,scheduled
none,small,no,very high,scheduled
none,small,yes,low,defer
none,small,yes,medium,scheduled
none,small,yes,high,scheduled
none,small,yes,very high,scheduled
none,controlled,no,low,defer
none,controlled,no,medium,scheduled
none,controlled,no,high,scheduled
none,controlled,no,very high,scheduled
none,controlled,yes,low,scheduled
none,controlled,yes,medium,scheduled
none,controlled,yes,high,scheduled
none,controlled,yes,very high,scheduled
none,open,no,low,defer
none,open,no,medium,scheduled
none,open,no,high,scheduled
none,open,no,very high,scheduled
none,open,yes,low,scheduled
none,open,yes,medium,scheduled
none,open,yes,high,scheduled
none,open,yes,very high,out-of-cycle
public poc,small,no,low,defer
public poc,small,no,medium,scheduled
public poc,small,no,high,scheduled
public poc,small,no,very high,scheduled
public poc,small,yes,low,scheduled
public poc,small,yes,medium,scheduled
public poc,small,yes,high,scheduled
public poc,small,yes,very high,scheduled
public poc,controlled,no,low,defer
public poc,controlled,no,medium,scheduled
public poc,controlled,no,high,scheduled
public poc,controlled,no,very high,scheduled
public poc,controlled,yes,low,scheduled
public poc,controlled,yes,medium,scheduled
public poc,controlled,yes,high,scheduled
public poc,controlled,yes,very high,out-of-cycle
public poc,open,no,low,scheduled
public poc,open,no,medium,scheduled
public poc,open,no,high,scheduled
public poc,open,no,very high,out-of-cycle
public poc,open,yes,low,scheduled
public poc,open,yes,medium,scheduled
public poc,open,yes,high,out-of-cycle
public poc,open,yes,very high,out-of-cycle
active,small,no,low,scheduled
active,small,no,medium,scheduled
active,small,no,high,out-of-cycle
active,small,no,very high,out-of-cycle
active,small,yes,low,scheduled
active,small,yes,medium,out-of-cycle
active,small,yes,high,out-of-cycle
active,small,yes,very high,out-of-cycle
active,controlled,no,low,scheduled
active,controlled,no,medium,scheduled
active,controlled,no,high,out-of-cycle
active,controlled,no,very high,out-of-cycle
active,controlled,yes,low,out-of-cycle
active,controlled,yes,medium,out-of-cycle
active,controlled,yes,high,out-of-cycle
active,controlled,yes,very high,out-of-cycle
active,open,no,low,scheduled
active,open,no,medium,out-of-cycle
active,open,no,high,out-of-cycle
active,open,no,very high,immediate
active,open,yes,low,out-of-cycle
active,open,yes,medium,out-of-cycle
active,open,yes,high,immediate
active,open,yes,very high,immediate
`
  .trim()
  .split('\n')
  .map((l) => l.split(','));

// The deployer tree's outcomes under CISA's names, and the default policy's SLA per outcome.
const CISA_NAME = {
  defer: 'track',
  scheduled: 'track*',
  'out-of-cycle': 'attend',
  immediate: 'act',
} as const;
const SLA_DAYS = { track: 180, 'track*': 90, attend: 30, act: 7 } as const;
// Default policy: asset criticality × technical impact → human impact.
const HUMAN_IMPACT: Record<string, Record<string, string>> = {
  low: { partial: 'low', total: 'low' },
  medium: { partial: 'low', total: 'medium' },
  high: { partial: 'medium', total: 'high' },
  critical: { partial: 'high', total: 'very high' },
};
const REACHABILITY_FOR = { small: 'isolated', controlled: 'internal', open: 'internet' } as const;

function facts(
  over: Omit<Partial<PriorityFacts>, 'asset'> & { asset?: Partial<PriorityFacts['asset']> } = {},
): PriorityFacts {
  return {
    weakness: 'CVE-2024-0001',
    firstSeen: '2026-11-01T00:00:00Z',
    ...over,
    asset: { criticality: 'medium', reachability: 'internal', ...over.asset },
  };
}

const addDays = (iso: string, days: number): string =>
  new Date(Date.parse(iso) + days * 86_400_000).toISOString();

describe('the default policy over the whole SSVC deployer decision space', () => {
  it('has exactly the 72 rows of the published tree', () => {
    expect(DEPLOYER_TREE).toHaveLength(72);
    expect(policy.tree).toHaveLength(72);
  });

  // Every combination of exploitation × exposure × automatable × technical impact × criticality
  // (3 × 3 × 2 × 2 × 4 = 144), with the expected outcome looked up in the tables above.
  const cases = [];
  for (const exploitation of ['none', 'public poc', 'active'] as const)
    for (const exposure of ['small', 'controlled', 'open'] as const)
      for (const automatable of ['no', 'yes'] as const)
        for (const technicalImpact of ['partial', 'total'] as const)
          for (const criticality of ['low', 'medium', 'high', 'critical'] as const) {
            const humanImpact = HUMAN_IMPACT[criticality]![technicalImpact]!;
            const row = DEPLOYER_TREE.find(
              (r) =>
                r[0] === exploitation && r[1] === exposure && r[2] === automatable && r[3] === humanImpact,
            )!;
            const expected = CISA_NAME[row[4] as keyof typeof CISA_NAME];
            cases.push({
              exploitation,
              exposure,
              automatable,
              technicalImpact,
              criticality,
              humanImpact,
              expected,
            });
          }

  const reached = new Set(
    cases.map((c) => [c.exploitation, c.exposure, c.automatable, c.humanImpact].join(',')),
  );
  it('reaches every one of the 72 rows through the policy inputs (criticality × technical impact → human impact)', () => {
    expect([...reached].sort()).toEqual(DEPLOYER_TREE.map((r) => r.slice(0, 4).join(',')).sort());
  });

  it.each(cases)(
    '$exploitation / $exposure / automatable $automatable / $technicalImpact impact on a $criticality asset (human impact $humanImpact) → $expected',
    ({ exploitation, exposure, automatable, technicalImpact, criticality, humanImpact, expected }) => {
      const d = decidePriority(
        policy,
        facts({
          ssvc: { exploitation, automatable, technicalImpact },
          asset: { criticality, reachability: REACHABILITY_FOR[exposure] },
        }),
        NOW,
      );
      expect(d.points.exploitation.value).toBe(exploitation);
      expect(d.points.exposure.value).toBe(exposure);
      expect(d.points.humanImpact.value).toBe(humanImpact);
      expect(d.outcome).toBe(expected);
      expect(d.treeOutcome).toBe(expected);
      // No KEV, no CVSS: the outcome's SLA from first seen.
      expect(d.dueAt).toBe(addDays('2026-11-01T00:00:00Z', SLA_DAYS[expected]));
      expect(d.deadlineRule).toBe(`outcome:${expected}`);
    },
  );
});

describe('evidence → decision points', () => {
  it('KEV means active exploitation, with the date in the reason', () => {
    const d = decidePriority(policy, facts({ kev: { dateAdded: '2021-12-10' } }), NOW);
    expect(d.points.exploitation).toEqual({ value: 'active', because: 'in CISA KEV since 2021-12-10' });
  });

  it('EPSS ≥ 0.5 is active, top 5% or ≥ 0.1 is a public PoC, below is none', () => {
    const at = (probability: number, percentile: number) =>
      decidePriority(policy, facts({ epss: { probability, percentile } }), NOW).points.exploitation.value;
    expect(at(0.5, 0.99)).toBe('active');
    expect(at(0.49, 0.99)).toBe('public poc');
    expect(at(0.1, 0.5)).toBe('public poc');
    expect(at(0.02, 0.95)).toBe('public poc');
    expect(at(0.02, 0.94)).toBe('none');
  });

  it('the strongest evidence wins and every source of it is named', () => {
    const d = decidePriority(
      policy,
      facts({
        kev: { dateAdded: '2024-01-02' },
        ssvc: { exploitation: 'public poc' },
        epss: { probability: 0.97, percentile: 0.9995 },
      }),
      NOW,
    );
    expect(d.points.exploitation.value).toBe('active');
    expect(d.points.exploitation.because).toBe(
      'in CISA KEV since 2024-01-02; EPSS 0.97 (99.9th pct) meets probability ≥ 0.5',
    );
  });

  it('exploit maturity in the published vector counts (v4 E:A active, v3 E:F public poc)', () => {
    const v4 = 'CVSS:4.0/AV:L/AC:H/AT:P/PR:H/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N/E:A';
    expect(decidePriority(policy, facts({ cvss: { vector: v4 } }), NOW).points.exploitation.value).toBe(
      'active',
    );
    const v3 = 'CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N/E:F';
    expect(decidePriority(policy, facts({ cvss: { vector: v3 } }), NOW).points.exploitation.value).toBe(
      'public poc',
    );
  });

  it('automatable from CVSS: network, low complexity, no privileges, no user (and AT:N in v4)', () => {
    const auto = (vector: string) =>
      decidePriority(policy, facts({ cvss: { vector } }), NOW).points.automatable.value;
    expect(auto('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N')).toBe('yes');
    expect(auto('CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:N/A:N')).toBe('no');
    expect(auto('CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N')).toBe('no');
    expect(auto('CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N')).toBe('yes');
    expect(auto('CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N')).toBe('no');
    // CISA's SSVC assessment wins over the vector.
    expect(
      decidePriority(
        policy,
        facts({
          cvss: { vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N' },
          ssvc: { automatable: 'no' },
        }),
        NOW,
      ).points.automatable.value,
    ).toBe('no');
  });

  // CERT/CC data/csv/ssvc/cvssv4_to_technical_impact_1_0_0.csv: (PR, VC, VI) → technical impact.
  const TECHNICAL_IMPACT_TABLE = `
high,none,none,partial
low,none,none,partial
high,low,none,partial
high,none,low,partial
none,none,none,partial
low,low,none,partial
high,high,none,partial
low,none,low,partial
high,low,low,partial
high,none,high,partial
none,low,none,partial
low,high,none,partial
none,none,low,partial
low,low,low,partial
high,high,low,partial
low,none,high,partial
high,low,high,partial
none,high,none,partial
none,low,low,partial
low,high,low,partial
none,none,high,partial
low,low,high,partial
high,high,high,total
none,high,low,total
none,low,high,total
low,high,high,total
none,high,high,total`
    .trim()
    .split('\n')
    .map((l) => l.split(','));
  const letter = (v: string) => v[0]!.toUpperCase();
  it.each(TECHNICAL_IMPACT_TABLE)(
    'technical impact from CVSS: PR %s, VC %s, VI %s → %s',
    (pr, vc, vi, expected) => {
      const vector = parseCvssVector(
        `CVSS:4.0/AV:N/AC:L/AT:N/PR:${letter(pr!)}/UI:N/VC:${letter(vc!)}/VI:${letter(vi!)}/VA:N/SC:N/SI:N/SA:N`,
      );
      expect(technicalImpactFromCvss(baseCharacteristics(vector))).toBe(expected);
    },
  );

  it('an invalid published vector is ignored, and the reason says why', () => {
    const d = decidePriority(
      policy,
      facts({ cvss: { vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:Q' } }),
      NOW,
    );
    expect(d.cvss).toBeUndefined();
    expect(d.points.automatable.value).toBe('no');
    expect(d.reasons.join(' ')).toMatch(/The published CVSS vector was ignored: .*metric A has value "Q"/);
  });
});

describe('deadlines', () => {
  it('KEV + internet-facing + total impact: 3 days from the later of first seen and the KEV date', () => {
    const d = decidePriority(
      policy,
      facts({
        firstSeen: '2026-11-09T00:00:00Z',
        kev: { dateAdded: '2026-11-10' },
        ssvc: { technicalImpact: 'total', automatable: 'yes' },
        asset: { reachability: 'internet', criticality: 'critical' },
      }),
      NOW,
    );
    expect(d.outcome).toBe('act');
    expect(d.deadlineRule).toBe('kev-exposed-total');
    expect(d.dueAt).toBe('2026-11-13T00:00:00.000Z');
  });

  it('KEV alone: 14 days; a CVE added to KEV long after first sight gets its 14 days from the KEV date', () => {
    const d = decidePriority(
      policy,
      facts({ kev: { dateAdded: '2026-11-20' }, asset: { criticality: 'low' } }),
      NOW,
    );
    expect(d.outcome).toBe('track*'); // active, controlled, automatable no, human impact low
    expect(d.deadlineRule).toBe('kev');
    expect(d.dueAt).toBe('2026-12-04T00:00:00.000Z');
  });

  it('an old KEV entry on a newly seen exposure counts from first seen', () => {
    const d = decidePriority(
      policy,
      facts({ kev: { dateAdded: '2021-12-10' }, firstSeen: '2026-11-15T08:30:00Z' }),
      NOW,
    );
    expect(d.dueAt).toBe('2026-11-29T08:30:00.000Z');
    expect(d.overdue).toBe(false);
  });

  it('a critical contextual CVSS score is never left at Track, and gets 15 days when internet-facing', () => {
    const vector = 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H';
    const quiet = { ssvc: { exploitation: 'none', automatable: 'no', technicalImpact: 'partial' } } as const;
    const requirements = { cr: 'H', ir: 'H', ar: 'H' } as const;
    const exposed = decidePriority(
      policy,
      facts({
        cvss: { vector },
        ...quiet,
        asset: { criticality: 'low', reachability: 'internet', requirements },
      }),
      NOW,
    );
    // E:U for no known exploitation: roundup(10 × 0.91) = 9.1, still critical.
    expect(exposed.cvss?.vector).toBe('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H/E:U/CR:H/IR:H/AR:H');
    expect(exposed.cvss?.score).toBe(9.1);
    expect(exposed.treeOutcome).toBe('track');
    expect(exposed.outcome).toBe('track*');
    expect(exposed.floor?.name).toBe('critical-contextual-cvss');
    expect(exposed.deadlineRule).toBe('critical-internet-facing');
    expect(exposed.dueAt).toBe(addDays('2026-11-01T00:00:00Z', 15));

    // Internal only: MAV:A brings it to 8.9 (spec equations), below the floor.
    const internal = decidePriority(
      policy,
      facts({
        cvss: { vector },
        ...quiet,
        asset: { criticality: 'low', reachability: 'internal', requirements },
      }),
      NOW,
    );
    expect(internal.cvss?.vector).toBe(
      'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H/E:U/CR:H/IR:H/AR:H/MAV:A',
    );
    expect(internal.cvss?.score).toBe(8.9);
    expect(internal.outcome).toBe('track');
    expect(internal.floor).toBeUndefined();
  });

  it('reports overdue against the given now, not the wall clock', () => {
    const d = decidePriority(policy, facts({ firstSeen: '2020-01-01T00:00:00Z' }), NOW);
    expect(d.overdue).toBe(true);
    expect(
      decidePriority(policy, facts({ firstSeen: '2020-01-01T00:00:00Z' }), new Date('2020-01-02T00:00:00Z'))
        .overdue,
    ).toBe(false);
  });
});

describe('explanations', () => {
  it('summarises in plain words, as the issue shows', () => {
    const d = decidePriority(
      policy,
      facts({
        weakness: 'CVE-2021-44228',
        kev: { dateAdded: '2021-12-10' },
        epss: { probability: 0.94358, percentile: 0.99962 },
        ssvc: { exploitation: 'active', automatable: 'yes', technicalImpact: 'total' },
        asset: { criticality: 'critical', reachability: 'internet' },
        firstSeen: '2026-11-19T00:00:00Z',
      }),
      NOW,
    );
    expect(d.summary).toBe(
      'in CISA KEV since 2021-12-10; EPSS 0.94 (99.9th pct); internet-facing; automatable; total technical impact; critical asset → Act: fix by 2026-11-22',
    );
    expect(d.policy).toEqual({ name: 'default', version: '2026.08.1', hash: policy.hash });
    expect(d.reasons).toContain('The SSVC tree gives Act for (active, open, yes, very high).');
    expect(d.reasons.at(-1)).toBe(
      'Deadline rule kev-exposed-total (3 days after first seen 2026-11-19) gives 2026-11-22: BOD 26-04 gives 3 days to KEV entries on exposed assets with total technical impact.',
    );
  });

  it('is deterministic: the wall clock plays no part', () => {
    const f = facts({ kev: { dateAdded: '2026-01-05' }, epss: { probability: 0.3, percentile: 0.97 } });
    vi.useFakeTimers();
    try {
      vi.setSystemTime(new Date('2001-01-01'));
      const a = decidePriority(policy, f, NOW);
      vi.setSystemTime(new Date('2099-01-01'));
      const b = decidePriority(policy, f, NOW);
      expect(b).toEqual(a);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('policy files', () => {
  const withEdit = (from: string, to: string) => {
    expect(defaultText).toContain(from);
    return defaultText.replace(from, to);
  };
  const problems = (text: string): string => {
    try {
      parsePolicy(text, 'custom.yaml');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error('expected the policy to be refused');
  };
  const lineOf = (needle: string) => defaultText.split('\n').findIndex((l) => l.includes(needle)) + 1;

  it('names file, line and field of an unknown outcome', () => {
    const line = lineOf('- [active, open, yes, high, act]');
    expect(
      problems(withEdit('- [active, open, yes, high, act]', '- [active, open, yes, high, urgent]')),
    ).toMatch(new RegExp(`^custom\\.yaml:${line}:\\d+: tree\\[70\\]\\[4\\]: .*"act"`));
  });

  it('refuses a tree with a duplicate or a missing combination', () => {
    const message = problems(withEdit('- [active, open, yes, high, act]', '- [active, open, yes, low, act]'));
    expect(message).toMatch(
      /tree\[70\]: the combination \(active, open, yes, low\) is already at tree\[68\]/,
    );
    expect(message).toMatch(
      /tree: the tree must decide every combination; missing \(active, open, yes, high\)/,
    );
  });

  it('requires a version, and kev: true for a deadline counted from the KEV date', () => {
    expect(problems(withEdit("version: '2026.08.1'\n", ''))).toMatch(/^custom\.yaml:\d+:\d+: version: /);
    expect(
      problems(withEdit('when: { kev: true }\n    days: 14', 'when: { exposure: open }\n    days: 14')),
    ).toMatch(/deadlines\[1\]\.from: from: kevDateAdded needs `kev: true`/);
  });

  it('hashes content, not layout: comments do not change the hash, a rule does', () => {
    expect(
      parsePolicy(
        `# a comment\n${defaultText.replace('act: { slaDays: 7 }', 'act:   { slaDays: 7 }   # one week')}`,
        'x',
      ).hash,
    ).toBe(policy.hash);
    expect(parsePolicy(withEdit('act: { slaDays: 7 }', 'act: { slaDays: 5 }'), 'x').hash).not.toBe(
      policy.hash,
    );
  });

  it('hashes with SHA-256 (checked against node:crypto)', () => {
    for (const s of ['', 'abc', 'é€😀 policy', 'x'.repeat(1000)])
      expect(sha256Hex(s)).toBe(createHash('sha256').update(s).digest('hex'));
  });
});

describe('the compiled decision table (used by the SQL re-score)', () => {
  const table = compileDecisionTable(policy);
  const DAY = 86_400_000;

  it('agrees with decidePriority on outcome and deadline for random facts', () => {
    const arb = fc.record({
      kev: fc.option(fc.constantFrom('2020-06-01', '2026-10-20', '2026-11-15'), { nil: undefined }),
      epss: fc.option(
        fc.record({
          probability: fc.double({ min: 0, max: 1, noNaN: true }),
          percentile: fc.double({ min: 0, max: 1, noNaN: true }),
        }),
        { nil: undefined },
      ),
      exploitation: fc.option(
        fc.constantFrom('none', 'public poc', 'active') as fc.Arbitrary<'none' | 'public poc' | 'active'>,
        { nil: undefined },
      ),
      automatable: fc.option(fc.constantFrom('no', 'yes') as fc.Arbitrary<'no' | 'yes'>, { nil: undefined }),
      technicalImpact: fc.option(fc.constantFrom('partial', 'total') as fc.Arbitrary<'partial' | 'total'>, {
        nil: undefined,
      }),
      vector: fc.option(
        fc.constantFrom(
          'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H',
          'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
          'CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N',
          'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H',
          'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:P',
        ),
        { nil: undefined },
      ),
      criticality: fc.constantFrom('low', 'medium', 'high', 'critical') as fc.Arbitrary<
        'low' | 'medium' | 'high' | 'critical'
      >,
      reachability: fc.constantFrom('internet', 'internal', 'isolated') as fc.Arbitrary<
        'internet' | 'internal' | 'isolated'
      >,
      cr: fc.constantFrom('L', 'M', 'H') as fc.Arbitrary<'L' | 'M' | 'H'>,
    });
    fc.assert(
      fc.property(arb, (a) => {
        const f = facts({
          firstSeen: '2026-11-01T12:00:00Z',
          ...(a.kev ? { kev: { dateAdded: a.kev } } : {}),
          ...(a.epss ? { epss: a.epss } : {}),
          ssvc: {
            exploitation: a.exploitation ?? null,
            automatable: a.automatable ?? null,
            technicalImpact: a.technicalImpact ?? null,
          },
          ...(a.vector ? { cvss: { vector: a.vector } } : {}),
          asset: {
            criticality: a.criticality,
            reachability: a.reachability,
            requirements: { cr: a.cr, ir: a.cr, ar: a.cr },
          },
        });
        const d = decidePriority(policy, f, NOW);
        const row = table.rows.find(
          (r) =>
            r.exploitation === d.points.exploitation.value &&
            r.exposure === d.points.exposure.value &&
            r.automatable === d.points.automatable.value &&
            r.technicalImpact === d.points.technicalImpact.value &&
            r.criticality === a.criticality &&
            r.kev === Boolean(a.kev) &&
            r.cvssBucket === cvssBucket(table.cvssThresholds, d.cvss?.score ?? null),
        )!;
        expect(row.outcome).toBe(d.outcome);
        const first = Date.parse(f.firstSeen);
        const due = Math.min(
          first + row.daysFromFirstSeen * DAY,
          row.daysFromKev === null
            ? Infinity
            : Math.max(first, Date.parse(`${a.kev}T00:00:00Z`)) + row.daysFromKev * DAY,
        );
        expect(new Date(due).toISOString()).toBe(d.dueAt);
      }),
      { numRuns: 2000, seed: 4 },
    );
  });
});
