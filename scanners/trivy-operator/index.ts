// Trivy Operator custom resources as `kubectl get … -o json` writes them: one resource, a List
// ({"kind": "List", "items": […]}) or a bare array of them. Supported kinds:
// - VulnerabilityReport (and ClusterVulnerabilityReport): one finding per vulnerability, on the image.
// - ConfigAuditReport, RbacAssessmentReport, InfraAssessmentReport (and their Cluster* forms): one
//   finding per failed check, on the Kubernetes resource.
// - ExposedSecretReport: one finding per secret, on the image.
// ClusterComplianceReport and SbomReport summarize or inventory, they do not report findings: a file
// holding only those is refused with a sentence saying what to export instead.
//
// Findings carry scanner "trivy" and the same weakness keys and resource ids as `trivy k8s` reports,
// so the operator and the CLI meet on the same exposures.

import type { Readable } from 'node:stream';
import { type AssetRef, type Finding, InputError } from '../../domain/finding.ts';
import type { ParseContext, ScannerParser } from '../parser.ts';
import { type JsonEvent, type JsonPathSegment, pathText, readJsonEvents } from '../json/index.ts';
import { type JsonRecord, asRecord, num, rec, str, strings } from '../json/fields.ts';
import {
  LIMITS,
  boundList,
  boundText,
  cleanText,
  digestOf,
  normalizeRepository,
  normalizeSeverity,
  vulnerabilityKey,
} from '../json/normalize.ts';
import { Spool } from '../json/spool.ts';
import { canonicalCheckId } from '../trivy/checks.ts';
import { trivyCvss } from '../trivy/cvss.ts';
import { type KubernetesResource, k8sResourceAsset, k8sTags } from '../trivy/kubernetes.ts';

type Family = 'vulnerability' | 'check' | 'secret';
const KINDS: Readonly<Record<string, Family>> = {
  VulnerabilityReport: 'vulnerability',
  ClusterVulnerabilityReport: 'vulnerability',
  ConfigAuditReport: 'check',
  ClusterConfigAuditReport: 'check',
  RbacAssessmentReport: 'check',
  ClusterRbacAssessmentReport: 'check',
  InfraAssessmentReport: 'check',
  ClusterInfraAssessmentReport: 'check',
  ExposedSecretReport: 'secret',
};

const PREFIXES = ['', 'items[*].', '[*].'];
const FIELDS = [
  'kind',
  'metadata.name',
  'metadata.namespace',
  'metadata.labels',
  'report.artifact',
  'report.registry',
  'report.os',
  'report.updateTimestamp',
];
const ITEMS: Readonly<Record<string, Family>> = {
  'report.vulnerabilities[*]': 'vulnerability',
  'report.checks[*]': 'check',
  'report.secrets[*]': 'secret',
};
const READ = {
  values: PREFIXES.flatMap((prefix) => [...FIELDS, ...Object.keys(ITEMS)].map((field) => prefix + field)),
  scopes: ['items[*]', '[*]'],
};

interface Resource {
  readonly id: string;
  kind?: string;
  name?: string;
  namespace?: string;
  labels?: JsonRecord;
  artifact?: JsonRecord;
  registry?: JsonRecord;
  os?: JsonRecord;
  updated?: string;
  asset?: AssetRef;
  counted?: boolean;
}

interface Held {
  resourceId: string;
  family: Family;
  path: JsonPathSegment[];
  value: unknown;
  line?: number;
  column?: number;
}

export const trivyOperatorParser: ScannerParser = {
  format: 'trivy-operator',
  detect(head: string): boolean {
    return /"apiVersion"\s*:\s*"aquasecurity\.github\.io\/v1alpha1"/.test(head);
  },
  parse(input: Readable, ctx: ParseContext): AsyncIterable<Finding> {
    return new OperatorReader(ctx.file).read(input);
  },
};

class OperatorReader {
  private current: Resource | undefined;
  private readonly heldResources = new Map<string, Resource>();
  private readonly held = new Spool<Held>();
  private supported = 0;
  private readonly unsupported = new Set<string>();
  private sawKind = false;

  constructor(private readonly file: string) {}

