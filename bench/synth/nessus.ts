// Synthetic Nessus v2 report writer for the ingest and parser benchmarks. The shape follows real
// .nessus exports (Policy preamble, HostProperties tags, ReportItems with the usual children and a
// few hundred bytes of description and plugin output), so throughput measured on it is
// representative. Output is deterministic for given options, and every Finding the nessus parser
// yields from it is a distinct (host, weakness) pair, so ingest sees exactly `findings` exposures.

import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';

export interface SyntheticNessusOptions {
  /** Findings the nessus parser will yield (one per CVE of a ReportItem, or one per item without CVE). */
  findings: number;
  /** Hosts the findings are spread over, evenly. */
  hosts: number;
  /** Share (0–1) of ReportItems that carry CVEs. Default 0.6. */
  cveRatio?: number;
  /** Most CVEs on one ReportItem (each becomes its own Finding). Default 1: one Finding per item. */
  maxCvesPerItem?: number;
}

export interface SyntheticNessusResult {
  bytes: number;
  /** ReportItems written. */
  items: number;
  /** Findings the nessus parser yields: always equal to the requested count. */
  findings: number;
}

const RISK = ['None', 'Low', 'Medium', 'High', 'Critical'] as const;
const PORTS = [22, 80, 443, 3306, 8080] as const;

function hostBlock(h: number): string {
  const ip = `10.${(h >> 16) & 255}.${(h >> 8) & 255}.${h & 255}`;
  const hex = (n: number): string => (n & 255).toString(16).padStart(2, '0');
  return `<ReportHost name="${ip}"><HostProperties>
<tag name="HOST_END_TIMESTAMP">1719918000</tag>
<tag name="operating-system">Linux Kernel 5.15 on Ubuntu 22.04</tag>
<tag name="host-ip">${ip}</tag>
<tag name="host-fqdn">host-${h}.corp.example.com</tag>
<tag name="netbios-name">HOST-${h}</tag>
<tag name="mac-address">00:16:3e:${hex(h >> 16)}:${hex(h >> 8)}:${hex(h)}</tag>
<tag name="HOST_START_TIMESTAMP">1719914400</tag>
</HostProperties>
`;
}

/** One ReportItem; `item` is unique over the file, so plugin ids and CVE ids never repeat on a host. */
function itemBlock(item: number, cveCount: number): string {
  const plugin = 100000 + item;
  const sev = cveCount > 0 ? 1 + (item % 4) : item % 5;
  const port = PORTS[item % PORTS.length] ?? 443;
  const minor = item % 40;
  const cves: string[] = [];
  for (let k = 0; k < cveCount; k++)
    cves.push(`<cve>CVE-${2010 + (item % 15)}-${100000 + item * 4 + k}</cve>`);
  const title = `Synthetic Package &lt; 1.${minor}.${item % 7} Multiple Vulnerabilities (${plugin})`;
  return `<ReportItem port="${port}" svc_name="www" protocol="tcp" severity="${sev}" pluginID="${plugin}" pluginName="${title}" pluginFamily="General">
<cpe>cpe:/a:example:synthetic</cpe>
${cves.join('\n')}
<cvss3_base_score>${(sev * 2 + 1.5).toFixed(1)}</cvss3_base_score>
<cvss3_vector>CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N</cvss3_vector>
<cvss_base_score>${(sev * 2).toFixed(1)}</cvss_base_score>
<cvss_vector>CVSS2#AV:N/AC:L/Au:N/C:P/I:N/A:N</cvss_vector>
<cwe>CWE-${79 + (item % 300)}</cwe>
<description>According to its self-reported version number, the version of the synthetic package installed on the remote host is prior to 1.${minor}. It is, therefore, affected by multiple vulnerabilities, including a heap overflow in the request parser &amp; a denial of service when handling crafted &lt;input&gt; elements. Note that Nessus has not tested for these issues but has instead relied only on the application&apos;s self-reported version number.</description>
<exploit_available>${item % 3 === 0 ? 'true' : 'false'}</exploit_available>
<fname>synthetic_${plugin}.nasl</fname>
<plugin_modification_date>2024/01/19</plugin_modification_date>
<plugin_name>${title}</plugin_name>
<plugin_publication_date>2020/03/25</plugin_publication_date>
<plugin_type>remote</plugin_type>
<risk_factor>${RISK[sev]}</risk_factor>
<script_version>1.${item % 30}</script_version>
<see_also>https://vendor.example.com/advisories/${plugin}
https://www.example.org/security/${item % 1000}.html</see_also>
<solution>Upgrade to version 1.${minor + 1}.0 or later.</solution>
<synopsis>The remote service is affected by multiple vulnerabilities.</synopsis>
<xref>CWE:${79 + (item % 300)}</xref>
<plugin_output>
  Version source    : http://host/version.php
  Installed version : 1.${minor}.${item % 7}
  Fixed version     : 1.${minor + 1}.0
</plugin_output>
</ReportItem>
`;
}

async function put(out: Writable, s: string): Promise<number> {
  if (!out.write(s)) await once(out, 'drain');
  return Buffer.byteLength(s);
}

/** Write a synthetic .nessus file yielding exactly `findings` findings over `hosts` hosts, streaming. */
export async function writeSyntheticNessus(
  path: string,
  opts: SyntheticNessusOptions,
): Promise<SyntheticNessusResult> {
  const hosts = Math.max(1, Math.floor(opts.hosts));
  const total = Math.max(0, Math.floor(opts.findings));
  const cveRatio = opts.cveRatio ?? 0.6;
  const maxCves = Math.max(1, Math.floor(opts.maxCvesPerItem ?? 1));
  const out = createWriteStream(path);
  const closed = once(out, 'close');
  let bytes = 0;
  let items = 0;
  let written = 0;
  try {
    bytes += await put(
      out,
      '<?xml version="1.0" ?>\n<NessusClientData_v2>\n<Policy><policyName>Synthetic</policyName></Policy>\n' +
        '<Report name="synthetic" xmlns:cm="http://www.nessus.org/cm">\n',
    );
    for (let h = 0; h < hosts; h++) {
      // Spread the remainder over the first hosts so the total is exact.
      const quota = Math.floor(total / hosts) + (h < total % hosts ? 1 : 0);
      if (quota === 0) continue;
      let buf = hostBlock(h);
      for (let done = 0; done < quota;) {
        const item = items++;
        // A cheap deterministic hash decides which items carry CVEs, and how many.
        const hash = Math.imul(item + 1, 2654435761) >>> 0;
        const cves = hash % 1000 < cveRatio * 1000 ? Math.min(1 + (hash % maxCves), quota - done) : 0;
        buf += itemBlock(item, cves);
        done += Math.max(1, cves);
        if (buf.length > 256 * 1024) {
          bytes += await put(out, buf);
          buf = '';
        }
      }
      written += quota;
      bytes += await put(out, `${buf}</ReportHost>\n`);
    }
    bytes += await put(out, '</Report>\n</NessusClientData_v2>\n');
  } finally {
    out.end();
    await closed;
  }
  return { bytes, items, findings: written };
}
