// OpenVAS / Greenbone (GVM) XML report: <report id><report id>…<results><result> with host (+ hostname
// child), port "443/tcp" or "general/tcp", the NVT (oid, name, tags "k=v|k=v", refs, severities, EPSS),
// threat, numeric severity, QoD and the result-specific description. Also accepts the GMP response
// wrapper <get_reports_response><report>….
//
// Choices:
// - One Finding per (host, result, CVE), ruleId = NVT OID; a result without CVE is keyed
//   "openvas:<oid>" (same rule as Nessus: each CVE is its own exposure).
// - Severity is derived from the numeric severity (a CVSS score, so 9.8 is 'critical' even though GVM
//   labels it "High"); the threat label is kept as severityReported. Severity 0 ("Log") results are
//   kept as 'info'. Negative severities are GVM overrides — false positive (-1), debug (-2), error (-3)
//   — and produce no finding: the scanner itself says there is no weakness there.
// - EPSS: GVM reports the EPSS of the highest-severity CVE and of the highest-EPSS CVE; each is attached
//   to the Finding of that CVE only, since EPSS is per CVE.
// - The result's own <description> (what the scanner saw) is the evidence; the NVT summary/insight is
//   the description.

import type { Readable } from 'node:stream';
import type { CvssRef, Finding } from '../../domain/finding.ts';
import { InputError } from '../../domain/finding.ts';
import type { ParseContext, ScannerParser } from '../parser.ts';
import { hostAsset } from '../normalize/asset.ts';
import { cvssRef, cvssScore, probability } from '../normalize/cvss.ts';
import { cveIds } from '../normalize/ids.ts';
import { serviceRef } from '../normalize/service.ts';
import { severityFromLabel, severityFromScore } from '../normalize/severity.ts';
import {
  bounded,
  DESCRIPTION_MAX_CHARS,
  EVIDENCE_MAX_CHARS,
  meaningful,
  TITLE_MAX_CHARS,
} from '../normalize/text.ts';
import { isoFromZoned } from '../normalize/time.ts';
import { perCve } from '../normalize/weakness.ts';
import type { FindingWithoutKey } from '../normalize/weakness.ts';
import { child, childrenNamed, childText, descend, readXml, sniffXmlRoot, textOf } from '../xml/index.ts';
import type { XmlElement, XmlSelector } from '../xml/index.ts';

const ROOTS = ['report', 'get_reports_response'];
const RESULT = 'results/result';
const SCAN_START = 'report/scan_start';
const REPORT = 'report';
const SELECT: readonly XmlSelector[] = [
  { path: RESULT, as: 'record' },
  { path: SCAN_START, as: 'record' },
  { path: REPORT, as: 'container' },
];

/** NVT tags: "cvss_base_vector=…|summary=…|insight=…". Values may span lines; keys are identifiers. */
export function parseNvtTags(raw: string | undefined): Map<string, string> {
  const tags = new Map<string, string>();
  if (raw === undefined) return tags;
  for (const part of raw.split(/\|(?=[a-z_]+=)/)) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const value = part.slice(eq + 1).trim();
    if (value !== '') tags.set(part.slice(0, eq).trim(), value);
  }
  return tags;
}

function cvssOf(
  nvt: XmlElement | undefined,
  tags: Map<string, string>,
  severity: number | undefined,
): CvssRef[] {
  const out: CvssRef[] = [];
  for (const s of nvt ? childrenNamed(child(nvt, 'severities') ?? nvt, 'severity') : []) {
    const type = s.attrs.type ?? '';
    const fallback = type.endsWith('_v2')
      ? '2.0'
      : type.endsWith('_v4')
        ? '4.0'
        : type.endsWith('_v3')
          ? '3.1'
          : undefined;
    const origin = childText(s, 'origin');
    const ref = cvssRef(
      childText(s, 'value'),
      cvssScore(childText(s, 'score')),
      fallback,
      origin?.toLowerCase(),
    );
    if (ref !== undefined) out.push(ref);
  }
  if (out.length > 0) return out;
  // Older reports: only the tag vector and <cvss_base>, which is the score of that vector.
  const score = cvssScore(nvt ? childText(nvt, 'cvss_base') : undefined) ?? severity;
  const ref = cvssRef(tags.get('cvss_base_vector'), score, undefined);
  return ref !== undefined ? [ref] : [];
}

function epssByCve(nvt: XmlElement | undefined): Map<string, { probability: number; percentile?: number }> {
  const out = new Map<string, { probability: number; percentile?: number }>();
  const epss = nvt ? child(nvt, 'epss') : undefined;
  for (const which of ['max_severity', 'max_epss']) {
    const e = epss ? child(epss, which) : undefined;
    if (e === undefined) continue;
    const cve = child(e, 'cve')?.attrs.id?.trim().toUpperCase();
    const p = probability(childText(e, 'score'));
    if (cve === undefined || p === undefined) continue;
    const pct = probability(childText(e, 'percentile'));
    out.set(cve, pct === undefined ? { probability: p } : { probability: p, percentile: pct });
  }
  return out;
}

function productCpes(result: XmlElement): string[] {
  const out: string[] = [];
  const details = descend(result, 'detection/result/details');
  for (const d of details ? childrenNamed(details, 'detail') : []) {
    const value = childText(d, 'value');
    if (childText(d, 'name') === 'product' && value?.startsWith('cpe:') && !out.includes(value))
      out.push(value);
  }
  return out;
}

