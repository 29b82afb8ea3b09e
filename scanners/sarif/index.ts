// SARIF 2.1.0 (OASIS): CodeQL, Semgrep, ShellCheck, njsscan, mobsfscan, Dockle, Black Duck, Grype's
// SARIF output and anything else that speaks it.
//
// Decisions:
// - Suppressed results are not findings. SARIF §3.27.23: a result is suppressed when it has at least
//   one suppression whose status is absent or "accepted" and none "underReview" or "rejected". Early
//   drafts wrote "state" for "status"; both are read. Results of kind "pass" or "notApplicable" are
//   not problems and are skipped too.
// - One finding per location. Tools such as mobsfscan list every occurrence of a rule as locations of
//   one result; each is a separate place to fix and to verify.
// - Weakness key: a CVE named by the rule id or tags wins (SCA tools in SARIF), then a GHSA id. For
//   code findings the key is `sarif:<tool>/<ruleId>@<path>#<fingerprint>`: exposure identity is
//   asset × weakness, so without the path the same rule in two files of one repository would collapse
//   into one exposure, and without the fingerprint two occurrences in one file would. The fingerprint
//   is what SARIF defines for matching results across runs (CodeQL's primaryLocationLineHash, then
//   fingerprints, then other partialFingerprints) so it survives lines moving; without one, a hash of
//   the location's snippet, and only as a last resort the start line. Results without any location
//   (Dockle's image checks) key on the rule alone.
// - Asset: the repository from versionControlProvenance, else the run's source root from
//   originalUriBaseIds, else the report's file name. Absolute file URIs are made relative to the
//   invocation's working directory or a base URI so keys do not depend on the build machine.
// - The whole run is needed before its results can be finished (versionControlProvenance may follow
//   the results), so results are reduced to what is used and held in a Spool until the run ends.

import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { basename } from 'node:path';
import { type AssetRef, type Finding, InputError, type Severity } from '../../domain/finding.ts';
import type { ParseContext, ScannerParser } from '../parser.ts';
import { type JsonEvent, readJsonEvents } from '../json/index.ts';
import { type JsonRecord, arr, asRecord, num, rec, str, strings } from '../json/fields.ts';
import {
  LIMITS,
  boundList,
  boundText,
  cleanText,
  cvesIn,
  cweList,
  normalizeSeverity,
  severityFromScore,
  vulnerabilityKey,
} from '../json/normalize.ts';
import { Spool } from '../json/spool.ts';

const READ = {
  values: [
    'version',
    'runs[*].tool.driver.name',
    'runs[*].tool.driver.rules[*]',
    'runs[*].tool.extensions[*].rules[*]',
    'runs[*].versionControlProvenance',
    'runs[*].originalUriBaseIds',
    'runs[*].invocations[*].workingDirectory',
    'runs[*].invocations[*].startTimeUtc',
    'runs[*].invocations[*].endTimeUtc',
    'runs[*].automationDetails.guid',
    'runs[*].automationDetails.id',
    'runs[*].artifacts[*].location',
    'runs[*].results[*]',
  ],
  scopes: ['runs', 'runs[*]'],
};

// Bounds on what a run keeps in memory; real tools stay far below.
const MAX_RULES = 100_000;
const MAX_ARTIFACTS = 200_000;
const SNIPPET_FINGERPRINT_CHARS = 4096;

interface Rule {
  id?: string;
  name?: string;
  shortDescription?: string;
  fullDescription?: string;
  help?: string;
  helpUri?: string;
  level?: string;
  securitySeverity?: string;
  tags: string[];
  cwe: string[];
  messageStrings?: Record<string, string>;
}

interface Place {
  path?: string;
  startLine?: number;
  endLine?: number;
  snippet?: string;
}

/** What a result contributes once its run is complete. Plain data: it may go through the Spool. */
interface HeldResult {
  ruleId?: string;
  ruleIndex?: number;
  componentIndex?: number;
  level?: string;
  informational: boolean;
  message?: string;
  messageId?: string;
  messageArgs: string[];
  places: (Place & { uri?: string; uriBaseId?: string; artifactIndex?: number })[];
  fingerprint?: string;
  securitySeverity?: string;
  tags: string[];
  cwe: string[];
  fix?: string;
  component?: { name: string; version?: string; type?: string };
  exploitAvailable?: boolean;
}

