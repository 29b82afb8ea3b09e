// The scanner connectors' sections of ctem.yaml, validated here (the foundation keeps them free-form):
//
//   integrations:
//     nmap:    { binary, ports, serviceDetection, hostDiscovery, timing, hostTimeout, timeout }
//     nessus:  { url, accessKey, secretKey, scanId, caFile, pollInterval, timeout }
//     gvm:     { socket | host+port (TLS), caFile, serverName, username, password, configId, scannerId,
//                portListId, pollInterval, timeout }
//     ssh:     the patching integration's connection settings, reused by the SSH package check
//   scopes[].scan: { connector: nmap | nessus | gvm | ssh-package, targets, ports, scanId, configId }
//
// Errors name the field (integrations.nessus.accessKey, scopes[1].scan.scanId) and what to do.
import { z } from 'zod';
import { duration, secretRef, type Config, type Scope } from '../domain/config.ts';

export class ConnectorConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectorConfigError';
  }
}

export const connectorNames = ['nmap', 'nessus', 'gvm', 'ssh-package'] as const;
export type ConnectorName = (typeof connectorNames)[number];

/** "22,80,443" or "1-1024": TCP ports, digits, commas and ranges only. */
export const portSpec = z
  .string()
  .regex(/^\d{1,5}(-\d{1,5})?(,\d{1,5}(-\d{1,5})?)*$/, 'must be a TCP port list such as 22,80,443 or 1-1024')
  .refine(
    (s) => s.split(',').every((r) => r.split('-').every((p) => Number(p) >= 1 && Number(p) <= 65535)),
    'ports must be between 1 and 65535',
  );

/** An IP address, a CIDR block or a DNS name: nothing an option parser could take for a flag. */
export const scanTarget = z
  .string()
  .regex(
    /^([0-9]{1,3}(\.[0-9]{1,3}){3}(\/\d{1,2})?|[0-9A-Fa-f:]+:[0-9A-Fa-f:.]*(\/\d{1,3})?|[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?)$/,
    'must be an IP address, a CIDR block or a host name',
  );

const uuid = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'must be a UUID');

export const nmapSchema = z
  .object({
    binary: z.string().min(1).default('/usr/bin/nmap'),
    /** Ports to scan; absent = nmap's default top 1000 TCP ports. */
    ports: portSpec.optional(),
    /** -sV: probe open ports for service and version (slower, richer evidence). */
    serviceDetection: z.boolean().default(false),
    /** false = -Pn (every target is treated as up; only for networks that drop probes). */
    hostDiscovery: z.boolean().default(true),
    timing: z.number().int().min(0).max(5).default(3),
    /** Reverse DNS of the addresses found (names help match hosts across scanners); false = -n. */
    reverseDns: z.boolean().default(true),
    hostTimeout: duration.default('15m'),
    /** Whole run; the scan is killed past it. */
    timeout: duration.default('4h'),
  })
  .strict();

export const nessusSchema = z
  .object({
    /** https://nessus.example.com:8834 or https://cloud.tenable.com */
    url: z
      .string()
      .url()
      .regex(/^https?:\/\//, 'must be an http(s) URL'),
    accessKey: secretRef,
    secretKey: secretRef,
    /** The scan (policy, credentials, schedule) launched with alternative targets; a scope may override. */
    scanId: z.number().int().positive().optional(),
    /** A CA bundle for a self-signed Nessus certificate (relative to ctem.yaml). */
    caFile: z.string().min(1).optional(),
    pollInterval: duration.default('30s'),
    timeout: duration.default('12h'),
    requestTimeout: duration.default('60s'),
  })
  .strict();

export const gvmSchema = z
  .object({
    /** gvmd's Unix socket (on the same machine); or host + port for GMP over TLS. */
    socket: z.string().min(1).optional(),
    host: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).default(9390),
    caFile: z.string().min(1).optional(),
    serverName: z.string().min(1).optional(),
    username: z.string().min(1),
    password: secretRef,
    /** Scan config; default "Full and fast". */
    configId: uuid.default('daba56c8-73ec-11df-a475-002264764cea'),
    /** Scanner; default the built-in OpenVAS scanner. */
    scannerId: uuid.default('08b69003-5fc2-4037-a479-93b440211c73'),
    /** Port list; default "All IANA assigned TCP". */
    portListId: uuid.default('33d0cd82-57c6-11e1-8ed1-406186ea4fc5'),
    pollInterval: duration.default('30s'),
    timeout: duration.default('12h'),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (!v.socket === !v.host)
      ctx.addIssue({
        code: 'custom',
        path: ['socket'],
        message: 'set exactly one of socket (Unix) or host (TLS)',
      });
  });

export const scopeScanSchema = z
  .object({
    connector: z.enum(connectorNames),
    /** What a scan cycle scans; default the scope's CIDRs and its host names without wildcards. */
    targets: z.array(scanTarget).optional(),
    /** nmap: ports for this scope. */
    ports: portSpec.optional(),
    /** nessus: the scan to launch for this scope. */
    scanId: z.number().int().positive().optional(),
    /** gvm: the scan config for this scope. */
    configId: uuid.optional(),
  })
  .strict();

export type NmapSettings = z.infer<typeof nmapSchema>;
export type NessusSettings = z.infer<typeof nessusSchema>;
export type GvmSettings = z.infer<typeof gvmSchema>;
export type ScopeScanSettings = z.infer<typeof scopeScanSchema>;

export function parseSection<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data as z.infer<S>;
  const problems = result.error.issues.map((issue) => {
    const field = [where, ...issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))]
      .join('')
      .replace(/\.\[/g, '[');
    return `ctem.yaml ${field}: ${issue.message}`;
  });
  throw new ConnectorConfigError(problems.join('\n'));
}

export function integrationSection<S extends z.ZodType>(config: Config, name: string, schema: S): z.infer<S> {
  const value = config.integrations[name];
  if (value === undefined)
    throw new ConnectorConfigError(`ctem.yaml integrations.${name}: missing; add it to scan with ${name}`);
  return parseSection(schema, value, `integrations.${name}`);
}

/** The scope's scan settings; undefined when the scope has no scan section. */
export function scopeScanSettings(config: Config, scope: Scope): ScopeScanSettings | undefined {
  if (scope.scan === undefined) return undefined;
  const index = config.scopes.indexOf(scope);
  return parseSection(scopeScanSchema, scope.scan, `scopes[${index}].scan`);
}

/** What a scope's scan cycle scans: configured targets, else its CIDRs and literal host names. */
export function scopeTargets(scope: Scope, settings: ScopeScanSettings | undefined): string[] {
  if (settings?.targets?.length) return settings.targets;
  const literalHosts = scope.match.hostnames.filter((h) => !/[*?]/.test(h));
  return [...scope.match.cidrs, ...literalHosts];
}
