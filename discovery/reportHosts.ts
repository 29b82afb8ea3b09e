// Which hosts a scanner's report says it reached, read straight from the report file. A host the
// scanner reached but found nothing on is covered all the same: its earlier findings are now gone.
// The parsers yield findings only, so the coverage is read here, as a light streaming pass.
//
//   nmap     <host><status state="up"/><address addr=…/><hostnames><hostname name=…/>
//   nessus   <ReportHost name=…><HostProperties><tag name="host-ip|host-fqdn|hostname">
//   openvas  <report><report><host><ip>…</ip>  (the scanned-hosts list of a GVM XML report), and
//            <result><host>ADDRESS<hostname>…</hostname></host> (any host a result was found on)
import { createReadStream } from 'node:fs';
import { SaxesParser } from 'saxes';
import { canonicalIp, dnsName } from '../scanners/normalize/asset.ts';

export interface ReportedHosts {
  ips: string[];
  /** Lower-case DNS names. */
  names: string[];
}

export type HostListFormat = 'nmap' | 'nessus' | 'openvas';

export async function reportedHosts(file: string, format: HostListFormat): Promise<ReportedHosts> {
  const parser = new SaxesParser({ xmlns: false });
  const ips = new Set<string>();
  const names = new Set<string>();
  const stack: string[] = [];
  let text = '';
  let capture: 'ip' | 'name' | undefined;
  // nmap: a host counts only when up, known only at its end.
  let hostUp = false;
  let hostIps: string[] = [];
  let hostNames: string[] = [];

  const add = (into: 'ip' | 'name', raw: string | undefined): void => {
    const value = into === 'ip' ? canonicalIp(raw) : dnsName(raw);
    if (!value) return;
    if (format === 'nmap') (into === 'ip' ? hostIps : hostNames).push(value);
    else (into === 'ip' ? ips : names).add(value);
  };

  parser.on('doctype', (doctype) => {
    if (doctype.includes('[')) throw new Error(`${file}: a DOCTYPE with declarations is refused`);
  });
  parser.on('opentag', (tag) => {
    const attrs = tag.attributes as Record<string, string>;
    const parent = stack.at(-1);
    stack.push(tag.name);
    if (format === 'nmap') {
      if (tag.name === 'host') {
        hostUp = false;
        hostIps = [];
        hostNames = [];
      } else if (parent === 'host' && tag.name === 'status') hostUp = attrs.state === 'up';
      else if (parent === 'host' && tag.name === 'address' && attrs.addrtype !== 'mac') add('ip', attrs.addr);
      else if (parent === 'hostnames' && tag.name === 'hostname') add('name', attrs.name);
    } else if (format === 'nessus') {
      if (tag.name === 'ReportHost') {
        const name = attrs.name;
        if (canonicalIp(name)) add('ip', name);
        else add('name', name);
      } else if (parent === 'HostProperties' && tag.name === 'tag') {
        capture =
          attrs.name === 'host-ip'
            ? 'ip'
            : attrs.name === 'host-fqdn' || attrs.name === 'hostname'
              ? 'name'
              : undefined;
        text = '';
      }
    } else if (tag.name === 'ip' && parent === 'host' && stack.at(-3) === 'report') {
      capture = 'ip';
      text = '';
    } else if (tag.name === 'host' && parent === 'result') {
      // The address is the host element's own text, before its <asset> and <hostname> children.
      capture = 'ip';
      text = '';
    } else if (tag.name === 'hostname' && parent === 'host' && stack.at(-3) === 'result') {
      if (capture === 'ip') add('ip', text.trim());
      capture = 'name';
      text = '';
    } else if (capture === 'ip' && parent === 'host' && stack.at(-3) === 'result') {
      add('ip', text.trim());
      capture = undefined;
    }
  });
  parser.on('text', (t) => {
    if (capture) text += t;
  });
  parser.on('closetag', (tag) => {
    stack.pop();
    if (
      capture &&
      (tag.name === 'tag' || tag.name === 'ip' || tag.name === 'host' || tag.name === 'hostname')
    ) {
      add(capture, text.trim());
      capture = undefined;
    }
    if (format === 'nmap' && tag.name === 'host' && hostUp) {
      for (const ip of hostIps) ips.add(ip);
      for (const n of hostNames) names.add(n);
    }
  });
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1024 * 1024 }))
    parser.write(chunk as string);
  parser.close();
  return { ips: [...ips], names: [...names] };
}