interface Run {
  tool?: string;
  driverRules: Rule[];
  driverRulesById: Map<string, Rule>;
  extensionRules: Map<number, Rule[]>;
  repositoryUri?: string;
  baseUris: Map<string, { uri: string; base?: string }>;
  workingDirectory?: string;
  startTime?: string;
  endTime?: string;
  scanId?: string;
  artifacts: string[];
  results: Spool<HeldResult>;
}

export const sarifParser: ScannerParser = {
  format: 'sarif',
  detect(head: string, fileName: string): boolean {
    if (!head.trimStart().startsWith('{') || !/"runs"\s*:/.test(head)) return false;
    return (
      /"version"\s*:\s*"2\.1\.0"/.test(head) ||
      /sarif/i.test(head.slice(0, 2048)) ||
      /\.sarif$/i.test(fileName)
    );
  },
  parse(input: Readable, ctx: ParseContext): AsyncIterable<Finding> {
    return readSarif(input, ctx.file);
  },
};

async function* readSarif(input: Readable, file: string): AsyncGenerator<Finding> {
  let run: Run | undefined;
  let runIndex = -1;
  let sawRuns = false;
  let rootType: string | undefined;
  try {
    for await (const batch of readJsonEvents(input, { file, ...READ })) {
      for (const event of batch) {
        if (event.kind === 'root') {
          rootType = event.type;
          continue;
        }
        if (event.kind === 'close') {
          if (event.pattern === 'runs') sawRuns = true;
          else if (run && event.path[1] === runIndex) {
            yield* finishRun(run, file);
            run = undefined;
          }
          continue;
        }
        if (event.pattern === 'version') {
          checkVersion(event, file);
          continue;
        }
        const index = event.path[1];
        if (typeof index !== 'number') continue;
        if (index !== runIndex) {
          run?.results.dispose();
          run = newRun();
          runIndex = index;
        }
        onRunValue(run!, event, file);
      }
    }
    if (rootType === 'object' && !sawRuns) {
      throw new InputError(
        'this JSON has no "runs" list, so it is not a SARIF log; check the file or pass the right --format',
        file,
      );
    }
  } finally {
    run?.results.dispose();
  }
}

function newRun(): Run {
  return {
    driverRules: [],
    driverRulesById: new Map(),
    extensionRules: new Map(),
    baseUris: new Map(),
    artifacts: [],
    results: new Spool<HeldResult>(),
  };
}

function checkVersion(event: Extract<JsonEvent, { kind: 'value' }>, file: string): void {
  if (event.value === '2.1.0') return;
  throw new InputError(
    `SARIF version ${JSON.stringify(event.value)} is not supported; export the log as SARIF 2.1.0`,
    file,
    event.line,
    event.column,
  );
}

