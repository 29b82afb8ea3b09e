// Trivy JSON reports: schema 2 (`trivy image|fs|repo|sbom -f json`), Kubernetes reports
// (`trivy k8s -f json`, both the `Resources` layout and the older `Vulnerabilities`/`Misconfigurations`
// one) and the legacy pre-0.20 list of `{Target, Vulnerabilities}`.
//
// Decisions:
// - Status "not_affected" (the vendor says the package is not vulnerable) is not a finding; every other
//   status is, "fixed" included (it means a fixed version exists, not that this one is fixed).
// - Misconfigurations other than Status "FAIL" (PASS, EXCEPTION) are not findings.
// - Licenses are compliance data, not exposures: ignored.
// - Entries without an id (a legacy sample has one) cannot be keyed and are skipped.
// - Misconfigurations and secrets in file targets key on the file too ("trivy:AVD-DS-0002@Dockerfile"):
//   the same check failing in two Dockerfiles of one repository is two things to fix. Kubernetes
//   misconfigurations do not need it: their asset is the resource itself.

import type { Readable } from 'node:stream';
import { basename } from 'node:path';
import { type AssetRef, type Finding, InputError } from '../../domain/finding.ts';
import type { ParseContext, ScannerParser } from '../parser.ts';
import { type JsonEvent, type JsonPathSegment, pathText, readJsonEvents } from '../json/index.ts';
import { type JsonRecord, asRecord, num, rec, str, strings, arr } from '../json/fields.ts';
import {
  LIMITS,
  boundList,
  boundText,
  cleanText,
  cweList,
  digestOf,
  isImageReference,
  normalizeSeverity,
  parseImageReference,
  vulnerabilityKey,
} from '../json/normalize.ts';
import { Spool } from '../json/spool.ts';
import { canonicalCheckId } from './checks.ts';
import { trivyCvss } from './cvss.ts';
import { k8sResourceAsset, k8sTags } from './kubernetes.ts';

const K8S_GROUPS = ['Resources', 'Vulnerabilities', 'Misconfigurations'] as const;
const RESULT_PREFIXES = ['Results[*]', '[*]', ...K8S_GROUPS.map((group) => `${group}[*].Results[*]`)];
const ITEM_KINDS = {
  Vulnerabilities: 'vulnerability',
  Misconfigurations: 'misconfiguration',
  Secrets: 'secret',
} as const;
type ItemKind = (typeof ITEM_KINDS)[keyof typeof ITEM_KINDS];

type Role =
  | { readonly level: 'report'; readonly field: string }
  | { readonly level: 'resource'; readonly field: 'Namespace' | 'Kind' | 'Name' }
  | { readonly level: 'result'; readonly field: 'Target' | 'Class' | 'Type' }
  | { readonly level: 'item'; readonly item: ItemKind };

const ROLES = new Map<string, Role>();
for (const field of [
  'SchemaVersion',
  'CreatedAt',
  'ReportID',
  'ArtifactName',
  'ArtifactType',
  'ClusterName',
]) {
  ROLES.set(field, { level: 'report', field });
}
for (const field of ['OS', 'ImageID', 'RepoTags', 'RepoDigests'])
  ROLES.set(`Metadata.${field}`, { level: 'report', field });
for (const group of K8S_GROUPS) {
  for (const field of ['Namespace', 'Kind', 'Name'] as const)
    ROLES.set(`${group}[*].${field}`, { level: 'resource', field });
}
for (const prefix of RESULT_PREFIXES) {
  for (const field of ['Target', 'Class', 'Type'] as const)
    ROLES.set(`${prefix}.${field}`, { level: 'result', field });
  for (const [key, item] of Object.entries(ITEM_KINDS))
    ROLES.set(`${prefix}.${key}[*]`, { level: 'item', item });
}
// Containers whose mere presence says "this is a Trivy report", and whose end releases held items.
const TOP_SCOPES = new Set(['Results[*]', '[*]', ...K8S_GROUPS.map((group) => `${group}[*]`)]);
const PRESENCE_SCOPES = ['Results', ...K8S_GROUPS];
const READ = {
  values: [...ROLES.keys()],
  scopes: [...TOP_SCOPES, ...PRESENCE_SCOPES],
};

