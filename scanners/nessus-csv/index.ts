// Nessus / Tenable CSV exports: Nessus Professional/Manager ("Plugin ID, CVE, CVSS…, Risk, Host…", with
// or without the extra columns of the "all" template), Tenable.sc / Tenable.io vulnerability exports
// ("Plugin, Plugin Name, Family, Severity, IP Address, …, DNS Name, NetBIOS Name…") and Tenable WAS
// ("Plugin ID, CVE, CVSS, CVSSv3, Risk, Host, Protocol=http…"). Columns are found by name.
//
// Same rules as the XML parser: one Finding per CVE, "nessus:<plugin>" without CVE, severity 'info'
// rows kept. Nessus exports repeat a multi-CVE plugin once per CVE; de-duplication is ingest's job.
// Scores outside 0–10 are dropped rather than guessed (a sample template has "75" for 7.5).
// Dates in these exports carry no usable time zone ("Jan 5, 2021 10:24:08 MST"), so scanTime is unset.

import type { Readable } from 'node:stream';
import type { AssetRef, CvssRef, Finding } from '../../domain/finding.ts';
import { InputError } from '../../domain/finding.ts';
import type { ParseContext, ScannerParser } from '../parser.ts';
import { hasColumns, readCsv, sniffCsvHeader } from '../csv/index.ts';
import type { CsvRow } from '../csv/index.ts';
import { canonicalIp, dnsName, hostAsset } from '../normalize/asset.ts';
import { cvssRef, cvssScore, probability } from '../normalize/cvss.ts';
import { cveIds, cweIds, urls } from '../normalize/ids.ts';
import { serviceRef } from '../normalize/service.ts';
import { severityFromLabel } from '../normalize/severity.ts';
import {
  bounded,
  DESCRIPTION_MAX_CHARS,
  EVIDENCE_MAX_CHARS,
  meaningful,
  TITLE_MAX_CHARS,
} from '../normalize/text.ts';
import { perCve } from '../normalize/weakness.ts';
import type { FindingWithoutKey } from '../normalize/weakness.ts';

const DESCRIBE =
  'a Nessus/Tenable CSV export (a header with "Plugin ID" or "Plugin", and "Host" or "IP Address")';

export function isNessusCsvHeader(cells: readonly string[]): boolean {
  const has = (...n: string[]): boolean => hasColumns(cells, ...n);
  if (has('NVT OID') || has('QID')) return false;
  return (
    (has('Plugin ID') || has('Plugin')) &&
    (has('Host') || has('IP Address')) &&
    (has('Name') || has('Plugin Name'))
  );
}

function assetOf(row: CsvRow): AssetRef {
  const host = row.get('Host', 'IP Address', 'DNS Name');
  const protocol = row.get('Protocol')?.toLowerCase();
  if (host !== undefined && (protocol === 'http' || protocol === 'https')) {
    // Tenable WAS rows: the "host" is a web application, as in the WAS XML export.
    const asset: AssetRef = { kind: 'application', url: `${protocol}://${host}/` };
    const ip = canonicalIp(host);
    const name = dnsName(host);
    if (ip !== undefined) asset.ips = [ip];
    else if (name !== undefined) asset.fqdn = name;
    return asset;
  }
  // "WORKGROUP\HOST" NetBIOS names: the part after the backslash is the machine name.
  const netbios = row.get('NetBIOS Name')?.split('\\').pop();
  return hostAsset({
    names: [row.get('FQDN', 'DNS Name'), row.get('Host'), netbios],
    ips: [row.get('IP Address'), row.get('Host')],
    mac: row.get('MAC Address')?.split(/[\s,]+/)[0],
  });
}

