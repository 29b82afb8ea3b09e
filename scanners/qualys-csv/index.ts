// Qualys CSV exports of host vulnerabilities, in the layouts found in practice:
// - VM scan / Asset Data Report CSV ("IP, Network, DNS, NetBIOS, …, QID, Title, Vuln Status, Type,
//   Severity, Port, Protocol, FQDN, …, CVE ID, …, CVSS3 Base, Threat, Impact, Solution, …").
// - VMDR "Asset Vuln Datalist Report", QID-first or CVE-first, usually after three metadata rows
//   ("QID, Title, Severity, …, Asset Name, Asset IPV4, Asset IPV6, …, Results").
// - PCI / HackerGuardian ("IP, HOSTNAME, LAST SCAN, QID, VULN TITLE, TYPE, SEVERITY (H/M/L or a word),
//   PORT, PROTOCOL, …, CVSS_BASE, Q_SEVERITY, …, CVEID").
//
// Same rules as the XML parser: one Finding per CVE, "qualys:<QID>" without CVE, Fixed detections
// skipped, information-gathered rows 'info'. Severity: a word or letter (the PCI rating, CVSS-based)
// when the export has one, else the Qualys level 1–5. Dates have no time zone: scanTime is unset.

import type { Readable } from 'node:stream';
import type { CvssRef, Finding, Severity } from '../../domain/finding.ts';
import { InputError } from '../../domain/finding.ts';
import type { ParseContext, ScannerParser } from '../parser.ts';
import { hasColumns, readCsv, sniffCsvHeader } from '../csv/index.ts';
import type { CsvRow } from '../csv/index.ts';
import { hostAsset } from '../normalize/asset.ts';
import { cvssFromScoreAndVector } from '../normalize/cvss.ts';
import { cveIds } from '../normalize/ids.ts';
import { serviceRef } from '../normalize/service.ts';
import { severityFromLabel, severityFromQualys } from '../normalize/severity.ts';
import {
  bounded,
  DESCRIPTION_MAX_CHARS,
  EVIDENCE_MAX_CHARS,
  htmlToText,
  meaningful,
  TITLE_MAX_CHARS,
} from '../normalize/text.ts';
import { perCve } from '../normalize/weakness.ts';
import type { FindingWithoutKey } from '../normalize/weakness.ts';

const DESCRIBE = 'a Qualys VM CSV export (a header with "QID", a title column and an IP or asset column)';

export function isQualysCsvHeader(cells: readonly string[]): boolean {
  const has = (...n: string[]): boolean => hasColumns(cells, ...n);
  return (
    has('QID') &&
    (has('Title') || has('VULN TITLE')) &&
    (has('IP') ||
      has('Asset IPV4') ||
      has('Asset IPV6') ||
      has('Asset Name') ||
      has('HOSTNAME') ||
      has('DNS'))
  );
}

function severityOf(row: CsvRow, informational: boolean): { severity: Severity; reported?: string } {
  const raw = row.get('Severity');
  if (informational) return raw !== undefined ? { severity: 'info', reported: raw } : { severity: 'info' };
  if (raw !== undefined && !/^\d$/.test(raw)) {
    const s = severityFromLabel(raw);
    if (s !== undefined) return { severity: s, reported: raw };
  }
  const levelText = raw !== undefined && /^\d$/.test(raw) ? raw : row.get('Q_SEVERITY', 'KB Severity');
  const level = levelText !== undefined && /^[1-5]$/.test(levelText) ? Number(levelText) : undefined;
  const s = severityFromQualys(level) ?? 'unknown';
  return levelText !== undefined ? { severity: s, reported: levelText } : { severity: s };
}

function findingsForRow(row: CsvRow, file: string): Finding[] {
  const qid = row.get('QID');
  if (qid === undefined || !/^\d+$/.test(qid)) {
    throw new InputError(`row has no numeric "QID" value (${qid ?? 'empty'})`, file, row.line);
  }
  if (/^fixed$/i.test(row.get('Vuln Status', 'Status') ?? '')) return [];

  const ips = [
    row.get('IP'),
    ...(row.get('Asset IPV4') ?? '').split(','),
    ...(row.get('Asset IPV6') ?? '').split(','),
  ];
  const asset = hostAsset({
    names: [row.get('DNS', 'HOSTNAME'), row.get('Asset Name'), row.get('NetBIOS')],
    ips,
    os: row.get('OS', 'Operating System'),
  });
  if (!asset.ips && !asset.hostname && !asset.fqdn) {
    throw new InputError(
      'row has no host (IP, Asset IPV4/IPV6, DNS, HOSTNAME or Asset Name)',
      file,
      row.line,
    );
  }

  const type = row.get('Type', 'Type Detected');
  const informational = /^(ig|info|information gathered|information)$/i.test(type ?? '');
  const { severity, reported } = severityOf(row, informational);
  const cves = cveIds(row.get('CVE ID', 'CVEID', 'CVE'));

  const cvss: CvssRef[] = [];
  // Only columns whose CVSS version is explicit; PCI exports' CVSS_BASE can be either version.
  const v3 = cvssFromScoreAndVector(row.get('CVSS3 Base', 'CVSSv3.1 Base (nvd)', 'CVSS3.1 Base'), '3.1');
  const v2 = cvssFromScoreAndVector(row.get('CVSS Base', 'CVSSv2 Base (nvd)'), '2.0');
  if (v3 !== undefined) cvss.push(v3);
  if (v2 !== undefined) cvss.push(v2);

  const base: FindingWithoutKey = {
    scanner: 'qualys',
    asset,
    ruleId: qid,
    kind: informational ? 'other' : 'vulnerability',
    title: bounded(row.get('Title', 'VULN TITLE'), TITLE_MAX_CHARS) ?? `Qualys QID ${qid}`,
    severity,
  };
  if (reported !== undefined) base.severityReported = reported;
  const desc = bounded(
    [htmlToText(row.get('Threat')), htmlToText(row.get('Impact'))]
      .filter((s) => meaningful(s) !== undefined)
      .join('\n\n'),
    DESCRIPTION_MAX_CHARS,
  );
  if (desc !== undefined) base.description = desc;
  const sol = bounded(meaningful(htmlToText(row.get('Solution'))), DESCRIPTION_MAX_CHARS);
  if (sol !== undefined) base.solution = sol;
  if (cvss.length > 0) base.cvss = cvss;
  const service = serviceRef(row.get('Port'), row.get('Protocol'));
  if (service !== undefined) base.service = service;
  const evidence = bounded(meaningful(row.get('Results', 'Result')), EVIDENCE_MAX_CHARS);
  if (evidence !== undefined) base.evidence = evidence;

  return perCve(base, cves, `qualys:${qid}`);
}

async function* parseQualysCsv(input: Readable, ctx: ParseContext): AsyncGenerator<Finding, void, undefined> {
  for await (const row of readCsv(input, {
    file: ctx.file,
    isHeader: isQualysCsvHeader,
    describe: DESCRIBE,
    maxPreambleRows: 10,
  })) {
    yield* findingsForRow(row, ctx.file);
  }
}

export const qualysCsvParser: ScannerParser = {
  format: 'qualys-csv',
  detect: (head) => sniffCsvHeader(head, isQualysCsvHeader, 10) !== undefined,
  parse: parseQualysCsv,
};

export default qualysCsvParser;