function onRunValue(run: Run, event: Extract<JsonEvent, { kind: 'value' }>, file: string): void {
  const { value, path } = event;
  switch (event.pattern) {
    case 'runs[*].tool.driver.name':
      run.tool = typeof value === 'string' ? cleanText(value) : undefined;
      break;
    case 'runs[*].tool.driver.rules[*]': {
      if (run.driverRules.length >= MAX_RULES) break;
      const rule = readRule(asRecord(value));
      run.driverRules.push(rule);
      if (rule.id !== undefined && !run.driverRulesById.has(rule.id)) run.driverRulesById.set(rule.id, rule);
      break;
    }
    case 'runs[*].tool.extensions[*].rules[*]': {
      const component = path[4];
      if (typeof component !== 'number') break;
      const rules = run.extensionRules.get(component) ?? [];
      if (rules.length < MAX_RULES) rules.push(readRule(asRecord(value)));
      run.extensionRules.set(component, rules);
      break;
    }
    case 'runs[*].versionControlProvenance': {
      const first = asRecord(arr({ v: value }, 'v')[0]);
      run.repositoryUri = cleanText(str(first, 'repositoryUri'))?.replace(/\.git$|\/+$/g, '');
      break;
    }
    case 'runs[*].originalUriBaseIds': {
      const bases = asRecord(value) ?? {};
      for (const [name, base] of Object.entries(bases)) {
        const uri = cleanText(str(asRecord(base), 'uri'));
        if (uri !== undefined)
          run.baseUris.set(name, { uri, base: cleanText(str(asRecord(base), 'uriBaseId')) });
      }
      break;
    }
    case 'runs[*].invocations[*].workingDirectory':
      run.workingDirectory ??= cleanText(str(asRecord(value), 'uri'));
      break;
    case 'runs[*].invocations[*].startTimeUtc':
      if (typeof value === 'string') run.startTime ??= cleanText(value);
      break;
    case 'runs[*].invocations[*].endTimeUtc':
      if (typeof value === 'string') run.endTime ??= cleanText(value);
      break;
    case 'runs[*].automationDetails.guid':
    case 'runs[*].automationDetails.id':
      if (typeof value === 'string')
        run.scanId = event.pattern.endsWith('guid') ? cleanText(value) : (run.scanId ?? cleanText(value));
      break;
    case 'runs[*].artifacts[*].location':
      if (run.artifacts.length < MAX_ARTIFACTS)
        run.artifacts.push(cleanText(str(asRecord(value), 'uri')) ?? '');
      break;
    case 'runs[*].results[*]': {
      const result = asRecord(value);
      if (!result) {
        throw new InputError(
          `expected "runs[${String(path[1])}].results[${String(path[3])}]" to be an object describing a result`,
          file,
          event.line,
          event.column,
        );
      }
      const held = readResult(result);
      if (held) run.results.push(held);
      break;
    }
  }
}

function readRule(rule: JsonRecord | undefined): Rule {
  const properties = rec(rule, 'properties');
  const messageStrings: Record<string, string> = {};
  for (const [id, entry] of Object.entries(rec(rule, 'messageStrings') ?? {})) {
    const text = str(asRecord(entry), 'text');
    if (text !== undefined) messageStrings[id] = text;
  }
  return {
    id: cleanText(str(rule, 'id')),
    name: cleanText(str(rule, 'name')),
    shortDescription: boundText(str(rec(rule, 'shortDescription'), 'text'), LIMITS.title),
    fullDescription: boundText(str(rec(rule, 'fullDescription'), 'text')),
    help: boundText(str(rec(rule, 'help'), 'text')),
    helpUri: cleanText(str(rule, 'helpUri')),
    level: str(rec(rule, 'defaultConfiguration'), 'level'),
    securitySeverity: str(properties, 'security-severity'),
    tags: strings(properties, 'tags').slice(0, 64),
    cwe: textValues(properties?.['cwe']),
    messageStrings: Object.keys(messageStrings).length > 0 ? messageStrings : undefined,
  };
}

function readResult(result: JsonRecord): HeldResult | undefined {
  if (isSuppressed(result)) return undefined;
  const kind = str(result, 'kind');
  if (kind === 'pass' || kind === 'notApplicable') return undefined;
  const message = rec(result, 'message');
  const ruleRef = rec(result, 'rule');
  const properties = rec(result, 'properties');
  const places: HeldResult['places'] = [];
  for (const item of arr(result, 'locations')) {
    const location = asRecord(item);
    const physical = rec(location, 'physicalLocation');
    const artifact = rec(physical, 'artifactLocation');
    const region = rec(physical, 'region');
    const logical = asRecord(arr(location, 'logicalLocations')[0]);
    const uri = cleanText(str(artifact, 'uri'));
    const artifactIndex = num(artifact, 'index');
    const startLine = num(region, 'startLine');
    const snippet =
      str(rec(region, 'snippet'), 'text') ?? str(rec(rec(physical, 'contextRegion'), 'snippet'), 'text');
    if (uri === undefined && artifactIndex === undefined) {
      const fqn = cleanText(str(logical, 'fullyQualifiedName') ?? str(logical, 'name'));
      if (fqn !== undefined) places.push({ path: fqn });
      continue;
    }
    places.push({
      uri,
      uriBaseId: str(artifact, 'uriBaseId'),
      artifactIndex,
      startLine,
      endLine: num(region, 'endLine') ?? startLine,
      snippet: boundText(snippet),
    });
  }
  const component = str(properties, 'component');
  return {
    ruleId: cleanText(str(result, 'ruleId') ?? str(ruleRef, 'id')),
    ruleIndex: num(result, 'ruleIndex') ?? num(ruleRef, 'index'),
    componentIndex: num(rec(ruleRef, 'toolComponent'), 'index'),
    level: str(result, 'level'),
    informational: kind === 'informational',
    message: boundText(str(message, 'text') ?? str(message, 'markdown')),
    messageId: str(message, 'id'),
    messageArgs: arr(message, 'arguments').map((a) => (typeof a === 'string' ? a : JSON.stringify(a))),
    places,
    fingerprint: resultFingerprint(result),
    securitySeverity: str(properties, 'security-severity'),
    tags: strings(properties, 'tags').slice(0, 64),
    cwe: textValues(properties?.['cwe']),
    fix: boundText(str(rec(asRecord(arr(result, 'fixes')[0]), 'description'), 'text')),
    component: component
      ? {
          name: component,
          version: str(properties, 'componentVersion'),
          type: str(properties, 'componentOrigin'),
        }
      : undefined,
    // Black Duck's result property; other tools do not say.
    exploitAvailable:
      typeof properties?.['exploitAvailable'] === 'boolean' ? properties['exploitAvailable'] : undefined,
  };
}