function findingsForRow(row: CsvRow, file: string): Finding[] {
  const pluginId = row.get('Plugin ID', 'Plugin');
  if (pluginId === undefined || !/^\d+$/.test(pluginId)) {
    throw new InputError(
      `row has no numeric "Plugin ID"/"Plugin" value (${pluginId ?? 'empty'})`,
      file,
      row.line,
    );
  }
  const asset = assetOf(row);
  if (!asset.ips && !asset.hostname && !asset.fqdn && !asset.url) {
    throw new InputError('row has no host (Host, IP Address or DNS Name column)', file, row.line);
  }

  const reported = row.get('Risk', 'Severity', 'Risk Factor');
  const severity = severityFromLabel(reported) ?? 'unknown';
  const cves = cveIds(row.get('CVE'));

  const cvss: CvssRef[] = [];
  const v4 = cvssRef(undefined, cvssScore(row.get('CVSS v4.0 Base Score', 'CVSS V4 Base Score')), '4.0');
  const v3 = cvssRef(
    row.get('CVSS V3 Vector', 'CVSS v3.0 Vector'),
    cvssScore(row.get('CVSS V3 Base Score', 'CVSS v3.0 Base Score', 'CVSSv3')),
    '3.0',
  );
  const v2 = cvssRef(
    row.get('CVSS V2 Vector', 'CVSS v2.0 Vector'),
    cvssScore(row.get('CVSS V2 Base Score', 'CVSS v2.0 Base Score', 'CVSS')),
    '2.0',
  );
  for (const ref of [v4, v3, v2]) if (ref !== undefined) cvss.push(ref);

  const base: FindingWithoutKey = {
    scanner: 'nessus',
    asset,
    ruleId: pluginId,
    kind: severity === 'info' && cves.length === 0 ? 'other' : 'vulnerability',
    title: bounded(row.get('Name', 'Plugin Name'), TITLE_MAX_CHARS) ?? `Nessus plugin ${pluginId}`,
    severity,
  };
  if (reported !== undefined) base.severityReported = reported;
  const desc = bounded(
    meaningful(row.get('Description')) ?? meaningful(row.get('Synopsis')),
    DESCRIPTION_MAX_CHARS,
  );
  if (desc !== undefined) base.description = desc;
  const sol = bounded(meaningful(row.get('Solution', 'Steps to Remediate')), DESCRIPTION_MAX_CHARS);
  if (sol !== undefined) base.solution = sol;
  if (cvss.length > 0) base.cvss = cvss;
  const epss = probability(row.get('EPSS Score', 'EPSS'));
  if (epss !== undefined) base.epss = { probability: epss };
  const service = serviceRef(row.get('Port'), row.get('Protocol'));
  if (service !== undefined) base.service = service;
  const xrefs = row.get('Cross References', 'XREF') ?? '';
  const cwes = cweIds([...xrefs.matchAll(/CWE\s*[:#-]?\s*(\d+)/gi)].map((m) => m[1] ?? ''));
  if (cwes.length > 0) base.cwe = cwes;
  const refs = urls(row.get('See Also'));
  if (refs.length > 0) base.references = refs;
  // Tenable.sc prefixes the output with a "Plugin Output:" label.
  const output = row.get('Plugin Output', 'Plugin Text')?.replace(/^Plugin Output:\s*/i, '');
  const evidence = bounded(output, EVIDENCE_MAX_CHARS);
  if (evidence !== undefined) base.evidence = evidence;
  const cpes = (row.get('CPE') ?? '').split(/[\s,;]+/).filter((c) => c.startsWith('cpe:'));
  if (cpes.length > 0) base.cpe = cpes;
  const exploit = row.get('Exploit?')?.toLowerCase();
  if (exploit === 'yes' || exploit === 'true') base.exploitAvailable = true;
  else if (exploit === 'no' || exploit === 'false') base.exploitAvailable = false;

  return perCve(base, cves, `nessus:${pluginId}`);
}

async function* parseNessusCsv(input: Readable, ctx: ParseContext): AsyncGenerator<Finding, void, undefined> {
  for await (const row of readCsv(input, {
    file: ctx.file,
    isHeader: isNessusCsvHeader,
    describe: DESCRIBE,
    maxPreambleRows: 0,
  })) {
    yield* findingsForRow(row, ctx.file);
  }
}

export const nessusCsvParser: ScannerParser = {
  format: 'nessus-csv',
  detect: (head) => sniffCsvHeader(head, isNessusCsvHeader, 1) !== undefined,
  parse: parseNessusCsv,
};

export default nessusCsvParser;
