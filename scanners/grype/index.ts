// Grype JSON reports (`grype <target> -o json`).
//
// Grype writes "matches" first and "source", "distro" and "descriptor" (what was scanned, when) after
// them. Findings are therefore built as matches stream by, without their asset, and held in a Spool
// (memory, then a temporary file) until the end of the document names the asset. When a producer
// writes the context first, findings go out immediately.
//
// Decisions:
// - GHSA → CVE aliasing: when relatedVulnerabilities carry a CVE, the CVE is the weakness key and the
//   GHSA an alias, so Grype and Trivy meet on the same exposure. Several related CVEs: the first wins,
//   the others are aliases.
// - "ignoredMatches" are Grype's own suppressions and are not findings.
// - The image digest is the registry (repo) digest when known, else the image id, as for Trivy.

import type { Readable } from 'node:stream';
import { basename } from 'node:path';
import { type AssetRef, type CvssRef, type Finding, InputError } from '../../domain/finding.ts';
import type { ParseContext, ScannerParser } from '../parser.ts';
import { type JsonEvent, pathText, readJsonEvents } from '../json/index.ts';
import { type JsonRecord, arr, asRecord, num, rec, str, strings } from '../json/fields.ts';
import {
  LIMITS,
  boundList,
  boundText,
  cleanText,
  cvssVersion,
  digestOf,
  isCve,
  isImageReference,
  normalizeSeverity,
  parseImageReference,
  vulnerabilityKey,
} from '../json/normalize.ts';
import { Spool } from '../json/spool.ts';

const READ = {
  values: ['matches[*]', 'source', 'distro', 'descriptor.name', 'descriptor.version', 'descriptor.timestamp'],
  scopes: ['matches'],
};

type Pending = Omit<Finding, 'asset'>;

