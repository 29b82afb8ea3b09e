// Qualys VM XML, in the three host-vulnerability layouts Qualys produces:
// - Host detection API output <HOST_LIST_VM_DETECTION_OUTPUT> (VMDR): HOST fields, then
//   DETECTION_LIST/DETECTION (QID, TYPE, SEVERITY, PORT, RESULTS, STATUS…). It carries no titles or
//   CVEs — those live in the knowledge base — so findings are keyed "qualys:<QID>".
// - Asset Data Report <ASSET_DATA_REPORT>: HOST_LIST/HOST/VULN_INFO_LIST/VULN_INFO per detection, and at
//   the very end GLOSSARY/VULN_DETAILS_LIST/VULN_DETAILS with title, severity, CVEs, CVSS per QID. The
//   detections wait (in memory, on disk when large) until the glossary has been read.
// - Scan report <SCAN> (Scans > Download, XML): IP/…/CAT/VULN|PRACTICE|INFO|SERVICE, self-contained.
//
// Choices:
// - One Finding per (host, QID, CVE); no CVE → "qualys:<QID>"; ruleId is the QID.
// - Severity is the Qualys level 1–5 (1 → info … 5 → critical). Information-gathered entries (TYPE Ig /
//   Info, INFO and SERVICE elements) are severity 'info', kind 'other'. Potential vulnerabilities keep
//   their level.
// - Detections whose status is Fixed are skipped: they record that the weakness is gone.
// - WAS (web application) reports <WAS_SCAN_REPORT> are not supported and are refused with a clear
//   message; a Qualys API error response <SIMPLE_RETURN> is reported as the error it carries.

import type { Readable } from 'node:stream';
import type { AssetRef, CvssRef, Finding, Severity } from '../../domain/finding.ts';
import { InputError } from '../../domain/finding.ts';
import type { ParseContext, ScannerParser } from '../parser.ts';
import { hostAsset } from '../normalize/asset.ts';
import { cvssFromScoreAndVector } from '../normalize/cvss.ts';
import { cveIds, urls } from '../normalize/ids.ts';
import { serviceRef } from '../normalize/service.ts';
import { severityFromQualys } from '../normalize/severity.ts';
import {
  bounded,
  DESCRIPTION_MAX_CHARS,
  EVIDENCE_MAX_CHARS,
  htmlToText,
  meaningful,
  TITLE_MAX_CHARS,
} from '../normalize/text.ts';
import { isoFromZoned } from '../normalize/time.ts';
import { perCve } from '../normalize/weakness.ts';
import type { FindingWithoutKey } from '../normalize/weakness.ts';
import { child, childrenNamed, childText, descend, readXml, sniffXmlRoot, textOf } from '../xml/index.ts';
import type { XmlElement, XmlSelector } from '../xml/index.ts';
import { SpillQueue } from './spill.ts';

const DET = '/HOST_LIST_VM_DETECTION_OUTPUT/RESPONSE/HOST_LIST/HOST';
const ADR = '/ASSET_DATA_REPORT/HOST_LIST/HOST';
const GLOSSARY = '/ASSET_DATA_REPORT/GLOSSARY/VULN_DETAILS_LIST/VULN_DETAILS';
const SCAN_IP = '/SCAN/IP';
const SCAN_KEY = '/SCAN/HEADER/KEY';
const API_ERROR = '/SIMPLE_RETURN/RESPONSE';
const SCAN_SECTIONS = ['VULNS', 'PRACTICES', 'INFOS', 'SERVICES'];

const SELECT: readonly XmlSelector[] = [
  // Host detection output.
  { path: DET, as: 'container' },
  { path: `${DET}/DETECTION_LIST`, as: 'container' },
  { path: `${DET}/DETECTION_LIST/DETECTION`, as: 'record' },
  { path: `${DET}/*`, as: 'record' },
  // Asset Data Report.
  { path: ADR, as: 'container' },
  { path: `${ADR}/VULN_INFO_LIST`, as: 'container' },
  { path: `${ADR}/VULN_INFO_LIST/VULN_INFO`, as: 'record' },
  { path: `${ADR}/*`, as: 'record' },
  { path: GLOSSARY, as: 'record' },
  // Scan report.
  { path: SCAN_KEY, as: 'record' },
  { path: SCAN_IP, as: 'container' },
  ...SCAN_SECTIONS.map((s): XmlSelector => ({ path: `${SCAN_IP}/${s}`, as: 'container' })),
  { path: `${SCAN_IP}/*/CAT`, as: 'container' },
  { path: `${SCAN_IP}/*/CAT/*`, as: 'record' },
  { path: `${SCAN_IP}/*`, as: 'record' },
  { path: API_ERROR, as: 'record' },
];

