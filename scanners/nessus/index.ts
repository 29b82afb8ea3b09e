// Nessus .nessus (v2) XML: <NessusClientData_v2><Report><ReportHost name><HostProperties><tag name>…
// then one <ReportItem> per plugin result. Tenable WAS exports use the same schema with a URL as the
// ReportHost name; those become application assets.
//
// Choices:
// - One Finding per (host, ReportItem, CVE): every CVE a plugin lists is its own exposure with its own
//   lifecycle, KEV status and EPSS. All of them share the plugin id as ruleId. A plugin without CVE is
//   keyed "nessus:<pluginID>".
// - Severity comes from the ReportItem `severity` attribute (0–4, what Nessus shows; risk_factor is the
//   older CVSSv2-only rating). Severity 0 ("None") plugins are kept as severity 'info' and kind 'other'
//   unless they name a CVE; ingest decides whether to keep informational findings.
// - HOST_START without HOST_START_TIMESTAMP has no time zone, so scanTime is left to ingest then.

import type { Readable } from 'node:stream';
import type { AssetRef, CvssRef, Finding } from '../../domain/finding.ts';
import { InputError } from '../../domain/finding.ts';
import type { ParseContext, ScannerParser } from '../parser.ts';
import { canonicalIp, hostAsset } from '../normalize/asset.ts';
import { cvssRef, cvssScore, probability } from '../normalize/cvss.ts';
import { cveIds, cweIds, urls } from '../normalize/ids.ts';
import { serviceRef } from '../normalize/service.ts';
import { severityFromLabel, severityFromNessus } from '../normalize/severity.ts';
import {
  bounded,
  DESCRIPTION_MAX_CHARS,
  EVIDENCE_MAX_CHARS,
  meaningful,
  TITLE_MAX_CHARS,
} from '../normalize/text.ts';
import { isoFromEpochSeconds, isoFromZoned } from '../normalize/time.ts';
import { perCve } from '../normalize/weakness.ts';
import type { FindingWithoutKey } from '../normalize/weakness.ts';
import { readXmlBatches, sniffXmlRoot } from '../xml/index.ts';
import type { XmlElement, XmlSelector } from '../xml/index.ts';

const ROOT = 'NessusClientData_v2';
const HOST = '/NessusClientData_v2/Report/ReportHost';
const PROPERTIES = `${HOST}/HostProperties`;
const ITEM = `${HOST}/ReportItem`;
const SELECT: readonly XmlSelector[] = [
  { path: PROPERTIES, as: 'record' },
  { path: ITEM, as: 'record' },
  { path: HOST, as: 'container' },
];

// Numeric tags for the ReportItem children read (a plain object, not an enum: erasable syntax only).
const Field = {
  Cve: 0,
  Cwe: 1,
  Xref: 2,
  Cpe: 3,
  Description: 4,
  Synopsis: 5,
  Solution: 6,
  Output: 7,
  SeeAlso: 8,
  PluginName: 9,
  RiskFactor: 10,
  Exploit: 11,
  Epss: 12,
  V2Vector: 13,
  V2Score: 14,
  V3Vector: 15,
  V3Score: 16,
  V4Vector: 17,
  V4Score: 18,
} as const;
type Field = (typeof Field)[keyof typeof Field];

/** ReportItem children this parser reads ("cvss"/"cvssv3" are the Tenable WAS spellings). */
const ITEM_FIELDS: ReadonlyMap<string, Field> = new Map([
  ['cve', Field.Cve],
  ['cwe', Field.Cwe],
  ['xref', Field.Xref],
  ['cpe', Field.Cpe],
  ['description', Field.Description],
  ['synopsis', Field.Synopsis],
  ['solution', Field.Solution],
  ['plugin_output', Field.Output],
  ['see_also', Field.SeeAlso],
  ['plugin_name', Field.PluginName],
  ['risk_factor', Field.RiskFactor],
  ['exploit_available', Field.Exploit],
  ['epss_score', Field.Epss],
  ['cvss_vector', Field.V2Vector],
  ['cvss_base_score', Field.V2Score],
  ['cvss', Field.V2Score],
  ['cvss3_vector', Field.V3Vector],
  ['cvss3_base_score', Field.V3Score],
  ['cvssv3', Field.V3Score],
  ['cvss4_vector', Field.V4Vector],
  ['cvss4_base_score', Field.V4Score],
]);