interface ReportContext {
  scanId?: string;
  scanTime?: string;
}

function findingsForResult(result: XmlElement, report: ReportContext, file: string): Finding[] {
  const nvt = child(result, 'nvt');
  const oid = nvt?.attrs.oid?.trim();
  if (!oid) throw new InputError('<result> has no <nvt oid="…">', file, result.line);

  const sevText = childText(result, 'severity');
  const sevNumber = sevText !== undefined && /^-?\d+(\.\d+)?$/.test(sevText) ? Number(sevText) : undefined;
  const threat = childText(result, 'threat');
  if ((sevNumber !== undefined && sevNumber < 0) || /^false positive$/i.test(threat ?? '')) return [];

  const hostEl = child(result, 'host');
  const hostText = hostEl?.text.trim();
  const asset = hostAsset({
    names: [hostEl ? childText(hostEl, 'hostname') : undefined, hostText],
    ips: [hostText],
  });
  if (asset.ips === undefined && asset.hostname === undefined) {
    throw new InputError('<result> has no <host>', file, result.line);
  }

  const tags = parseNvtTags(nvt ? childText(nvt, 'tags') : undefined);
  const cves = cveIds(
    ...(nvt ? childrenNamed(child(nvt, 'refs') ?? nvt, 'ref') : [])
      .filter((r) => r.attrs.type?.toLowerCase() === 'cve')
      .map((r) => r.attrs.id),
    // GMP 7 and older: <cve>CVE-…, CVE-…</cve> inside <nvt>.
    nvt ? childText(nvt, 'cve') : undefined,
  );
  const refUrls = (nvt ? childrenNamed(child(nvt, 'refs') ?? nvt, 'ref') : [])
    .filter((r) => r.attrs.type?.toLowerCase() === 'url' && r.attrs.id)
    .map((r) => r.attrs.id as string);

  const severity =
    sevNumber !== undefined ? severityFromScore(sevNumber) : (severityFromLabel(threat) ?? 'unknown');
  const portMatch = /^(\d+)\/(\w+)$/.exec(childText(result, 'port') ?? '');

  const base: FindingWithoutKey = {
    scanner: 'openvas',
    asset,
    ruleId: oid,
    kind: severity === 'info' && cves.length === 0 ? 'other' : 'vulnerability',
    title:
      bounded(nvt ? childText(nvt, 'name') : undefined, TITLE_MAX_CHARS) ??
      bounded(childText(result, 'name'), TITLE_MAX_CHARS) ??
      `OpenVAS NVT ${oid}`,
    severity,
  };
  if (report.scanId !== undefined) base.scanId = report.scanId;
  const scanTime = report.scanTime ?? isoFromZoned(childText(result, 'creation_time'));
  if (scanTime !== undefined) base.scanTime = scanTime;
  base.severityReported = threat ?? sevText;
  const summary = meaningful(tags.get('summary'));
  const insight = meaningful(tags.get('insight'));
  const desc = bounded([summary, insight].filter(Boolean).join('\n\n'), DESCRIPTION_MAX_CHARS);
  if (desc !== undefined) base.description = desc;
  const sol = bounded(
    meaningful(textOf(nvt ? child(nvt, 'solution') : undefined) ?? tags.get('solution')),
    DESCRIPTION_MAX_CHARS,
  );
  if (sol !== undefined) base.solution = sol;
  const cvss = cvssOf(nvt, tags, sevNumber !== undefined && sevNumber > 0 ? sevNumber : undefined);
  if (cvss.length > 0) base.cvss = cvss;
  const service = serviceRef(portMatch?.[1], portMatch?.[2]);
  if (service !== undefined) base.service = service;
  if (refUrls.length > 0) base.references = refUrls;
  const evidence = bounded(childText(result, 'description'), EVIDENCE_MAX_CHARS);
  if (evidence !== undefined) base.evidence = evidence;
  const cpes = productCpes(result);
  if (cpes.length > 0) base.cpe = cpes;

  const findings = perCve(base, cves, `openvas:${oid}`);
  const epss = epssByCve(nvt);
  if (epss.size > 0) {
    for (const f of findings) {
      const e = epss.get(f.weaknessKey);
      if (e !== undefined) f.epss = e;
    }
  }
  return findings;
}

async function* parseOpenvas(input: Readable, ctx: ParseContext): AsyncGenerator<Finding, void, undefined> {
  const report: ReportContext = {};
  for await (const ev of readXml(input, {
    file: ctx.file,
    select: SELECT,
    roots: ROOTS,
    describe: 'an OpenVAS/Greenbone XML report',
  })) {
    if (ev.kind === 'open') {
      // The outermost <report> id names the report; nested ones repeat or refine it.
      report.scanId ??= ev.attrs.id?.trim() || undefined;
    } else if (ev.kind === 'record') {
      if (ev.selector === SCAN_START) report.scanTime ??= isoFromZoned(textOf(ev.element));
      else yield* findingsForResult(ev.element, report, ctx.file);
    }
  }
}

export const openvasParser: ScannerParser = {
  format: 'openvas',
  detect(head) {
    const root = sniffXmlRoot(head);
    if (root === 'get_reports_response') return true;
    // <report> is a generic name: require GVM's report attributes or elements near the top.
    return root === 'report' && /format_id="|<gmp>|<omp>|<nvt oid="/.test(head);
  },
  parse: parseOpenvas,
};

export default openvasParser;