const ROOTS = [
  'HOST_LIST_VM_DETECTION_OUTPUT',
  'ASSET_DATA_REPORT',
  'SCAN',
  'SIMPLE_RETURN',
  'WAS_SCAN_REPORT',
];

/** Host fields as they arrive, one record per child element of <HOST> / <IP>. */
class HostFields {
  private readonly fields = new Map<string, string>();
  private asset: AssetRef | undefined;

  constructor(
    private readonly ip?: string,
    private readonly name?: string,
  ) {}

  set(el: XmlElement): void {
    if (el.name === 'DNS_DATA') {
      for (const c of el.children) this.setText(`DNS_DATA/${c.name}`, c.text);
    } else {
      this.setText(el.name, el.text);
    }
    this.asset = undefined;
  }

  get(name: string): string | undefined {
    return this.fields.get(name);
  }

  toAsset(): AssetRef {
    this.asset ??= hostAsset({
      names: [
        this.fields.get('DNS_DATA/FQDN'),
        this.fields.get('DNS'),
        this.name,
        this.fields.get('DNS_DATA/HOSTNAME'),
        this.fields.get('NETBIOS'),
        this.fields.get('NETBIOS_HOSTNAME'),
      ],
      ips: [this.ip, this.fields.get('IP'), this.fields.get('IPV6')],
      os: this.fields.get('OS') ?? this.fields.get('OPERATING_SYSTEM'),
    });
    return this.asset;
  }

  private setText(name: string, raw: string): void {
    const t = raw.trim();
    if (t !== '') this.fields.set(name, t);
  }
}

function level(raw: string | undefined): number | undefined {
  return raw !== undefined && /^\s*[1-5]\s*$/.test(raw) ? Number(raw) : undefined;
}

function isInformational(type: string | undefined): boolean {
  return /^(ig|info|information gathered|service)$/i.test(type?.trim() ?? '');
}

/** What the knowledge base says about a QID (glossary entry or the scan report's own VULN element). */
interface QidDetails {
  title?: string;
  level?: number;
  category?: string;
  description?: string;
  solution?: string;
  cves: string[];
  cvss: CvssRef[];
  references: string[];
  exploit: boolean;
}

function detailsOf(el: XmlElement, diagnosis: string, consequence: string): QidDetails {
  const cvss: CvssRef[] = [];
  const v3 = cvssFromScoreAndVector(
    childText(el, 'CVSS3_BASE') ?? textOf(descend(el, 'CVSS3_SCORE/CVSS3_BASE')),
    '3.1',
  );
  const v2 = cvssFromScoreAndVector(
    childText(el, 'CVSS_BASE') ?? textOf(descend(el, 'CVSS_SCORE/CVSS_BASE')),
    '2.0',
  );
  if (v3 !== undefined) cvss.push(v3);
  if (v2 !== undefined) cvss.push(v2);
  const cveList = child(el, 'CVE_ID_LIST');
  const vendorRefs = child(el, 'VENDOR_REFERENCE_LIST');
  const description = [htmlToText(childText(el, diagnosis)), htmlToText(childText(el, consequence))]
    .filter((s) => s !== undefined && meaningful(s) !== undefined)
    .join('\n\n');
  const details: QidDetails = {
    cves: cveIds(
      el.attrs.cveid,
      ...(cveList ? childrenNamed(cveList, 'CVE_ID').map((c) => childText(c, 'ID')) : []),
    ),
    cvss,
    references: urls(
      ...(vendorRefs ? childrenNamed(vendorRefs, 'VENDOR_REFERENCE').map((r) => childText(r, 'URL')) : []),
    ),
    exploit: (descend(el, 'CORRELATION/EXPLOITABILITY')?.children.length ?? 0) > 0,
  };
  const title = bounded(childText(el, 'TITLE'), TITLE_MAX_CHARS);
  if (title !== undefined) details.title = title;
  const lvl = level(el.attrs.severity ?? childText(el, 'SEVERITY'));
  if (lvl !== undefined) details.level = lvl;
  const category = childText(el, 'CATEGORY');
  if (category !== undefined) details.category = category;
  const desc = bounded(description, DESCRIPTION_MAX_CHARS);
  if (desc !== undefined) details.description = desc;
  const solution = bounded(meaningful(htmlToText(childText(el, 'SOLUTION'))), DESCRIPTION_MAX_CHARS);
  if (solution !== undefined) details.solution = solution;
  return details;
}