  async *read(input: Readable): AsyncGenerator<Finding> {
    try {
      for await (const batch of readJsonEvents(input, { file: this.file, ...READ })) {
        for (const event of batch) {
          if (event.kind === 'root') continue;
          if (event.kind === 'close') {
            this.countKind(this.current);
            if (this.held.size > 0) yield* this.release();
            continue;
          }
          const finding = this.onValue(event);
          if (finding) yield finding;
        }
      }
      // A single resource at the top level has no closing scope event.
      this.countKind(this.current);
      if (this.held.size > 0) yield* this.release();
      if (!this.sawKind) {
        throw new InputError(
          'this JSON has no "kind", so it is not a Trivy Operator resource; export it with kubectl get <kind> -o json or pass the right --format',
          this.file,
        );
      }
      if (this.supported === 0 && this.unsupported.size > 0) {
        throw new InputError(
          `${[...this.unsupported].join(', ')} ${this.unsupported.size === 1 ? 'is' : 'are'} not supported: it summarizes or inventories rather than reporting findings; export VulnerabilityReport, ConfigAuditReport or ExposedSecretReport resources instead (kubectl get vulnerabilityreports -A -o json)`,
          this.file,
        );
      }
    } finally {
      this.held.dispose();
    }
  }

  private countKind(resource: Resource | undefined): void {
    if (!resource || resource.counted) return;
    resource.counted = true;
    if (resource.kind === undefined || resource.kind === 'List') return;
    if (KINDS[resource.kind]) this.supported++;
    else this.unsupported.add(resource.kind);
  }

  private onValue(event: Extract<JsonEvent, { kind: 'value' }>): Finding | undefined {
    const prefixLength = typeof event.path[0] === 'number' ? 1 : event.path[0] === 'items' ? 2 : 0;
    const resource = this.resourceAt(event.path.slice(0, prefixLength));
    const field = event.pattern.slice(
      PREFIXES.find((p) => p !== '' && event.pattern.startsWith(p))?.length ?? 0,
    );
    const family = ITEMS[field];
    if (family) {
      // kubectl writes kind and metadata before report, and report.artifact before the lists; hold
      // anything that arrives before its context, which only re-serialized files do.
      const needsArtifact = family !== 'check';
      if (
        resource.kind === undefined ||
        resource.labels === undefined ||
        (needsArtifact && !resource.artifact)
      ) {
        this.heldResources.set(resource.id, resource);
        this.held.push({
          resourceId: resource.id,
          family,
          path: event.path,
          value: event.value,
          line: event.line,
          column: event.column,
        });
        return undefined;
      }
      return this.finding(resource, family, event);
    }
    const { value } = event;
    const text = typeof value === 'string' ? cleanText(value) : undefined;
    switch (field) {
      case 'kind':
        resource.kind = text;
        this.sawKind = true;
        break;
      case 'metadata.name':
        resource.name = text;
        break;
      case 'metadata.namespace':
        resource.namespace = text;
        break;
      case 'metadata.labels':
        resource.labels = asRecord(value) ?? {};
        break;
      case 'report.artifact':
        resource.artifact = asRecord(value);
        break;
      case 'report.registry':
        resource.registry = asRecord(value);
        break;
      case 'report.os':
        resource.os = asRecord(value);
        break;
      case 'report.updateTimestamp':
        resource.updated = text;
        break;
    }
    resource.asset = undefined;
    return undefined;
  }

  private resourceAt(prefix: JsonPathSegment[]): Resource {
    const id = prefix.join('/');
    if (this.current?.id !== id) {
      this.countKind(this.current);
      this.current = { id };
    }
    return this.current;
  }

  private async *release(): AsyncGenerator<Finding> {
    for await (const held of this.held.drain()) {
      const resource = this.heldResources.get(held.resourceId);
      if (!resource) continue;
      const finding = this.finding(resource, held.family, { kind: 'value', pattern: '', ...held });
      if (finding) yield finding;
    }
    this.heldResources.clear();
  }

