// Nmap XML (-oX): <nmaprun><host><status state><address addr addrtype>…<hostnames><hostname name type>
// <ports><port protocol portid><state state><service name product version><cpe>…<script id>…</port>
// <os><osmatch name accuracy>…</host>.
//
// Choices:
// - Every open port of a host that is up is one Finding: kind 'open-port', weaknessKey
//   "nmap:open-port/<proto>/<port>", severity 'info' (exposure is judged later, with scope context).
//   "open|filtered" is not open: nmap could not tell, and a guess would open exposures that re-scans
//   then close.
// - The vulners NSE script: each entry of type "cve" becomes a CVE Finding on that port (ruleId
//   "vulners", severity from the vulners CVSS score — its version is not given, so no CvssRef).
//   Entries of other types (exploitdb, packetstorm, githubexploit…) are exploit references, not
//   weaknesses, and vulners does not say which CVE they exploit: they are listed in the open-port
//   Finding's evidence. A CVE Finding's exploitAvailable is vulners' own is_exploit flag for that CVE.
// - Host identity: IPv4/IPv6 addresses, MAC, hostnames (user-given first, then PTR), best OS match.
// - A <host> is read as one bounded record, because the OS match comes after the ports.

import type { Readable } from 'node:stream';
import type { AssetRef, Finding } from '../../domain/finding.ts';
import type { ParseContext, ScannerParser } from '../parser.ts';
import { hostAsset } from '../normalize/asset.ts';
import { cveIds } from '../normalize/ids.ts';
import { serviceRef } from '../normalize/service.ts';
import { severityFromScore } from '../normalize/severity.ts';
import { bounded, EVIDENCE_MAX_CHARS } from '../normalize/text.ts';
import { isoFromEpochSeconds } from '../normalize/time.ts';
import { child, childrenNamed, readXml, sniffXmlRoot } from '../xml/index.ts';
import type { XmlElement, XmlSelector } from '../xml/index.ts';

const ROOT = 'nmaprun';
const HOST = '/nmaprun/host';
const SELECT: readonly XmlSelector[] = [{ path: HOST, as: 'record' }];

function hostIdentity(host: XmlElement): AssetRef {
  const ips: string[] = [];
  let mac: string | undefined;
  for (const a of childrenNamed(host, 'address')) {
    const type = a.attrs.addrtype;
    if (type === 'mac') mac ??= a.attrs.addr;
    else if (a.attrs.addr !== undefined) ips.push(a.attrs.addr);
  }
  // The name the user scanned comes first, then reverse DNS; other types are not identities.
  const names = childrenNamed(child(host, 'hostnames') ?? host, 'hostname');
  const ordered = [
    ...names.filter((h) => h.attrs.type === 'user'),
    ...names.filter((h) => h.attrs.type === 'PTR'),
  ].map((h) => h.attrs.name);

  let os: string | undefined;
  let best = -1;
  for (const m of childrenNamed(child(host, 'os') ?? host, 'osmatch')) {
    const accuracy = Number(m.attrs.accuracy ?? '0');
    if (m.attrs.name && accuracy > best) {
      best = accuracy;
      os = m.attrs.name;
    }
  }
  return hostAsset({ names: ordered, ips, mac, os });
}

interface VulnersEntry {
  id: string;
  type: string;
  cvss?: number;
  isExploit: boolean;
}

function elems(table: XmlElement): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of childrenNamed(table, 'elem'))
    if (e.attrs.key !== undefined) out.set(e.attrs.key, e.text.trim());
  return out;
}

/** Entries of the vulners script, from its structured tables or, for old versions, its text output. */
function vulnersEntries(script: XmlElement): VulnersEntry[] {
  const out: VulnersEntry[] = [];
  for (const cpeTable of childrenNamed(script, 'table')) {
    for (const t of childrenNamed(cpeTable, 'table')) {
      const e = elems(t);
      const id = e.get('id');
      if (!id) continue;
      const cvss = Number(e.get('cvss'));
      out.push({
        id,
        type: (e.get('type') ?? '').toLowerCase(),
        ...(Number.isFinite(cvss) && e.get('cvss') !== '' ? { cvss } : {}),
        isExploit: e.get('is_exploit') === 'true',
      });
    }
  }
  if (out.length > 0) return out;
  // Text form: "\tCVE-2018-15919\t5.0\thttps://vulners.com/cve/CVE-2018-15919[\t*EXPLOIT*]".
  for (const line of (script.attrs.output ?? '').split('\n')) {
    const cols = line.trim().split('\t');
    const id = cols[0]?.trim();
    if (!id || !/^[\w:.-]+$/.test(id) || cols.length < 2) continue;
    const cvss = Number(cols[1]);
    out.push({
      id,
      type: cveIds(id)[0] === id.toUpperCase() ? 'cve' : 'other',
      ...(Number.isFinite(cvss) ? { cvss } : {}),
      isExploit: line.includes('*EXPLOIT*'),
    });
  }
  return out;
}

