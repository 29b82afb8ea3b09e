import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { type Finding, InputError } from '../../domain/finding.ts';
import { sarifParser } from './index.ts';

const DIR = join(import.meta.dirname, '../../../shared/data/scans/sarif');
const FIXTURES = join(import.meta.dirname, '../../test/fixtures/scans');

async function parse(file: string): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const f of sarifParser.parse(createReadStream(file), { file })) out.push(f);
  return out;
}

async function parseLog(log: unknown, file = 'scan.sarif'): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const f of sarifParser.parse(Readable.from([Buffer.from(JSON.stringify(log))]), { file }))
    out.push(f);
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

const count = <T>(items: T[], key: (item: T) => string | undefined): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const item of items) {
    const k = key(item) ?? '(none)';
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
};

describe.skipIf(!existsSync(DIR))('SARIF real samples (needs ../shared/data/scans/sarif)', () => {
  const file = (name: string): string => join(DIR, name);

  it('ShellCheck via ShiftLeft: repository from versionControlProvenance (after the results), paths made relative', async () => {
    const findings = await parse(file('bash-report.sarif'));
    expect(findings).toHaveLength(27);
    for (const f of findings) {
      expect(f.asset).toEqual({
        kind: 'repository',
        url: 'https://github.com/damiencarol/django-DefectDojo',
      });
      expect(f.scanId).toBe('70d0f865-f0e4-406c-8837-40852afccaeb');
      expect(f.kind).toBe('code');
    }
    expect(findings[0]).toMatchObject({
      scanner: 'sarif',
      ruleId: '2076',
      severity: 'low',
      severityReported: 'note',
      // file:///home/damien/dd/docker/setEnv.sh relative to the invocation's working directory.
      location: { path: 'docker/setEnv.sh', startLine: 134, endLine: 134 },
      references: ['https://github.com/koalaman/shellcheck/wiki/SC2076'],
      weaknessKey: 'sarif:Shell Script Analysis/2076@docker/setEnv.sh#47f57f9669991906',
    });
    // Rule 2077 fires at lines 410 and 412 of one file: two weaknesses, not one. The report also
    // repeats each of them several times; those repeats share a key.
    const sc2077 = findings.filter(
      (f) => f.ruleId === '2077' && f.location?.path === 'entrypoint_scripts/common/dojo-shared-resources.sh',
    );
    expect(count(sc2077, (f) => `${f.location?.startLine} ${f.weaknessKey}`)).toEqual({
      '410 sarif:Shell Script Analysis/2077@entrypoint_scripts/common/dojo-shared-resources.sh#e65e9fa644d89079': 6,
      '412 sarif:Shell Script Analysis/2077@entrypoint_scripts/common/dojo-shared-resources.sh#8cc16cd3309ad473': 6,
    });
    expect(new Set(findings.map((f) => f.weaknessKey)).size).toBe(12);
    expect(await parse(file('bash-report-fabricated-no-internal-dupes.sarif'))).toHaveLength(5);
    expect(await parse(file('bash-report-fabricated-no-internal-dupes-subset.sarif'))).toHaveLength(4);
    expect(await parse(file('bash-report-subset-same-hash-code-same-unique-id.sarif'))).toHaveLength(4);
  });

  it('LGTM/CodeQL: two runs, rule metadata by index, CWE from tags, primaryLocationLineHash in the key', async () => {
    const findings = await parse(file('DefectDojo_django-DefectDojo__2020-12-11_13 42 10__export.sarif'));
    // 58 JavaScript results and 452 Python results, none suppressed.
    expect(findings).toHaveLength(510);
    expect(findings[0]).toMatchObject({
      ruleId: 'com.lgtm/javascript-queries:js/unused-local-variable',
      title: 'Unused variable, import, function or class',
      description: 'Unused variable p4.',
      severity: 'low',
      location: { path: 'dojo/static/dojo/js/index.js', startLine: 220, endLine: 220 },
      weaknessKey:
        'sarif:LGTM.com/com.lgtm/javascript-queries:js/unused-local-variable@dojo/static/dojo/js/index.js#5a98dafd76d3d9c1:1',
      // No provenance and no base URIs: the report's file name stands in for the repository.
      asset: { kind: 'repository', url: 'DefectDojo_django-DefectDojo__2020-12-11_13 42 10__export.sarif' },
    });
    const useless = findings.find((f) => f.ruleId === 'com.lgtm/javascript-queries:js/useless-expression');
    expect(useless?.cwe).toEqual(['CWE-480', 'CWE-561']);
    // A rule without a default level is a "warning" (SARIF §3.27.10).
    expect(useless?.severity).toBe('medium');
  });

  it('suppressed results are not findings (status absent or accepted; the draft "state" too)', async () => {
    expect((await parse(file('SuppressionTestCurrent.sarif'))).map((f) => f.ruleId)).toEqual(['TST0004']);
    // TST0005 has an empty suppressions array: not suppressed.
    expect((await parse(file('suppression_test.sarif'))).map((f) => f.ruleId)).toEqual([
      'TST0004',
      'TST0005',
    ]);
    expect(await parse(file('appendix_k.sarif'))).toEqual([]);
    expect(await parse(file('appendix_k4.sarif'))).toEqual([]);
  });

  it('empty logs give nothing', async () => {
    expect(await parse(file('appendix_k1.sarif'))).toEqual([]);
    expect(await parse(file('appendix_k1_double.sarif'))).toEqual([]);
    expect(await parse(file('no_runs.sarif'))).toEqual([]);
  });

  it('messages from rule message strings, and logical locations', async () => {
    const [k2] = await parse(file('appendix_k2.sarif'));
    expect(k2).toMatchObject({
      title: 'Variable "count" was used without being initialized.',
      location: { path: 'src/collections/list.cpp', startLine: 15 },
      weaknessKey: 'sarif:CodeScanner/C2001@src/collections/list.cpp#L15',
    });
    const [k3] = await parse(file('appendix_k3.sarif'));
    expect(k3).toMatchObject({
      ruleId: 'B6412',
      location: { path: 'Example.Worker.DoWork' },
      weaknessKey: 'sarif:BinaryScanner/B6412@Example.Worker.DoWork',
      severity: 'medium',
    });
  });

  it('SCA in SARIF (Grype): CVE rule ids key on the CVE, security-severity sets the severity', async () => {
    const findings = await parse(file('cxf-3.4.6.sarif'));
    expect(findings).toHaveLength(22);
    expect(findings.every((f) => f.kind === 'vulnerability')).toBe(true);
    expect(findings[0]).toMatchObject({
      weaknessKey: 'CVE-2008-0732',
      ruleId: 'CVE-2008-0732-geronimo-j2ee-management_1.1_spec',
      severity: 'low',
      severityReported: '2.1',
      location: { path: 'lib/geronimo-j2ee-management_1.1_spec-1.0.1.jar', startLine: 1 },
    });
    // security-severity 2.1 ×6 low, 5.3/6.1/6.5 ×4 medium, 7.5/7.8 ×11 high, 9.8 critical.
    expect(count(findings, (f) => f.severity)).toEqual({ low: 6, medium: 4, high: 11, critical: 1 });
    // No CVE in the id: its GHSA.
    expect(findings.find((f) => f.ruleId === 'GHSA-57j2-w4cx-62h2-jackson-databind')?.weaknessKey).toBe(
      'GHSA-57j2-w4cx-62h2',
    );
  });

  it('Black Duck: CVE from "BDSA-… (CVE-…)", BDSA as alias, package from properties, nested fingerprints', async () => {
    const findings = await parse(file('blackduck_nested_fingerprints.sarif'));
    expect(findings).toHaveLength(5);
    expect(findings[0]).toMatchObject({
      weaknessKey: 'CVE-2020-11022',
      aliases: ['BDSA-2020-1001'],
      kind: 'vulnerability',
      severity: 'medium',
      cwe: ['CWE-79'],
      package: { name: 'example-frontend-lib', version: '1.0.0', type: 'npm' },
      solution: 'Upgrade/patch dependency: example-frontend-lib 1.0.0.',
    });
    expect(findings.map((f) => f.exploitAvailable)).toEqual([false, true, false, false, true]);
  });

  it('Semgrep: textual security-severity, long fingerprints hashed down', async () => {
    const findings = await parse(file('issue_10191.json'));
    expect(findings).toHaveLength(77);
    expect(count(findings, (f) => f.severity)).toEqual({ critical: 34, high: 1, medium: 42 });
    expect(findings[0]).toMatchObject({
      location: { path: 'Gruntfile.js', startLine: 75, endLine: 75 },
      cwe: ['CWE-22'],
      evidence: "const buffer = fs.readFileSync('dist/' + file)",
    });
    expect(findings[0]!.weaknessKey).toMatch(
      /^sarif:Semgrep OSS\/.*rule-non-literal-fs-filename@Gruntfile\.js#h[0-9a-f]{24}$/,
    );
    // Distinct fingerprints: no two results collapse.
    expect(new Set(findings.map((f) => f.weaknessKey)).size).toBe(77);
  });

  it('one finding per location: mobsfscan lists every occurrence as a location of one result', async () => {
    const findings = await parse(file('mobsfscan.json'));
    // 9 results with 18 locations between them.
    expect(findings).toHaveLength(18);
    const logging = findings.filter((f) => f.ruleId === 'android_logging');
    expect(logging).toHaveLength(8);
    expect(new Set(logging.map((f) => f.weaknessKey)).size).toBe(8);
    // "./" line 1 means the whole app: no location, keyed on the rule.
    expect(findings.find((f) => f.ruleId === 'android_root_detection')).toMatchObject({
      weaknessKey: 'sarif:mobsfscan/android_root_detection',
      kind: 'other',
    });
    const njs = await parse(file('njsscan.sarif'));
    expect(njs.map((f) => `${f.location?.path}:${f.location?.startLine}`)).toEqual([
      '/src/index.js:321',
      '/src/index.js:235',
      '/src/index.js:239',
    ]);
    expect(njs[0]!.cwe).toEqual(['CWE-327']);
  });

  it('results without locations (Dockle image checks) key on the rule alone', async () => {
    const findings = await parse(file('dockle_0_3_15.sarif'));
    expect(findings.map((f) => [f.weaknessKey, f.severity, f.kind])).toEqual([
      ['sarif:Dockle/CIS-DI-0010', 'high', 'other'],
      ['sarif:Dockle/CIS-DI-0005', 'low', 'other'],
      ['sarif:Dockle/CIS-DI-0006', 'low', 'other'],
      ['sarif:Dockle/CIS-DI-0008', 'low', 'other'],
    ]);
  });
});