function isSuppressed(result: JsonRecord): boolean {
  const suppressions = arr(result, 'suppressions').map(asRecord);
  if (suppressions.length === 0) return false;
  let accepted = false;
  for (const suppression of suppressions) {
    const status = str(suppression, 'status') ?? str(suppression, 'state');
    if (status === 'underReview' || status === 'rejected') return false;
    if (status === undefined || status === 'accepted') accepted = true;
  }
  return accepted;
}

/**
 * SARIF's own cross-run identity for a result. Location-level hashes first (CodeQL's
 * primaryLocationLineHash, ShiftLeft's scanPrimaryLocationHash): file-level ones such as scanFileHash
 * are the same for every result in a file and would merge distinct findings.
 */
function resultFingerprint(result: JsonRecord): string | undefined {
  const partial = rec(result, 'partialFingerprints');
  const full = rec(result, 'fingerprints');
  const pick = (record: JsonRecord | undefined, accept: (key: string) => boolean): string | undefined => {
    for (const key of Object.keys(record ?? {}).sort()) {
      if (!accept(key)) continue;
      const value = record?.[key];
      // Some exporters nest the value ({"csvRowSha256": {"value": "…"}}).
      const text = typeof value === 'string' ? value : str(asRecord(value), 'value');
      if (text !== undefined && text.trim() !== '') return text.trim();
    }
    return undefined;
  };
  const fingerprint =
    str(partial, 'primaryLocationLineHash') ??
    pick(partial, (key) => /location/i.test(key)) ??
    pick(full, () => true) ??
    pick(partial, (key) => !/file/i.test(key));
  const cleaned = cleanText(fingerprint);
  if (cleaned === undefined) return undefined;
  // Keys stay readable: long fingerprints (Semgrep's are 130 characters) are hashed down.
  return cleaned.length <= 40
    ? cleaned
    : `h${createHash('sha256').update(cleaned).digest('hex').slice(0, 24)}`;
}