function findingsForHost(host: XmlElement, runStart: string | undefined): Finding[] {
  if (child(host, 'status')?.attrs.state !== 'up') return [];
  const ports = child(host, 'ports');
  if (ports === undefined) return [];
  const asset = hostIdentity(host);
  const scanTime = isoFromEpochSeconds(host.attrs.starttime) ?? runStart;
  const out: Finding[] = [];

  for (const port of childrenNamed(ports, 'port')) {
    if (child(port, 'state')?.attrs.state !== 'open') continue;
    const proto = port.attrs.protocol ?? 'tcp';
    const svcEl = child(port, 'service');
    const service = serviceRef(
      port.attrs.portid,
      proto,
      svcEl?.attrs.name,
      svcEl?.attrs.product,
      svcEl?.attrs.version,
    );
    if (service === undefined) continue;
    const cpes = svcEl
      ? childrenNamed(svcEl, 'cpe')
          .map((c) => c.text.trim())
          .filter((c) => c !== '')
      : [];
    const product = [svcEl?.attrs.product, svcEl?.attrs.version].filter(Boolean).join(' ');
    const banner = [product, svcEl?.attrs.extrainfo].filter(Boolean).join(' ');

    const evidence: string[] = [`${service.port}/${proto} open${service.name ? ` (${service.name})` : ''}`];
    if (banner) evidence.push(`service: ${banner}`);
    const vulners = childrenNamed(port, 'script').find((s) => s.attrs.id === 'vulners');
    const entries = vulners ? vulnersEntries(vulners) : [];
    const exploits = entries.filter((e) => e.type !== 'cve').map((e) => e.id);
    if (exploits.length > 0) evidence.push(`vulners exploit references: ${exploits.join(', ')}`);

    const common = {
      scanner: 'nmap',
      asset,
      service,
      ...(scanTime !== undefined ? { scanTime } : {}),
      ...(cpes.length > 0 ? { cpe: cpes } : {}),
    };
    const portFinding: Finding = {
      ...common,
      weaknessKey: `nmap:open-port/${proto}/${service.port}`,
      kind: 'open-port',
      title: `Open port ${service.port}/${proto}${service.name ? ` (${service.name})` : ''}`,
      severity: 'info',
    };
    const ev = bounded(evidence.join('\n'), EVIDENCE_MAX_CHARS);
    if (ev !== undefined) portFinding.evidence = ev;
    out.push(portFinding);

    const seen = new Set<string>();
    for (const e of entries) {
      if (e.type !== 'cve') continue;
      const cve = cveIds(e.id)[0];
      if (cve === undefined || seen.has(cve)) continue;
      seen.add(cve);
      const f: Finding = {
        ...common,
        weaknessKey: cve,
        ruleId: 'vulners',
        kind: 'vulnerability',
        title: `${cve} in ${product || service.name || `${service.port}/${proto}`}`,
        severity: severityFromScore(e.cvss),
        evidence: `vulners: ${e.id} cvss ${e.cvss ?? '?'}${e.isExploit ? ' (exploit known)' : ''}`,
        references: [`https://vulners.com/cve/${cve}`],
        exploitAvailable: e.isExploit,
      };
      if (e.cvss !== undefined) f.severityReported = String(e.cvss);
      out.push(f);
    }
  }
  return out;
}

async function* parseNmap(input: Readable, ctx: ParseContext): AsyncGenerator<Finding, void, undefined> {
  let runStart: string | undefined;
  for await (const ev of readXml(input, {
    file: ctx.file,
    select: SELECT,
    roots: [ROOT],
    describe: 'an Nmap XML report',
  })) {
    if (ev.kind === 'root') runStart = isoFromEpochSeconds(ev.attrs.start);
    else if (ev.kind === 'record') yield* findingsForHost(ev.element, runStart);
  }
}

export const nmapParser: ScannerParser = {
  format: 'nmap',
  detect: (head) => sniffXmlRoot(head) === ROOT,
  parse: parseNmap,
};

export default nmapParser;