/** One host-level detection before the QID details are joined in. */
interface Detection {
  qid: string;
  asset: AssetRef;
  type?: string;
  port?: string;
  protocol?: string;
  serviceName?: string;
  result?: string;
  lastFound?: string;
  scanId?: string;
}

function buildFindings(d: Detection, details: QidDetails | undefined): Finding[] {
  const info = isInformational(d.type);
  const severity: Severity = info ? 'info' : (severityFromQualys(details?.level) ?? 'unknown');
  const cves = details?.cves ?? [];
  const base: FindingWithoutKey = {
    scanner: 'qualys',
    asset: d.asset,
    ruleId: d.qid,
    kind: info ? 'other' : 'vulnerability',
    title: details?.title ?? `Qualys QID ${d.qid}`,
    severity,
  };
  if (d.scanId !== undefined) base.scanId = d.scanId;
  if (d.lastFound !== undefined) base.scanTime = d.lastFound;
  if (details?.level !== undefined) base.severityReported = String(details.level);
  if (details?.description !== undefined) base.description = details.description;
  if (details?.solution !== undefined) base.solution = details.solution;
  if (details !== undefined && details.cvss.length > 0) base.cvss = details.cvss;
  const service = serviceRef(d.port, d.protocol, d.serviceName);
  if (service !== undefined) base.service = service;
  if (details !== undefined && details.references.length > 0) base.references = details.references;
  if (d.result !== undefined) base.evidence = d.result;
  if (details?.exploit) base.exploitAvailable = true;
  return perCve(base, cves, `qualys:${d.qid}`);
}

function isFixed(status: string | undefined): boolean {
  return /^fixed$/i.test(status?.trim() ?? '');
}