async function* finishRun(run: Run, file: string): AsyncGenerator<Finding> {
  const asset = runAsset(run, file);
  const tool = run.tool ?? 'unknown-tool';
  for await (const result of run.results.drain()) {
    const rule = findRule(run, result);
    const ruleId = result.ruleId ?? rule?.id ?? 'unknown-rule';
    const message =
      result.message ?? renderMessage(rule, result) ?? rule?.shortDescription ?? rule?.fullDescription;
    const { severity, severityReported } = sarifSeverity(result, rule);
    const tags = [...(rule?.tags ?? []), ...result.tags];
    const named = [ruleId, rule?.name ?? '', ...tags].join(' ');
    const cves = cvesIn(named);
    const ghsas = advisoryIdsIn(named, GHSA_RE);
    const advisory =
      cves.length + ghsas.length > 0
        ? vulnerabilityKey('sarif', [...cves, ...ghsas, ...advisoryIdsIn(named, BDSA_RE)])
        : undefined;
    const places: (Place | undefined)[] =
      result.places.length > 0 ? result.places.map((p) => resolvePlace(run, p)) : [undefined];
    const description = message ?? rule?.fullDescription;
    const solution = rule?.help ?? result.fix;
    for (const place of places) {
      const base: Omit<Finding, 'weaknessKey' | 'kind'> = {
        scanner: 'sarif',
        scanId: run.scanId,
        scanTime: run.startTime ?? run.endTime,
        asset,
        aliases: advisory?.aliases,
        ruleId,
        title:
          rule?.shortDescription ??
          (rule?.name && rule.name !== ruleId ? rule.name : undefined) ??
          firstLine(message) ??
          ruleId,
        description,
        solution: solution !== description ? solution : undefined,
        severity,
        severityReported,
        package: result.component
          ? { name: result.component.name, version: result.component.version, type: result.component.type }
          : undefined,
        location: place?.path
          ? { path: place.path, startLine: place.startLine, endLine: place.endLine }
          : undefined,
        cwe: cweList([...(rule?.cwe ?? []), ...result.cwe, ...tags]),
        references: boundList([rule?.helpUri], LIMITS.references),
        evidence: place?.snippet ?? (message ? boundText(message) : undefined),
        exploitAvailable: result.exploitAvailable,
      };
      if (advisory) {
        yield { ...base, weaknessKey: advisory.weaknessKey, kind: 'vulnerability' };
        continue;
      }
      const fingerprint = place?.path ? placeFingerprint(result, place) : undefined;
      const where = place?.path ? `@${place.path}${fingerprint ? `#${fingerprint}` : ''}` : '';
      yield {
        ...base,
        weaknessKey: `sarif:${tool}/${ruleId}${where}`,
        kind: place?.path ? 'code' : 'other',
      };
    }
  }
}

function findRule(run: Run, result: HeldResult): Rule | undefined {
  if (result.componentIndex !== undefined) {
    const rules = run.extensionRules.get(result.componentIndex);
    if (rules && result.ruleIndex !== undefined) return rules[result.ruleIndex];
    return rules?.find((r) => r.id === result.ruleId);
  }
  if (result.ruleIndex !== undefined && result.ruleIndex >= 0) {
    const byIndex = run.driverRules[result.ruleIndex];
    if (byIndex && (result.ruleId === undefined || byIndex.id === result.ruleId)) return byIndex;
  }
  if (result.ruleId === undefined) return undefined;
  // Hierarchical ids ("C2001/subcase") inherit their rule's metadata.
  const id = result.ruleId;
  const found = run.driverRulesById.get(id) ?? run.driverRulesById.get(id.split('/')[0]!);
  if (found) return found;
  for (const rules of run.extensionRules.values()) {
    const match = rules.find((r) => r.id === id);
    if (match) return match;
  }
  return undefined;
}

/** "Variable \"{0}\" was used…" with the result's arguments (SARIF §3.11.5). */
function renderMessage(rule: Rule | undefined, result: HeldResult): string | undefined {
  const template = result.messageId ? rule?.messageStrings?.[result.messageId] : undefined;
  if (template === undefined) return undefined;
  return boundText(
    template.replace(/\{(\d+)\}/g, (whole, n: string) => result.messageArgs[Number(n)] ?? whole),
  );
}

const LEVEL_SEVERITY: Readonly<Record<string, Severity>> = {
  error: 'high',
  warning: 'medium',
  note: 'low',
  none: 'info',
};

/**
 * GitHub's "security-severity" property (a CVSS-like score, sometimes a word) is the most precise
 * signal; otherwise the SARIF level, whose default is "warning" (§3.27.10).
 */
function sarifSeverity(
  result: HeldResult,
  rule: Rule | undefined,
): { severity: Severity; severityReported: string } {
  const security = result.securitySeverity ?? rule?.securitySeverity;
  if (security !== undefined) {
    const score = Number(security);
    const severity = Number.isFinite(score) ? severityFromScore(score) : normalizeSeverity(security);
    if (severity !== 'unknown') return { severity, severityReported: security };
  }
  if (result.informational) return { severity: 'info', severityReported: 'informational' };
  const level = result.level ?? rule?.level ?? 'warning';
  return { severity: LEVEL_SEVERITY[level] ?? 'unknown', severityReported: level };
}