  private finding(
    resource: Resource,
    family: Family,
    event: Extract<JsonEvent, { kind: 'value' }>,
  ): Finding | undefined {
    const kind = resource.kind;
    if (kind === undefined || KINDS[kind] !== family) return undefined;
    const item = asRecord(event.value);
    if (!item) {
      throw new InputError(
        `expected "${pathText(event.path)}" to be an object but found ${event.value === null ? 'null' : typeof event.value}`,
        this.file,
        event.line,
        event.column,
      );
    }
    const workload = this.workload(resource);
    const common = { scanner: 'trivy', scanTime: resource.updated };
    if (family === 'check') {
      if (item['success'] === true) return undefined;
      const checkId = str(item, 'checkID');
      const ruleId = canonicalCheckId(undefined, checkId);
      const title = boundText(str(item, 'title'), LIMITS.title);
      if (ruleId === undefined && title === undefined) return undefined;
      const severityReported = str(item, 'severity');
      return {
        ...common,
        asset: (resource.asset ??= k8sResourceAsset(undefined, workload)),
        // A check without an id is keyed by its title, the only stable thing it has.
        weaknessKey: `trivy:${ruleId ?? `check/${title}`}`,
        aliases: checkId && checkId !== ruleId ? [checkId] : undefined,
        ruleId,
        kind: 'misconfiguration',
        title: title ?? ruleId!,
        description: boundText(str(item, 'description')),
        solution: boundText(str(item, 'remediation')),
        severity: normalizeSeverity(severityReported),
        severityReported,
        evidence: boundText(strings(item, 'messages').join('\n')),
      };
    }
    resource.asset ??= this.imageAsset(resource, workload);
    const severityReported = str(item, 'severity');
    if (family === 'secret') {
      const ruleId = str(item, 'ruleID');
      if (ruleId === undefined) return undefined;
      const target = cleanText(str(item, 'target'));
      const category = str(item, 'category');
      return {
        ...common,
        asset: resource.asset,
        weaknessKey: `trivy:secret/${ruleId}${target ? `@${target}` : ''}`,
        ruleId,
        kind: 'secret',
        title: boundText(str(item, 'title'), LIMITS.title) ?? ruleId,
        description: category ? `Exposed secret of category ${category}.` : undefined,
        solution: 'Remove the secret from the image and its build context, then revoke and rotate it.',
        severity: normalizeSeverity(severityReported),
        severityReported,
        location: target ? { path: target } : undefined,
        evidence: boundText(str(item, 'match')),
      };
    }
    const id = str(item, 'vulnerabilityID');
    if (id === undefined) return undefined;
    const key = vulnerabilityKey('trivy', [id])!;
    const pkg = cleanText(str(item, 'resource'));
    const fixed = cleanText(str(item, 'fixedVersion'));
    const score = num(item, 'score');
    const cvss =
      trivyCvss(rec(item, 'cvss'), str(item, 'severitySource')) ??
      // Older operators give only the score Trivy ranked by, which is CVSS v3.
      (score !== undefined ? [{ version: '3.1' as const, score, source: 'trivy-operator' }] : undefined);
    return {
      ...common,
      asset: resource.asset,
      weaknessKey: key.weaknessKey,
      aliases: key.aliases,
      ruleId: id,
      kind: 'vulnerability',
      title: boundText(str(item, 'title'), LIMITS.title) ?? id,
      description: boundText(str(item, 'description')),
      solution: fixed && pkg ? `Upgrade ${pkg} to a fixed version: ${fixed}.` : undefined,
      severity: normalizeSeverity(severityReported),
      severityReported,
      cvss,
      package: pkg
        ? {
            name: pkg,
            version: cleanText(str(item, 'installedVersion')),
            fixedVersion: fixed,
            type: cleanText(str(item, 'packageType')),
            path: cleanText(str(item, 'pkgPath')),
            purl: cleanText(str(item, 'packagePURL')),
          }
        : undefined,
      references: boundList([str(item, 'primaryLink'), ...strings(item, 'links')], LIMITS.references),
      evidence: boundText(
        [
          pkg && `${pkg} ${str(item, 'installedVersion') ?? ''} is installed`,
          str(item, 'target') && `found in ${str(item, 'target')}`,
        ]
          .filter(Boolean)
          .join('; '),
      ),
    };
  }

  /** The workload the report is about, from the operator's labels (the CR's own name is derived). */
  private workload(resource: Resource): KubernetesResource {
    const labels = resource.labels;
    return {
      namespace: str(labels, 'trivy-operator.resource.namespace') ?? resource.namespace,
      kind: str(labels, 'trivy-operator.resource.kind'),
      name: str(labels, 'trivy-operator.resource.name') ?? resource.name,
      container: str(labels, 'trivy-operator.container.name'),
    };
  }

  private imageAsset(resource: Resource, workload: KubernetesResource): AssetRef {
    const repository = str(resource.artifact, 'repository');
    const tags = k8sTags(undefined, workload);
    if (repository === undefined) return { ...k8sResourceAsset(undefined, workload), tags };
    const family = str(resource.os, 'family');
    return {
      kind: 'image',
      imageRepo: normalizeRepository(repository, str(resource.registry, 'server')),
      imageTag: str(resource.artifact, 'tag'),
      imageDigest: str(resource.artifact, 'digest') ?? digestOf(str(resource.artifact, 'repoDigest')),
      os: family ? [family, str(resource.os, 'name')].filter(Boolean).join(' ') : undefined,
      tags,
    };
  }
}
