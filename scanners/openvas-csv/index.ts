// OpenVAS / Greenbone CSV results export ("IP, Hostname, Port, Port Protocol, CVSS, Severity, [QoD,]
// Solution Type, NVT Name, Summary, Specific Result, NVT OID, CVEs, …"; newer versions add QoD and
// "Max Severity EPSS score/percentile"). Columns are found by name.
//
// Same rules as the XML parser: one Finding per CVE, "openvas:<oid>" without CVE, severity from the
// CVSS number (label kept as severityReported), "Log" results kept as 'info', false positives skipped.
// The CSV names no CVE for its "max severity" EPSS figures, so EPSS is attached only when the row has
// exactly one CVE (or a "Max Severity EPSS CVE" column says which).

import type { Readable } from 'node:stream';
import type { Finding } from '../../domain/finding.ts';
import { InputError } from '../../domain/finding.ts';
import type { ParseContext, ScannerParser } from '../parser.ts';
import { hasColumns, readCsv, sniffCsvHeader } from '../csv/index.ts';
import type { CsvRow } from '../csv/index.ts';
import { hostAsset } from '../normalize/asset.ts';
import { cvssScore, probability } from '../normalize/cvss.ts';
import { cveIds, urls } from '../normalize/ids.ts';
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

const DESCRIBE = 'an OpenVAS/Greenbone CSV export (a header with "IP" and "NVT OID")';

export function isOpenvasCsvHeader(cells: readonly string[]): boolean {
  return hasColumns(cells, 'IP', 'NVT OID');
}

function findingsForRow(row: CsvRow, file: string): Finding[] {
  const oid = row.get('NVT OID');
  if (oid === undefined) throw new InputError('row has no "NVT OID" value', file, row.line);
  const label = row.get('Severity');
  if (/^false positive$/i.test(label ?? '')) return [];
  const ip = row.get('IP');
  const asset = hostAsset({ names: [row.get('Hostname'), ip], ips: [ip] });
  if (!asset.ips && !asset.hostname) throw new InputError('row has no "IP" value', file, row.line);

  const score = cvssScore(row.get('CVSS'));
  const severity = score !== undefined ? severityFromScore(score) : (severityFromLabel(label) ?? 'unknown');
  const cves = cveIds(row.get('CVEs', 'CVE'));

  const base: FindingWithoutKey = {
    scanner: 'openvas',
    asset,
    ruleId: oid,
    kind: severity === 'info' && cves.length === 0 ? 'other' : 'vulnerability',
    title: bounded(row.get('NVT Name'), TITLE_MAX_CHARS) ?? `OpenVAS NVT ${oid}`,
    severity,
  };
  const scanTime = isoFromZoned(row.get('Timestamp'));
  if (scanTime !== undefined) base.scanTime = scanTime;
  if (label !== undefined) base.severityReported = label;
  const summary = meaningful(row.get('Summary'));
  const insight = meaningful(row.get('Vulnerability Insight'));
  const desc = bounded([summary, insight].filter(Boolean).join('\n\n'), DESCRIPTION_MAX_CHARS);
  if (desc !== undefined) base.description = desc;
  const sol = bounded(meaningful(row.get('Solution')), DESCRIPTION_MAX_CHARS);
  if (sol !== undefined) base.solution = sol;
  // The CSV has the score but not the vector, and the score's CVSS version is not stated: no CvssRef.
  const service = serviceRef(row.get('Port'), row.get('Port Protocol'));
  if (service !== undefined) base.service = service;
  const refs = urls(row.get('Other References'));
  if (refs.length > 0) base.references = refs;
  const evidence = bounded(row.get('Specific Result'), EVIDENCE_MAX_CHARS);
  if (evidence !== undefined) base.evidence = evidence;

  const findings = perCve(base, cves, `openvas:${oid}`);
  const epss = probability(row.get('Max Severity EPSS score'));
  const epssCve = cveIds(row.get('Max Severity EPSS CVE'))[0] ?? (cves.length === 1 ? cves[0] : undefined);
  if (epss !== undefined && epssCve !== undefined) {
    const pct = probability(row.get('Max Severity EPSS percentile'));
    for (const f of findings) {
      if (f.weaknessKey === epssCve)
        f.epss = pct === undefined ? { probability: epss } : { probability: epss, percentile: pct };
    }
  }
  return findings;
}

async function* parseOpenvasCsv(
  input: Readable,
  ctx: ParseContext,
): AsyncGenerator<Finding, void, undefined> {
  for await (const row of readCsv(input, {
    file: ctx.file,
    isHeader: isOpenvasCsvHeader,
    describe: DESCRIBE,
    maxPreambleRows: 0,
  })) {
    yield* findingsForRow(row, ctx.file);
  }
}

export const openvasCsvParser: ScannerParser = {
  format: 'openvas-csv',
  detect: (head) => sniffCsvHeader(head, isOpenvasCsvHeader, 1) !== undefined,
  parse: parseOpenvasCsv,
};

export default openvasCsvParser;