interface ResourceContext {
  namespace?: string;
  kind?: string;
  name?: string;
}

interface ResultContext {
  readonly id: string;
  readonly resource: ResourceContext | undefined;
  target?: string;
  cls?: string;
  type?: string;
  asset?: AssetRef;
}

interface HeldItem {
  resultId: string;
  item: ItemKind;
  path: JsonPathSegment[];
  value: unknown;
  line?: number;
  column?: number;
}

export const trivyParser: ScannerParser = {
  format: 'trivy',
  detect(head: string): boolean {
    const start = head.trimStart();
    if (start.startsWith('{')) {
      if (/"SchemaVersion"\s*:\s*\d/.test(head) && /"(Results|ArtifactName|ArtifactType)"\s*:/.test(head))
        return true;
      return (
        /"ClusterName"\s*:/.test(head) &&
        /"(Resources|Vulnerabilities|Misconfigurations)"\s*:\s*\[/.test(head)
      );
    }
    // Legacy: a top-level list of results.
    return (
      /^\[\s*\{\s*"Target"\s*:/.test(start) ||
      (start.startsWith('[') && /"Target"\s*:[^]*"Vulnerabilities"\s*:/.test(head))
    );
  },
  parse(input: Readable, ctx: ParseContext): AsyncIterable<Finding> {
    return new TrivyReader(ctx.file).read(input);
  },
};

class TrivyReader {
  private readonly report: {
    schemaVersion?: number;
    createdAt?: string;
    reportId?: string;
    artifactName?: string;
    artifactType?: string;
    os?: string;
    imageId?: string;
    repoTags: string[];
    repoDigests: string[];
    clusterName?: string;
    nameFromTarget?: string;
  } = { repoTags: [], repoDigests: [] };
  private rootType: 'object' | 'array' | 'null' | undefined;
  private recognized = false;
  private resource: { id: string; context: ResourceContext } | undefined;
  private result: ResultContext | undefined;
  /** Contexts of held items, by result id, until they are released. */
  private readonly heldContexts = new Map<string, ResultContext>();
  private readonly held = new Spool<HeldItem>();
  private reportAsset: AssetRef | undefined;

  constructor(private readonly file: string) {}

  async *read(input: Readable): AsyncGenerator<Finding> {
    try {
      for await (const batch of readJsonEvents(input, { file: this.file, ...READ })) {
        for (const event of batch) {
          if (event.kind === 'root') this.rootType = event.type;
          else if (event.kind === 'close') {
            this.recognized = true;
            if (TOP_SCOPES.has(event.pattern) && this.held.size > 0) yield* this.release();
          } else {
            const finding = this.onValue(event);
            if (finding) yield finding;
          }
        }
      }
      if (this.held.size > 0) yield* this.release();
      if (this.rootType === 'object' && !this.recognized && this.report.schemaVersion === undefined) {
        throw new InputError(
          'this JSON has no "SchemaVersion", "Results" or "ClusterName", so it is not a Trivy report; check the file or pass the right --format',
          this.file,
        );
      }
    } finally {
      this.held.dispose();
    }
  }

  private onValue(event: Extract<JsonEvent, { kind: 'value' }>): Finding | undefined {
    const role = ROLES.get(event.pattern);
    if (!role) return undefined;
    switch (role.level) {
      case 'report':
        this.onReportField(role.field, event);
        return undefined;
      case 'resource': {
        const context = this.resourceAt(event.path.slice(0, -1));
        const value = typeof event.value === 'string' ? cleanText(event.value) : undefined;
        if (role.field === 'Namespace') context.namespace = value;
        else if (role.field === 'Kind') context.kind = value;
        else context.name = value;
        return undefined;
      }
      case 'result': {
        const context = this.resultAt(event.path.slice(0, -1));
        const value = typeof event.value === 'string' ? cleanText(event.value) : undefined;
        if (role.field === 'Target') context.target = value;
        else if (role.field === 'Class') context.cls = value;
        else context.type = value;
        context.asset = undefined;
        return undefined;
      }
      case 'item': {
        const context = this.resultAt(event.path.slice(0, -2));
        // Trivy writes Target/Class/Type before the lists, and Kubernetes resources name themselves
        // before their Results; a re-serialized file (jq -S) may not. Hold items until their
        // context is complete, which in Trivy's own output never happens.
        if (
          context.target === undefined ||
          (context.resource !== undefined && context.resource.name === undefined)
        ) {
          this.heldContexts.set(context.id, context);
          this.held.push({
            resultId: context.id,
            item: role.item,
            path: event.path,
            value: event.value,
            line: event.line,
            column: event.column,
          });
          return undefined;
        }
        return this.finding(role.item, context, event);
      }
    }
  }

  private async *release(): AsyncGenerator<Finding> {
    for await (const held of this.held.drain()) {
      const context = this.heldContexts.get(held.resultId);
      if (!context) continue;
      const finding = this.finding(held.item, context, { kind: 'value', pattern: '', ...held });
      if (finding) yield finding;
    }
    this.heldContexts.clear();
  }

  private onReportField(field: string, event: Extract<JsonEvent, { kind: 'value' }>): void {
    const { value } = event;
    const text = typeof value === 'string' ? cleanText(value) : undefined;
    switch (field) {
      case 'SchemaVersion':
        if (value !== 2) {
          throw new InputError(
            `Trivy SchemaVersion ${JSON.stringify(value)} is not supported; export the report with a Trivy that writes schema 2 (0.20 or later)`,
            this.file,
            event.line,
            event.column,
          );
        }
        this.report.schemaVersion = 2;
        break;
      case 'CreatedAt':
        this.report.createdAt = text;
        break;
      case 'ReportID':
        this.report.reportId = text;
        break;
      case 'ArtifactName':
        this.report.artifactName = text;
        break;
      case 'ArtifactType':
        this.report.artifactType = text;
        break;
      case 'ClusterName':
        this.report.clusterName = text;
        break;
      case 'OS': {
        const os = asRecord(value);
        const family = str(os, 'Family');
        this.report.os = family ? [family, str(os, 'Name')].filter(Boolean).join(' ') : undefined;
        break;
      }
      case 'ImageID':
        this.report.imageId = text;
        break;
      case 'RepoTags':
        this.report.repoTags = strings({ v: value }, 'v');
        break;
      case 'RepoDigests':
        this.report.repoDigests = strings({ v: value }, 'v');
        break;
    }
    this.reportAsset = undefined;
  }

  private resourceAt(path: JsonPathSegment[]): ResourceContext {
    const id = path.join('/');
    if (this.resource?.id !== id) this.resource = { id, context: {} };
    return this.resource.context;
  }

  private resultAt(path: JsonPathSegment[]): ResultContext {
    const id = path.join('/');
    if (this.result?.id === id) return this.result;
    // Kubernetes results sit in a resource: [group, index, 'Results', i].
    const resource =
      typeof path[0] === 'string' && path.length === 4 ? this.resourceAt(path.slice(0, 2)) : undefined;
    this.result = { id, resource };
    return this.result;
  }

  private finding(
    item: ItemKind,
    context: ResultContext,
    event: Extract<JsonEvent, { kind: 'value' }>,
  ): Finding | undefined {
    const record = asRecord(event.value);
    if (!record) {
      throw new InputError(
        `expected "${pathText(event.path)}" to be an object describing a ${item} but found ${describe(event.value)}`,
        this.file,
        event.line,
        event.column,
      );
    }
    context.asset ??= this.assetFor(context);
    if (item === 'vulnerability') return this.vulnerability(record, context, context.asset);
    if (item === 'misconfiguration') return this.misconfiguration(record, context, context.asset);
    return this.secret(record, context, context.asset);
  }

  private common(): Pick<Finding, 'scanner' | 'scanId' | 'scanTime'> {
    return { scanner: 'trivy', scanId: this.report.reportId, scanTime: this.report.createdAt };
  }

  private vulnerability(v: JsonRecord, context: ResultContext, asset: AssetRef): Finding | undefined {
    const id = str(v, 'VulnerabilityID');
    const status = str(v, 'Status');
    if (id === undefined || status === 'not_affected') return undefined;
    const key = vulnerabilityKey('trivy', [id, ...strings(v, 'VendorIDs')])!;
    const pkgName = cleanText(str(v, 'PkgName'));
    const installed = cleanText(str(v, 'InstalledVersion'));
    const fixed = cleanText(str(v, 'FixedVersion'));
    const severityReported = str(v, 'Severity');
    const pkgPath =
      cleanText(str(v, 'PkgPath')) ?? (context.cls === 'lang-pkgs' ? context.target : undefined);
    let evidence = pkgName ? `${pkgName} ${installed ?? '(version unknown)'} is installed` : '';
    if (fixed) evidence += `; fixed in ${fixed}`;
    if (status) evidence += `; status ${status}`;
    if (context.target) evidence += `; found in ${context.target}`;
    return {
      ...this.common(),
      asset,
      weaknessKey: key.weaknessKey,
      aliases: key.aliases,
      ruleId: id,
      kind: 'vulnerability',
      title: boundText(str(v, 'Title'), LIMITS.title) ?? id,
      description: boundText(str(v, 'Description')),
      solution: fixed && pkgName ? `Upgrade ${pkgName} to a fixed version: ${fixed}.` : undefined,
      severity: normalizeSeverity(severityReported),
      severityReported,
      cvss: trivyCvss(rec(v, 'CVSS'), str(v, 'SeveritySource')),
      package: pkgName
        ? {
            name: pkgName,
            version: installed,
            fixedVersion: fixed,
            type: context.type,
            path: pkgPath,
            purl: cleanText(str(rec(v, 'PkgIdentifier'), 'PURL')),
          }
        : undefined,
      cwe: cweList(strings(v, 'CweIDs')),
      references: boundList([str(v, 'PrimaryURL'), ...strings(v, 'References')], LIMITS.references),
      evidence: boundText(evidence.replace(/^; /, '')),
    };
  }

  private misconfiguration(m: JsonRecord, context: ResultContext, asset: AssetRef): Finding | undefined {
    const status = str(m, 'Status');
    if (status !== undefined && status !== 'FAIL') return undefined;
    const shortId = str(m, 'ID');
    const ruleId = canonicalCheckId(str(m, 'AVDID'), shortId);
    if (ruleId === undefined) return undefined;
    const cause = rec(m, 'CauseMetadata');
    const lines = arr(rec(cause, 'Code'), 'Lines')
      .map(asRecord)
      .filter((line) => line?.['IsCause'] === true)
      .map(
        (line) =>
          `${num(line, 'Number') ?? ''}: ${typeof line?.['Content'] === 'string' ? line['Content'] : ''}`,
      );
    const message = str(m, 'Message');
    const severityReported = str(m, 'Severity');
    const target = context.target;
    const onResource = asset.kind === 'cloud' && context.resource !== undefined;
    const startLine = num(cause, 'StartLine');
    return {
      ...this.common(),
      asset,
      weaknessKey: `trivy:${ruleId}${onResource || target === undefined ? '' : `@${target}`}`,
      aliases: shortId && shortId !== ruleId ? [shortId] : undefined,
      ruleId,
      kind: 'misconfiguration',
      title: boundText(str(m, 'Title'), LIMITS.title) ?? ruleId,
      description: boundText(str(m, 'Description')),
      solution: boundText(str(m, 'Resolution')),
      severity: normalizeSeverity(severityReported),
      severityReported,
      location:
        target && !onResource ? { path: target, startLine, endLine: num(cause, 'EndLine') } : undefined,
      references: boundList([str(m, 'PrimaryURL'), ...strings(m, 'References')], LIMITS.references),
      evidence: boundText([message, ...lines].filter(Boolean).join('\n')),
    };
  }

  private secret(s: JsonRecord, context: ResultContext, asset: AssetRef): Finding | undefined {
    const ruleId = str(s, 'RuleID');
    if (ruleId === undefined) return undefined;
    const severityReported = str(s, 'Severity');
    const target = context.target;
    const category = str(s, 'Category');
    return {
      ...this.common(),
      asset,
      weaknessKey: `trivy:secret/${ruleId}${target === undefined ? '' : `@${target}`}`,
      ruleId,
      kind: 'secret',
      title: boundText(str(s, 'Title'), LIMITS.title) ?? ruleId,
      description: category ? `Exposed secret of category ${category}.` : undefined,
      solution: 'Remove the secret from the file and its history, then revoke and rotate it.',
      severity: normalizeSeverity(severityReported),
      severityReported,
      location: target
        ? { path: target, startLine: num(s, 'StartLine'), endLine: num(s, 'EndLine') }
        : undefined,
      // Trivy masks the secret itself in Match ("GITHUB_PAT=*****").
      evidence: boundText(str(s, 'Match')),
    };
  }

  private assetFor(context: ResultContext): AssetRef {
    const target = context.target;
    if (context.resource) {
      const tags = k8sTags(this.report.clusterName, context.resource);
      if (context.cls === 'os-pkgs' && target) {
        const image = imageFromTarget(target);
        if (image) return { ...image, tags };
      }
      return k8sResourceAsset(this.report.clusterName, context.resource);
    }
    if (this.rootType === 'array') {
      // Legacy reports name no artifact: an OS target "image (alpine 3.7.1)" is the image itself,
      // other targets (lock files) are read as applications.
      return (
        (target && imageFromTarget(target)) || { kind: 'application', url: target ?? basename(this.file) }
      );
    }
    if (
      this.report.nameFromTarget === undefined &&
      context.cls === 'os-pkgs' &&
      target !== undefined &&
      ![this.report.artifactName, ...this.report.repoTags].some(isImageReference)
    ) {
      // `trivy image --input` and some CI exports leave ArtifactName empty; the OS result's target
      // ("repo:tag (debian 10.13)") still names the image, and Trivy writes that result first.
      const named = /^(\S+) \([^()]+\)$/.exec(target)?.[1];
      if (isImageReference(named)) {
        this.report.nameFromTarget = named;
        this.reportAsset = undefined;
      }
    }
    this.reportAsset ??= this.assetOfReport();
    return this.reportAsset;
  }

  private assetOfReport(): AssetRef {
    const { artifactName, artifactType, imageId, repoTags, repoDigests, os, nameFromTarget } = this.report;
    const looksLikeImage = imageId !== undefined || repoTags.length > 0 || repoDigests.length > 0;
    if (artifactType === 'container_image' || (artifactType === undefined && looksLikeImage)) {
      const name = [artifactName, ...repoTags, nameFromTarget].find(isImageReference);
      const ref = name ? parseImageReference(name) : undefined;
      const digest =
        ref?.imageDigest ??
        digestOf(repoDigests.find((d) => ref && parseImageReference(d)?.imageRepo === ref.imageRepo)) ??
        digestOf(repoDigests[0]) ??
        imageId;
      if (ref || digest) return { kind: 'image', ...ref, imageDigest: digest, os };
    }
    switch (artifactType) {
      case 'filesystem':
      case 'repository':
      case 'rootfs':
        return { kind: 'repository', url: artifactName ?? basename(this.file) };
      case 'vm':
        return { kind: 'cloud', cloudId: artifactName ?? basename(this.file), os };
      default:
        // SBOM scans (cyclonedx, spdx) and anything newer: the artifact is an application.
        return { kind: 'application', url: artifactName ?? basename(this.file), os };
    }
  }
}

/** "docker.io/redis:6.0.5 (debian 10.4)" → image asset with os "debian 10.4". */
function imageFromTarget(target: string): AssetRef | undefined {
  const match = /^(\S+) \(([^()]+)\)$/.exec(target);
  if (!match || !isImageReference(match[1])) return undefined;
  const ref = parseImageReference(match[1]!);
  return ref ? { kind: 'image', ...ref, os: match[2] } : undefined;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}
