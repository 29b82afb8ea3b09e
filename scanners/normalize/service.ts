// Ports and protocols as reports write them ("443", "tcp", "TCP", "0" for host-level checks).

import type { ServiceRef } from '../../domain/finding.ts';

/** Protocol names as ServiceRef allows them. */
export function serviceProtocol(raw: string | undefined): ServiceRef['protocol'] {
  switch (raw?.trim().toLowerCase()) {
    case 'tcp':
      return 'tcp';
    case 'udp':
      return 'udp';
    case 'sctp':
      return 'sctp';
    case 'icmp':
      return 'icmp';
    default:
      return 'other';
  }
}

/** A port number 1–65535; undefined for 0 (host-level check), empty or garbage. */
export function portNumber(raw: string | undefined): number | undefined {
  if (raw === undefined || !/^\s*\d{1,5}\s*$/.test(raw)) return undefined;
  const n = Number(raw);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** A ServiceRef when there is a real port; the name is kept without Nessus' trailing "?" (unsure guess). */
export function serviceRef(
  port: string | undefined,
  protocol: string | undefined,
  name?: string,
  product?: string,
  version?: string,
): ServiceRef | undefined {
  const n = portNumber(port);
  if (n === undefined) return undefined;
  const ref: ServiceRef = { port: n, protocol: serviceProtocol(protocol) };
  const svc = name?.trim().replace(/\?$/, '');
  if (svc) ref.name = svc;
  if (product?.trim()) ref.product = product.trim();
  if (version?.trim()) ref.version = version.trim();
  return ref;
}