export const grypeParser: ScannerParser = {
  format: 'grype',
  detect(head: string): boolean {
    if (!head.trimStart().startsWith('{') || !/"matches"\s*:\s*\[/.test(head)) return false;
    return (
      /"(relatedVulnerabilities|matchDetails|artifact)"\s*:/.test(head) || /"name"\s*:\s*"grype"/.test(head)
    );
  },
  parse(input: Readable, ctx: ParseContext): AsyncIterable<Finding> {
    return readGrype(input, ctx.file);
  },
};

async function* readGrype(input: Readable, file: string): AsyncGenerator<Finding> {
  let source: JsonRecord | undefined;
  let distro: JsonRecord | undefined;
  let descriptor: { name?: string; version?: string; timestamp?: string } = {};
  const seen = { source: false, distro: false, descriptor: false, matches: false };
  let rootType: string | undefined;
  let asset: AssetRef | undefined;
  const held = new Spool<Pending>();
  const complete = (pending: Pending): Finding => {
    asset ??= grypeAsset(source, distro, file);
    return { ...pending, asset, scanTime: descriptor.timestamp };
  };
  try {
    for await (const batch of readJsonEvents(input, { file, ...READ })) {
      for (const event of batch) {
        if (event.kind === 'root') rootType = event.type;
        else if (event.kind === 'close') seen.matches = true;
        else if (event.pattern === 'matches[*]') {
          seen.matches = true;
          const pending = matchFinding(event, file);
          if (!pending) continue;
          // Everything the asset needs has been read only if all three followers came first.
          if (seen.source && seen.distro && seen.descriptor) yield complete(pending);
          else held.push(pending);
        } else if (event.pattern === 'source') {
          source = asRecord(event.value);
          seen.source = true;
        } else if (event.pattern === 'distro') {
          distro = asRecord(event.value);
          seen.distro = true;
        } else {
          seen.descriptor = true;
          const value = typeof event.value === 'string' ? cleanText(event.value) : undefined;
          if (event.pattern === 'descriptor.name') descriptor = { ...descriptor, name: value };
          else if (event.pattern === 'descriptor.version') descriptor = { ...descriptor, version: value };
          else descriptor = { ...descriptor, timestamp: value };
        }
      }
    }
    if (rootType === 'object' && !seen.matches) {
      throw new InputError(
        'this JSON has no "matches" list, so it is not a Grype report; check the file or pass the right --format',
        file,
      );
    }
    if (descriptor.name !== undefined && descriptor.name !== 'grype') {
      throw new InputError(
        `the descriptor says this report was made by "${descriptor.name}", not Grype; pass the right --format`,
        file,
      );
    }
    for await (const pending of held.drain()) yield complete(pending);
  } finally {
    held.dispose();
  }
}

function matchFinding(event: Extract<JsonEvent, { kind: 'value' }>, file: string): Pending | undefined {
  const match = asRecord(event.value);
  const vulnerability = rec(match, 'vulnerability');
  const id = str(vulnerability, 'id');
  if (!match || !vulnerability || id === undefined) {
    throw new InputError(
      `expected "${pathText(event.path)}" to be a Grype match with vulnerability.id; is this the right --format?`,
      file,
      event.line,
      event.column,
    );
  }
  const related = arr(match, 'relatedVulnerabilities')
    .map(asRecord)
    .filter((r): r is JsonRecord => r !== undefined);
  const key = vulnerabilityKey('grype', [id, ...related.map((r) => str(r, 'id'))])!;
  const artifact = rec(match, 'artifact');
  const name = cleanText(str(artifact, 'name'));
  const version = cleanText(str(artifact, 'version'));
  const locations = arr(artifact, 'locations')
    .map((l) => cleanText(str(asRecord(l), 'path')))
    .filter((p): p is string => p !== undefined);
  const fix = rec(vulnerability, 'fix');
  const fixVersions = strings(fix, 'versions');
  const fixState = str(fix, 'state');
  const severityReported = str(vulnerability, 'severity');
  const shownId = isCve(key.weaknessKey) || key.weaknessKey.startsWith('GHSA') ? key.weaknessKey : id;
  const records = [vulnerability, ...related];
  const cvss = grypeCvss(records);
  const epss = grypeEpss(records, key.weaknessKey);
  const details = arr(match, 'matchDetails')
    .map(asRecord)
    .map((d) => {
      const found = rec(d, 'found');
      return [
        str(d, 'matcher'),
        str(d, 'type'),
        str(found, 'versionConstraint') && `constraint ${str(found, 'versionConstraint')}`,
      ]
        .filter(Boolean)
        .join(' ');
    })
    .filter(Boolean);
  const evidence = [
    name && `${name} ${version ?? ''} (${str(artifact, 'type') ?? 'package'})`.replace(/ +\(/, ' ('),
    fixState && `fix state ${fixState}${fixVersions.length ? ` (${fixVersions.join(', ')})` : ''}`,
    details.length ? `matched by ${details.join('; ')}` : undefined,
    locations.length ? `at ${locations.slice(0, 10).join(', ')}` : undefined,
  ].filter(Boolean);
  return {
    scanner: 'grype',
    weaknessKey: key.weaknessKey,
    aliases: key.aliases,
    ruleId: id,
    kind: 'vulnerability',
    title: boundText(`${shownId} in ${name ?? 'a package'}${version ? ` ${version}` : ''}`, LIMITS.title)!,
    description: boundText(
      str(vulnerability, 'description') ?? related.map((r) => str(r, 'description')).find(Boolean),
    ),
    solution:
      fixVersions.length > 0 && fixState !== 'wont-fix' && name
        ? `Upgrade ${name} to a fixed version: ${fixVersions.join(', ')}.`
        : undefined,
    severity: normalizeSeverity(severityReported),
    severityReported,
    cvss,
    epss,
    package: name
      ? {
          name,
          version,
          fixedVersion: fixVersions.length > 0 ? fixVersions.join(', ') : undefined,
          type: cleanText(str(artifact, 'type')),
          path: locations[0],
          purl: cleanText(str(artifact, 'purl')),
        }
      : undefined,
    references: boundList(
      records.flatMap((r) => [str(r, 'dataSource'), ...strings(r, 'urls')]),
      LIMITS.references,
    ),
    // Grype lists every CPE it tried; a handful is enough to recognize the product.
    cpe: boundList(strings(artifact, 'cpes'), 8),
    evidence: boundText(evidence.join('; ')),
  };
}

function grypeCvss(records: readonly JsonRecord[]): CvssRef[] | undefined {
  const out: CvssRef[] = [];
  const seen = new Set<string>();
  for (const record of records) {
    for (const item of arr(record, 'cvss')) {
      const cvss = asRecord(item);
      const vector = cleanText(str(cvss, 'vector'));
      const version = cvssVersion(vector, str(cvss, 'version'));
      if (!version) continue;
      const source = str(cvss, 'source') ?? str(record, 'namespace');
      const dedupe = `${version}|${vector}|${source}`;
      if (seen.has(dedupe)) continue;
      seen.add(dedupe);
      out.push({ version, vector, score: num(rec(cvss, 'metrics'), 'baseScore'), source });
    }
  }
  return out.length > 0 ? out : undefined;
}

/** Grype ≥ 0.80 carries EPSS per CVE; take the one for the weakness key, else the first. */
function grypeEpss(records: readonly JsonRecord[], weaknessKey: string): Finding['epss'] {
  let first: Finding['epss'];
  for (const record of records) {
    for (const item of arr(record, 'epss')) {
      const entry = asRecord(item);
      const probability = num(entry, 'epss');
      if (probability === undefined || probability < 0 || probability > 1) continue;
      const value = { probability, percentile: num(entry, 'percentile') };
      if (str(entry, 'cve')?.toUpperCase() === weaknessKey) return value;
      first ??= value;
    }
  }
  return first;
}

function grypeAsset(source: JsonRecord | undefined, distro: JsonRecord | undefined, file: string): AssetRef {
  const distroName = str(distro, 'name');
  const os = distroName ? [distroName, str(distro, 'version')].filter(Boolean).join(' ') : undefined;
  const type = str(source, 'type');
  const target = source?.['target'];
  if (type === 'image') {
    const image = asRecord(target);
    const name = [str(image, 'userInput'), ...strings(image, 'tags')].find(isImageReference);
    const ref = name ? parseImageReference(name) : undefined;
    const repoDigests = strings(image, 'repoDigests');
    const digest =
      ref?.imageDigest ??
      digestOf(repoDigests.find((d) => ref && parseImageReference(d)?.imageRepo === ref.imageRepo)) ??
      digestOf(repoDigests[0]) ??
      str(image, 'imageID');
    if (ref || digest) return { kind: 'image', ...ref, imageDigest: digest, os };
  }
  // Directory and file scans: the target is the scanned path (some versions quote it: "\".\"").
  const path =
    typeof target === 'string'
      ? cleanText(target.replace(/^"(.*)"$/, '$1'))
      : str(asRecord(target), 'userInput');
  if (type === 'directory' || type === 'file') return { kind: 'repository', url: path ?? basename(file), os };
  return { kind: 'application', url: path ?? basename(file), os };
}