interface HostContext {
  readonly name: string;
  asset: AssetRef;
  scanTime?: string;
}

function hostFromProperties(name: string, props: XmlElement | undefined): HostContext {
  const tags = new Map<string, string>();
  for (const t of props?.children ?? []) {
    const key = t.attrs.name;
    const value = t.text.trim();
    if (t.name === 'tag' && key !== undefined && value !== '') tags.set(key, value);
  }
  const firstLine = (s: string | undefined): string | undefined => s?.split('\n')[0]?.trim() || undefined;
  const macs = tags.get('mac-address')?.split(/\s+/);

  let asset: AssetRef;
  if (/^https?:\/\//i.test(name)) {
    // Tenable WAS: the "host" is a web application.
    asset = { kind: 'application', url: name };
    try {
      const host = new URL(name).hostname.toLowerCase();
      const ip = canonicalIp(host);
      if (ip !== undefined) asset.ips = [ip];
      else if (host !== '') asset.fqdn = host;
    } catch {
      // A malformed URL stays as reported in `url`.
    }
  } else {
    asset = hostAsset({
      names: [tags.get('host-fqdn'), tags.get('hostname'), name, tags.get('netbios-name')],
      ips: [tags.get('host-ip'), name],
      mac: macs?.[0],
      os: firstLine(tags.get('operating-system') ?? tags.get('os')),
    });
  }
  const ctx: HostContext = { name, asset };
  const scanTime =
    isoFromEpochSeconds(tags.get('HOST_START_TIMESTAMP')) ?? isoFromZoned(tags.get('HOST_START'));
  if (scanTime !== undefined) ctx.scanTime = scanTime;
  return ctx;
}