describe('SARIF built logs', () => {
  const log = (run: Record<string, unknown>): unknown => ({
    version: '2.1.0',
    runs: [{ tool: { driver: { name: 'T' } }, ...run }],
  });

  it('rules from tool extensions by toolComponent index; kind pass is not a finding', async () => {
    const findings = await parseLog({
      version: '2.1.0',
      runs: [
        {
          tool: {
            driver: { name: 'CodeQL' },
            extensions: [
              {
                name: 'pack',
                rules: [
                  {
                    id: 'js/xss',
                    shortDescription: { text: 'Cross-site scripting' },
                    properties: { 'security-severity': '6.1', tags: ['external/cwe/cwe-079'] },
                  },
                ],
              },
            ],
          },
          originalUriBaseIds: { SRCROOT: { uri: 'file:///build/src/' } },
          results: [
            {
              ruleId: 'js/xss',
              rule: { id: 'js/xss', index: 0, toolComponent: { index: 0 } },
              message: { text: 'XSS here' },
              locations: [
                {
                  physicalLocation: {
                    artifactLocation: { uri: 'file:///build/src/app/x.js' },
                    region: { startLine: 3 },
                  },
                },
              ],
            },
            { ruleId: 'js/xss', kind: 'pass', message: { text: 'fine' } },
          ],
        },
      ],
    });
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({
      title: 'Cross-site scripting',
      severity: 'medium',
      severityReported: '6.1',
      cwe: ['CWE-79'],
      location: { path: 'app/x.js', startLine: 3 },
      asset: { kind: 'repository', url: 'file:///build/src' },
    });
  });

  it('artifact indexes resolve to URIs; a rejected suppression does not suppress', async () => {
    const findings = await parseLog(
      log({
        artifacts: [{ location: { uri: 'src/a.c' } }, { location: { uri: 'src/b%20c.c' } }],
        results: [
          {
            ruleId: 'R1',
            level: 'error',
            message: { text: 'm' },
            locations: [{ physicalLocation: { artifactLocation: { index: 1 }, region: { startLine: 9 } } }],
            suppressions: [{ kind: 'inSource', status: 'rejected' }],
          },
        ],
      }),
    );
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ severity: 'high', location: { path: 'src/b c.c', startLine: 9 } });
  });

  it('refuses other SARIF versions and logs without runs', async () => {
    const old = await inputError(() => parse(join(FIXTURES, 'sarif-1.0.sarif')));
    expect(old.message).toMatch(
      /sarif-1\.0\.sarif, line 2, column 14: SARIF version "1\.0\.0" is not supported; export the log as SARIF 2\.1\.0$/,
    );
    const none = await inputError(() => parseLog({ version: '2.1.0' }));
    expect(none.message).toBe(
      'scan.sarif: this JSON has no "runs" list, so it is not a SARIF log; check the file or pass the right --format',
    );
    const bad = await inputError(() => parseLog(log({ results: ['oops'] })));
    expect(bad.message).toContain('expected "runs[0].results[0]" to be an object describing a result');
  });
});