function runAsset(run: Run, file: string): AssetRef {
  if (run.repositoryUri) return { kind: 'repository', url: run.repositoryUri };
  for (const name of ['SRCROOT', '%SRCROOT%', 'PROJECTROOT', 'REPOROOT']) {
    const uri = resolveBase(run, name);
    if (uri && /^[a-z][a-z0-9+.-]*:/i.test(uri)) return { kind: 'repository', url: uri.replace(/\/+$/, '') };
  }
  return { kind: 'repository', url: basename(file) };
}

/** A base id's URI, following uriBaseId chains (bounded: SARIF forbids cycles, files may still have them). */
function resolveBase(run: Run, name: string | undefined): string | undefined {
  let uri = '';
  let current = name;
  for (let hops = 0; current !== undefined && hops < 8; hops++) {
    const base = run.baseUris.get(current);
    if (base === undefined) return undefined;
    uri = joinUri(base.uri, uri);
    current = base.base;
  }
  return current === undefined ? uri : undefined;
}

function joinUri(base: string, rest: string): string {
  if (rest === '') return base.trim();
  return `${base.trim().replace(/\/*$/, '/')}${rest.trim().replace(/^\/+/, '')}`;
}

function resolvePlace(run: Run, place: HeldResult['places'][number]): Place {
  let uri = place.uri;
  if (uri === undefined && place.artifactIndex !== undefined)
    uri = run.artifacts[place.artifactIndex] || undefined;
  if (uri === undefined) return place;
  return {
    path: relativePath(run, uri),
    startLine: place.startLine,
    endLine: place.endLine,
    snippet: place.snippet,
  };
}

/** Relative to the checkout when possible, so the key is the same on every build machine. */
function relativePath(run: Run, uri: string): string {
  if (/^file:/i.test(uri)) {
    const roots = [
      run.workingDirectory,
      ...[...run.baseUris.keys()].map((name) => resolveBase(run, name)),
    ].filter((r): r is string => r !== undefined && /^file:/i.test(r));
    for (const root of roots) {
      const prefix = root.trim().replace(/\/*$/, '/');
      if (uri.startsWith(prefix)) return decode(uri.slice(prefix.length));
    }
    // file:///C:/code/x.c → C:/code/x.c ; file:///src/x.js → /src/x.js
    return decode(uri.replace(/^file:\/\/(?:localhost)?/i, '').replace(/^\/([A-Za-z]:\/)/, '$1'));
  }
  return decode(uri.replace(/^\.\//, ''));
}

function decode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

function placeFingerprint(result: HeldResult, place: Place): string | undefined {
  // A result-level fingerprint names the result, not each of several locations.
  if (result.places.length <= 1 && result.fingerprint) return result.fingerprint;
  if (place.snippet) {
    const normalized = place.snippet.slice(0, SNIPPET_FINGERPRINT_CHARS).replace(/\s+/g, ' ').trim();
    if (normalized) return `s${createHash('sha256').update(normalized).digest('hex').slice(0, 16)}`;
  }
  return place.startLine !== undefined ? `L${place.startLine}` : undefined;
}

const GHSA_RE = /\bGHSA(?:-[23456789cfghjmpqrvwx]{4}){3}\b/gi;
// Black Duck's own advisory ids, kept as aliases.
const BDSA_RE = /\bBDSA-\d{4}-\d+\b/g;

function advisoryIdsIn(text: string, re: RegExp): string[] {
  return [...new Set(Array.from(text.matchAll(re), (m) => m[0]))];
}

function firstLine(text: string | undefined): string | undefined {
  const line = text?.split('\n', 1)[0]?.trim();
  return line ? boundText(line.length > 200 ? `${line.slice(0, 200)}…` : line, LIMITS.title) : undefined;
}

/** A property that tools write as a string or a list of strings ("cwe": "CWE-327: …" or ["CWE-79"]). */
function textValues(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  return arr({ v: value }, 'v').filter((v): v is string => typeof v === 'string');
}