function findingsForItem(item: XmlElement, host: HostContext, file: string): Finding[] {
  const pluginId = item.attrs.pluginID?.trim();
  if (!pluginId) throw new InputError('<ReportItem> has no pluginID attribute', file, item.line);

  const cves: string[] = [];
  const cwes: string[] = [];
  const cpes: string[] = [];
  let description: string | undefined;
  let synopsis: string | undefined;
  let solution: string | undefined;
  let output: string | undefined;
  let seeAlso: string | undefined;
  let pluginName: string | undefined;
  let riskFactor: string | undefined;
  let exploit: string | undefined;
  let epss: string | undefined;
  const vec: Record<'2' | '3' | '4', string | undefined> = { '2': undefined, '3': undefined, '4': undefined };
  const score: Record<'2' | '3' | '4', string | undefined> = {
    '2': undefined,
    '3': undefined,
    '4': undefined,
  };

  // One pass over the children: a ReportItem has 20–60 of them and this runs once per item. Element
  // names from the parser are fresh (non-internalized) strings, so one Map lookup per child beats a
  // `switch` that compares characters against twenty string cases.
  for (const c of item.children) {
    switch (ITEM_FIELDS.get(c.name)) {
      case Field.Cve:
        cves.push(c.text);
        break;
      case Field.Cwe:
        cwes.push(c.text);
        break;
      case Field.Xref:
        // xref also carries IAVA, MSFT, CERT… ids; only CWE ones are weakness classes.
        if (/^\s*CWE:/i.test(c.text)) cwes.push(c.text.replace(/^\s*CWE:/i, ''));
        break;
      case Field.Cpe:
        for (const p of c.text.split(/\s+/)) if (p.startsWith('cpe:') && !cpes.includes(p)) cpes.push(p);
        break;
      case Field.Description:
        description = c.text;
        break;
      case Field.Synopsis:
        synopsis = c.text;
        break;
      case Field.Solution:
        solution = c.text;
        break;
      case Field.Output:
        output = c.text;
        break;
      case Field.SeeAlso:
        seeAlso = seeAlso === undefined ? c.text : `${seeAlso}\n${c.text}`;
        break;
      case Field.PluginName:
        pluginName = c.text;
        break;
      case Field.RiskFactor:
        riskFactor = c.text.trim();
        break;
      case Field.Exploit:
        exploit = c.text.trim();
        break;
      case Field.Epss:
        epss = c.text;
        break;
      case Field.V2Vector:
        vec['2'] = c.text;
        break;
      case Field.V2Score:
        score['2'] ??= c.text;
        break;
      case Field.V3Vector:
        vec['3'] = c.text;
        break;
      case Field.V3Score:
        score['3'] ??= c.text;
        break;
      case Field.V4Vector:
        vec['4'] = c.text;
        break;
      case Field.V4Score:
        score['4'] = c.text;
        break;
    }
  }

  const sevAttr = item.attrs.severity?.trim();
  const sevNumber = sevAttr !== undefined && /^\d$/.test(sevAttr) ? Number(sevAttr) : undefined;
  const severity = severityFromNessus(sevNumber) ?? severityFromLabel(riskFactor) ?? 'unknown';
  const cveList = cveIds(...cves);

  const cvss: CvssRef[] = [];
  for (const [v, fallback] of [
    ['4', '4.0'],
    ['3', '3.0'],
    ['2', '2.0'],
  ] as const) {
    const ref = cvssRef(vec[v], cvssScore(score[v]), fallback);
    if (ref !== undefined) cvss.push(ref);
  }

  const base: FindingWithoutKey = {
    scanner: 'nessus',
    asset: host.asset,
    ruleId: pluginId,
    kind: severity === 'info' && cveList.length === 0 ? 'other' : 'vulnerability',
    title:
      bounded(item.attrs.pluginName ?? pluginName, TITLE_MAX_CHARS) ??
      bounded(pluginName, TITLE_MAX_CHARS) ??
      `Nessus plugin ${pluginId}`,
    severity,
  };
  if (host.scanTime !== undefined) base.scanTime = host.scanTime;
  if (sevAttr !== undefined) base.severityReported = sevAttr;
  const desc = bounded(meaningful(description) ?? meaningful(synopsis), DESCRIPTION_MAX_CHARS);
  if (desc !== undefined) base.description = desc;
  const sol = bounded(meaningful(solution), DESCRIPTION_MAX_CHARS);
  if (sol !== undefined) base.solution = sol;
  if (cvss.length > 0) base.cvss = cvss;
  const p = probability(epss);
  if (p !== undefined) base.epss = { probability: p };
  const service = serviceRef(item.attrs.port, item.attrs.protocol, item.attrs.svc_name);
  if (service !== undefined) base.service = service;
  const cweList = cweIds(cwes);
  if (cweList.length > 0) base.cwe = cweList;
  const refs = urls(seeAlso);
  if (refs.length > 0) base.references = refs;
  const evidence = bounded(output, EVIDENCE_MAX_CHARS);
  if (evidence !== undefined) base.evidence = evidence;
  if (cpes.length > 0) base.cpe = cpes;
  if (exploit === 'true') base.exploitAvailable = true;
  else if (exploit === 'false') base.exploitAvailable = false;

  return perCve(base, cveList, `nessus:${pluginId}`);
}

async function* parseNessus(input: Readable, ctx: ParseContext): AsyncGenerator<Finding, void, undefined> {
  let host: HostContext | undefined;
  const batches = readXmlBatches(input, {
    file: ctx.file,
    select: SELECT,
    roots: [ROOT],
    describe: 'a Nessus .nessus (v2) report',
  });
  for await (const batch of batches) {
    for (const ev of batch) {
      if (ev.kind === 'open') {
        const name = ev.attrs.name?.trim();
        if (!name) throw new InputError('<ReportHost> has no name attribute', ctx.file, ev.line);
        host = hostFromProperties(name, undefined);
      } else if (ev.kind === 'close') {
        host = undefined;
      } else if (ev.kind === 'record' && host !== undefined) {
        if (ev.selector === PROPERTIES) host = hostFromProperties(host.name, ev.element);
        else yield* findingsForItem(ev.element, host, ctx.file);
      }
    }
  }
}

export const nessusParser: ScannerParser = {
  format: 'nessus',
  detect: (head) => sniffXmlRoot(head) === ROOT,
  parse: parseNessus,
};

export default nessusParser;