async function* parseQualys(input: Readable, ctx: ParseContext): AsyncGenerator<Finding, void, undefined> {
  const { file } = ctx;
  // ADR detections wait here for the glossary at the end of the file.
  const pending = new SpillQueue<Detection>();
  const glossary = new Map<string, QidDetails>();
  let host: HostFields | undefined;
  let cat: { port?: string; protocol?: string } = {};
  let scanId: string | undefined;
  let scanTime: string | undefined;

  try {
    for await (const ev of readXml(input, {
      file,
      select: SELECT,
      roots: ROOTS,
      describe: 'a Qualys VM XML report',
    })) {
      switch (ev.kind) {
        case 'root':
          if (ev.name === 'WAS_SCAN_REPORT') {
            throw new InputError(
              'Qualys WAS (web application scan) reports are not supported; import a VM host detection, Asset Data Report or scan report instead',
              file,
              ev.line,
            );
          }
          if (ev.name === 'SCAN') scanId = ev.attrs.value?.trim() || undefined;
          break;
        case 'open':
          if (ev.selector === DET || ev.selector === ADR) {
            host = new HostFields();
          } else if (ev.selector === SCAN_IP) {
            host = new HostFields(ev.attrs.value, ev.attrs.name);
          } else if (ev.selector === `${SCAN_IP}/*/CAT`) {
            cat = { port: ev.attrs.port, protocol: ev.attrs.protocol };
          }
          break;
        case 'close':
          if (ev.selector === DET || ev.selector === ADR || ev.selector === SCAN_IP) host = undefined;
          break;
        case 'record': {
          const el = ev.element;
          switch (ev.selector) {
            case API_ERROR:
              throw new InputError(
                `this is a Qualys API error response, not a report: ${[childText(el, 'CODE'), childText(el, 'TEXT')].filter(Boolean).join(' ')}`,
                file,
                el.line,
              );
            case SCAN_KEY:
              if (el.attrs.value === 'DATE') scanTime = isoFromZoned(textOf(el));
              break;
            case `${DET}/*`:
            case `${ADR}/*`:
            case `${SCAN_IP}/*`:
              host?.set(el);
              break;
            case `${DET}/DETECTION_LIST/DETECTION`: {
              if (host === undefined || isFixed(childText(el, 'STATUS'))) break;
              const d = detection(el, host.toAsset(), file);
              d.type = childText(el, 'TYPE');
              d.result = bounded(childText(el, 'RESULTS'), EVIDENCE_MAX_CHARS);
              const last = isoFromZoned(childText(el, 'LAST_FOUND_DATETIME'));
              if (last !== undefined) d.lastFound = last;
              const details: QidDetails = { cves: [], cvss: [], references: [], exploit: false };
              const lvl = level(childText(el, 'SEVERITY'));
              if (lvl !== undefined) details.level = lvl;
              yield* buildFindings(d, details);
              break;
            }
            case `${ADR}/VULN_INFO_LIST/VULN_INFO`: {
              if (host === undefined || isFixed(childText(el, 'VULN_STATUS'))) break;
              const d = detection(el, host.toAsset(), file);
              d.type = childText(el, 'TYPE');
              const result = bounded(childText(el, 'RESULT'), EVIDENCE_MAX_CHARS);
              if (result !== undefined) d.result = result;
              const last = isoFromZoned(childText(el, 'LAST_FOUND'));
              if (last !== undefined) d.lastFound = last;
              await pending.push(d);
              break;
            }
            case GLOSSARY: {
              const qid = childText(el, 'QID') ?? el.attrs.id?.replace(/^qid_/, '');
              if (qid !== undefined) glossary.set(qid, detailsOf(el, 'THREAT', 'IMPACT'));
              break;
            }
            case `${SCAN_IP}/*/CAT/*`: {
              if (host === undefined) break;
              const qid = el.attrs.number?.trim();
              if (!qid) throw new InputError(`<${el.name}> has no number (QID) attribute`, file, el.line);
              const d: Detection = {
                qid,
                asset: host.toAsset(),
                type: el.name === 'INFO' || el.name === 'SERVICE' ? 'info' : el.name,
              };
              if (cat.port !== undefined) d.port = cat.port;
              if (cat.protocol !== undefined) d.protocol = cat.protocol;
              const result = bounded(childText(el, 'RESULT'), EVIDENCE_MAX_CHARS);
              if (result !== undefined) d.result = result;
              if (scanId !== undefined) d.scanId = scanId;
              if (scanTime !== undefined) d.lastFound = scanTime;
              yield* buildFindings(d, detailsOf(el, 'DIAGNOSIS', 'CONSEQUENCE'));
              break;
            }
          }
          break;
        }
      }
    }
    for await (const d of pending.drain()) yield* buildFindings(d, glossary.get(d.qid));
  } finally {
    await pending.dispose();
  }
}

/** QID, port, protocol and service of a DETECTION / VULN_INFO element. */
function detection(el: XmlElement, asset: AssetRef, file: string): Detection {
  const qid = childText(el, 'QID');
  if (qid === undefined || !/^\d+$/.test(qid))
    throw new InputError(`<${el.name}> has no numeric <QID>`, file, el.line);
  const d: Detection = { qid, asset };
  const port = childText(el, 'PORT');
  if (port !== undefined) d.port = port;
  const protocol = childText(el, 'PROTOCOL');
  if (protocol !== undefined) d.protocol = protocol;
  const service = childText(el, 'SERVICE');
  if (service !== undefined) d.serviceName = service;
  return d;
}

export const qualysParser: ScannerParser = {
  format: 'qualys',
  detect(head) {
    const root = sniffXmlRoot(head);
    if (root === 'HOST_LIST_VM_DETECTION_OUTPUT' || root === 'ASSET_DATA_REPORT') return true;
    // <SCAN> is a generic name: require the Qualys scan reference or DTD.
    return root === 'SCAN' && /<SCAN value="scan\/|scan-1\.dtd/.test(head);
  },
  parse: parseQualys,
};

export default qualysParser;
