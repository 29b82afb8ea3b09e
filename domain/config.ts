// ctem.yaml: the one configuration file. Parsed once at start into precise types; every error names
// the file, line and field. Pure: takes text, returns a Config or throws ConfigError (no I/O here).
import { LineCounter, parseDocument, isNode } from 'yaml';
import { z } from 'zod';

/** Secrets are never written in ctem.yaml: only references to an environment variable or a file. */
export const secretRef = z
  .string()
  .regex(
    /^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/,
    'must be a secret reference, env:NAME or file:PATH (secrets are not written in ctem.yaml)',
  );
export type SecretRef = z.infer<typeof secretRef>;

/** "90s", "30m", "12h", "7d", "2w". */
export const duration = z.string().regex(/^\d+(s|m|h|d|w)$/, 'must be a duration such as 30m, 12h, 7d or 2w');

export function durationMs(text: string): number {
  const m = /^(\d+)(s|m|h|d|w)$/.exec(text);
  if (!m) throw new Error(`not a duration: ${text}`);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[
    m[2] as 's' | 'm' | 'h' | 'd' | 'w'
  ];
  return Number(m[1]) * unit;
}

const level = z.enum(['L', 'M', 'H']);
const criticality = z.enum(['low', 'medium', 'high', 'critical']);
const cidr = z
  .string()
  .regex(
    /^(\d{1,3}(\.\d{1,3}){3}\/\d{1,2}|[0-9a-fA-F:]+\/\d{1,3})$/,
    'must be a CIDR block such as 10.0.0.0/8 or 2001:db8::/32',
  );
const weekday = z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']);
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time of day HH:MM');

export const personSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'must be a lower-case id (letters, digits, . _ -)'),
    name: z.string().min(1),
    email: z.string().email().optional(),
    slack: z.string().optional(),
    teams: z.string().optional(),
    manager: z.string().optional(),
    /** Overrides of the scopes' notification policy for this person (lifecycle/notificationPolicy.ts). */
    notifications: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export const roleNames = ['owner', 'approver', 'securityLead', 'ciso'] as const;
export type RoleName = (typeof roleNames)[number];

/** Which assets a rule applies to: any one criterion matching is enough. */
const assetMatch = z
  .object({
    cidrs: z.array(cidr).default([]),
    hostnames: z.array(z.string().min(1)).default([]),
    tags: z.array(z.string().min(1)).default([]),
    images: z.array(z.string().min(1)).default([]),
  })
  .strict();

export const scopeSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be a lower-case name (letters, digits, _ -)'),
    description: z.string().optional(),
    match: assetMatch.default({ cidrs: [], hostnames: [], tags: [], images: [] }),
    criticality: criticality.default('medium'),
    internetFacing: z.boolean().default(false),
    /** How often the scope's scan cycle runs. */
    cadence: duration.default('7d'),
    /** Cycles an asset may be missed before it is retired. */
    retireAfterMissedCycles: z.number().int().min(1).default(3),
    cia: z
      .object({
        confidentiality: level.default('M'),
        integrity: level.default('M'),
        availability: level.default('M'),
      })
      .strict()
      .default({ confidentiality: 'M', integrity: 'M', availability: 'M' }),
    /** Person ids per role in this scope. */
    roles: z
      .object({
        owner: z.array(z.string()).default([]),
        approver: z.array(z.string()).default([]),
        securityLead: z.array(z.string()).default([]),
        ciso: z.array(z.string()).default([]),
      })
      .strict()
      .default({ owner: [], approver: [], securityLead: [], ciso: [] }),
    /**
     * Who owns which assets of the scope: the first rule whose match fits the asset names the owner
     * of its exposures (and so their campaigns); assets no rule matches go to roles.owner[0].
     */
    ownership: z.array(z.object({ owner: z.string(), match: assetMatch }).strict()).default([]),
    channel: z.object({ slack: z.string().optional(), teams: z.string().optional() }).strict().default({}),
    tickets: z.record(z.string(), z.unknown()).optional(),
    patch: z.record(z.string(), z.unknown()).optional(),
    scan: z.record(z.string(), z.unknown()).optional(),
    maintenanceWindow: z
      .object({ days: z.array(weekday).min(1), start: hhmm, end: hhmm, timezone: z.string().default('UTC') })
      .strict()
      .optional(),
    policy: z.string().default('default'),
    alerts: z.record(z.string(), z.unknown()).optional(),
    /** SLA windows, escalation ladder, snooze and risk-acceptance limits (lifecycle/settings.ts). */
    lifecycle: z.record(z.string(), z.unknown()).optional(),
    /** What reaches people at once and what waits for the daily queue (lifecycle/notificationPolicy.ts). */
    notifications: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export const configSchema = z
  .object({
    version: z.literal(1),
    temporal: z
      .object({
        /** host:port of a Temporal frontend; absent → the embedded dev server. */
        address: z
          .string()
          .regex(/^[^\s:]+:\d+$/, 'must be host:port')
          .optional(),
        namespace: z.string().default('default'),
        taskQueue: z.string().default('ctem'),
        tls: z
          .object({
            certFile: z.string().optional(),
            keyFile: z.string().optional(),
            caFile: z.string().optional(),
            serverName: z.string().optional(),
          })
          .strict()
          .optional(),
        apiKey: secretRef.optional(),
        /**
         * Which Temporal `ctem up` starts when there is no address: the CLI's dev server (SQLite, one
         * shard) or the real Temporal server on the project's PostgreSQL (runtime/temporalServer.ts).
         */
        embedded: z.enum(['dev', 'server']).default('dev'),
        /** The embedded Temporal server's settings (embedded: server). */
        server: z
          .object({
            /** History shards; fixed when its databases are first created. */
            shards: z.number().int().min(1).max(16_384).default(4),
            /** Days a closed workflow's history is kept. */
            retentionDays: z.number().int().min(1).max(3_650).default(30),
            /** Database names on the project's PostgreSQL. */
            database: z
              .string()
              .regex(/^[a-z_][a-z0-9_]*$/, 'must be a plain database name')
              .default('temporal'),
            visibilityDatabase: z
              .string()
              .regex(/^[a-z_][a-z0-9_]*$/, 'must be a plain database name')
              .default('temporal_visibility'),
            /** Connections each Temporal service may open to the persistence database. */
            maxConns: z.number().int().min(2).max(500).default(20),
          })
          .strict()
          .default({
            shards: 4,
            retentionDays: 30,
            database: 'temporal',
            visibilityDatabase: 'temporal_visibility',
            maxConns: 20,
          }),
      })
      .strict()
      .refine((t) => !(t.address && t.embedded === 'server'), {
        message: 'embedded: server starts a Temporal server of its own; remove it or temporal.address',
        path: ['embedded'],
      })
      .default({
        namespace: 'default',
        taskQueue: 'ctem',
        embedded: 'dev',
        server: {
          shards: 4,
          retentionDays: 30,
          database: 'temporal',
          visibilityDatabase: 'temporal_visibility',
          maxConns: 20,
        },
      }),
    database: z.object({ url: secretRef.optional() }).strict().default({}),
    http: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        /**
         * Let several ctem processes listen on the same host:port, the kernel sharing connections
         * among them (SO_REUSEPORT, Linux): two HTTP servers behind one address, no proxy.
         */
        reusePort: z.boolean().default(false),
      })
      .strict()
      .default({ host: '127.0.0.1', port: 8080, reusePort: false }),
    /**
     * Prometheus metrics (counts per scope, state and priority: not for the public). On a listener of
     * their own, loopback by default; never on the HTTP server the bots and the dashboard answer on.
     */
    metrics: z
      .object({
        enabled: z.boolean().default(true),
        host: z.string().default('127.0.0.1'),
        /** 0 = any free port (the one taken is printed by `ctem up` and kept in stack.json). */
        port: z.number().int().min(0).max(65535).default(9464),
        /** When set, a scrape must send `Authorization: Bearer <token>`. */
        token: secretRef.optional(),
      })
      .strict()
      .default({ enabled: true, host: '127.0.0.1', port: 9464 }),
    people: z.array(personSchema).default([]),
    scopes: z.array(scopeSchema).default([]),
    /** Policy name → YAML file path (relative to ctem.yaml). "default" is built in. */
    policies: z.record(z.string(), z.string()).default({}),
    feeds: z.record(z.string(), z.unknown()).default({}),
    integrations: z.record(z.string(), z.unknown()).default({}),
    digest: z.record(z.string(), z.unknown()).optional(),
    dashboard: z.record(z.string(), z.unknown()).optional(),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const people = new Set(cfg.people.map((p) => p.id));
    const seenPeople = new Set<string>();
    cfg.people.forEach((p, i) => {
      if (seenPeople.has(p.id))
        ctx.addIssue({ code: 'custom', path: ['people', i, 'id'], message: `duplicate person id "${p.id}"` });
      seenPeople.add(p.id);
    });
    const seenScopes = new Set<string>();
    cfg.scopes.forEach((s, i) => {
      if (seenScopes.has(s.name))
        ctx.addIssue({ code: 'custom', path: ['scopes', i, 'name'], message: `duplicate scope "${s.name}"` });
      seenScopes.add(s.name);
      for (const role of roleNames) {
        s.roles[role].forEach((id, j) => {
          if (!people.has(id))
            ctx.addIssue({
              code: 'custom',
              path: ['scopes', i, 'roles', role, j],
              message: `unknown person "${id}": add it under people`,
            });
        });
      }
      // An owner decides on what they own: ownership only goes to the scope's owners.
      s.ownership.forEach((rule, j) => {
        if (!s.roles.owner.includes(rule.owner))
          ctx.addIssue({
            code: 'custom',
            path: ['scopes', i, 'ownership', j, 'owner'],
            message: `"${rule.owner}" is not an owner of scope ${s.name}: list them under scopes[${i}].roles.owner first`,
          });
      });
    });
  });

export type Config = z.infer<typeof configSchema>;
export type Scope = z.infer<typeof scopeSchema>;
export type Person = z.infer<typeof personSchema>;

export class ConfigError extends Error {
  constructor(
    readonly problems: { file: string; line?: number; column?: number; field: string; message: string }[],
  ) {
    super(
      problems
        .map(
          (p) =>
            `${p.file}${p.line !== undefined ? `:${p.line}:${p.column ?? 1}` : ''}: ${p.field ? `${p.field}: ` : ''}${p.message}`,
        )
        .join('\n'),
    );
    this.name = 'ConfigError';
  }
}

/**
 * Parse YAML text against a zod schema and report problems with file, line and field.
 * Shared by ctem.yaml and the policy files.
 */
export function parseYamlWithSchema<S extends z.ZodType>(text: string, file: string, schema: S): z.infer<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return {
          file,
          line: pos?.line,
          column: pos?.col,
          field: '',
          message: e.message.split('\n')[0] ?? e.message,
        };
      }),
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS() ?? {};
  } catch (err) {
    // Resolving aliases can still fail here (an alias without its anchor, an alias bomb): the
    // yaml library throws a bare ReferenceError, which must reach the user as a sentence about the file.
    throw new ConfigError([
      {
        file,
        field: '',
        message: `${(err as Error).message}; write the values out instead of using YAML anchors and aliases`,
      },
    ]);
  }
  // A section whose keys are all commented out (`database:` alone) means "defaults", not null.
  const data =
    raw && typeof raw === 'object' && !Array.isArray(raw)
      ? Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== null))
      : raw;
  const result = schema.safeParse(data);
  if (result.success) return result.data as z.infer<S>;
  throw new ConfigError(
    result.error.issues.map((issue) => {
      // Point at the deepest node that exists on the issue's path.
      let line: number | undefined;
      let column: number | undefined;
      for (let n = issue.path.length; n >= 0; n--) {
        const node: unknown = doc.getIn(issue.path.slice(0, n) as (string | number)[], true);
        if (isNode(node) && node.range) {
          const pos = lineCounter.linePos(node.range[0]);
          line = pos.line;
          column = pos.col;
          break;
        }
      }
      const field = issue.path
        .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
        .join('')
        .replace(/^\./, '');
      return { file, line, column, field, message: issue.message };
    }),
  );
}

export function parseConfig(text: string, file = 'ctem.yaml'): Config {
  return parseYamlWithSchema(text, file, configSchema);
}

/** The built-in configuration used when there is no ctem.yaml: embedded services, no scopes. */
export function defaultConfig(): Config {
  return configSchema.parse({ version: 1 });
}

/** A port number from the environment (absent when unset), or a ConfigError naming the variable. */
function envPort(env: Record<string, string | undefined>, name: string): number | undefined {
  const raw = env[name];
  if (!raw) return undefined;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new ConfigError([{ file: 'environment', field: name, message: 'must be a port number 0-65535' }]);
  return port;
}

/** Environment overrides applied after the file (production settings without editing the file). */
export function applyEnvOverrides(cfg: Config, env: Record<string, string | undefined>): Config {
  const out: Config = structuredClone(cfg);
  if (env.CTEM_TEMPORAL_ADDRESS) out.temporal.address = env.CTEM_TEMPORAL_ADDRESS;
  if (env.CTEM_TEMPORAL_NAMESPACE) out.temporal.namespace = env.CTEM_TEMPORAL_NAMESPACE;
  if (env.CTEM_TASK_QUEUE) out.temporal.taskQueue = env.CTEM_TASK_QUEUE;
  if (env.CTEM_TEMPORAL_API_KEY) out.temporal.apiKey = 'env:CTEM_TEMPORAL_API_KEY';
  // mTLS (a Temporal cluster's or Temporal Cloud's): files, e.g. mounted secrets in a container.
  const tlsEnv = {
    certFile: env.CTEM_TEMPORAL_TLS_CERT_FILE,
    keyFile: env.CTEM_TEMPORAL_TLS_KEY_FILE,
    caFile: env.CTEM_TEMPORAL_TLS_CA_FILE,
    serverName: env.CTEM_TEMPORAL_TLS_SERVER_NAME,
  };
  for (const [k, v] of Object.entries(tlsEnv)) if (v) out.temporal.tls = { ...out.temporal.tls, [k]: v };
  if (env.DATABASE_URL) out.database.url = 'env:DATABASE_URL';
  const httpPort = envPort(env, 'CTEM_HTTP_PORT');
  if (httpPort !== undefined) out.http.port = httpPort;
  if (env.CTEM_HTTP_HOST) out.http.host = env.CTEM_HTTP_HOST;
  const metricsPort = envPort(env, 'CTEM_METRICS_PORT');
  if (metricsPort !== undefined) out.metrics.port = metricsPort;
  if (env.CTEM_METRICS_HOST) out.metrics.host = env.CTEM_METRICS_HOST;
  if (env.CTEM_METRICS_TOKEN) out.metrics.token = 'env:CTEM_METRICS_TOKEN';
  if (env.CTEM_HTTP_REUSE_PORT !== undefined && env.CTEM_HTTP_REUSE_PORT !== '') {
    if (!['0', '1'].includes(env.CTEM_HTTP_REUSE_PORT))
      throw new ConfigError([
        { file: 'environment', field: 'CTEM_HTTP_REUSE_PORT', message: 'must be 0 or 1' },
      ]);
    out.http.reusePort = env.CTEM_HTTP_REUSE_PORT === '1';
  }
  if (env.CTEM_TEMPORAL_EMBEDDED) {
    if (env.CTEM_TEMPORAL_EMBEDDED !== 'dev' && env.CTEM_TEMPORAL_EMBEDDED !== 'server')
      throw new ConfigError([
        { file: 'environment', field: 'CTEM_TEMPORAL_EMBEDDED', message: 'must be dev or server' },
      ]);
    out.temporal.embedded = env.CTEM_TEMPORAL_EMBEDDED;
  }
  if (env.CTEM_TEMPORAL_SHARDS) {
    const shards = Number(env.CTEM_TEMPORAL_SHARDS);
    if (!Number.isInteger(shards) || shards < 1 || shards > 16_384)
      throw new ConfigError([
        { file: 'environment', field: 'CTEM_TEMPORAL_SHARDS', message: 'must be a whole number 1-16384' },
      ]);
    out.temporal.server.shards = shards;
  }
  if (out.temporal.address && out.temporal.embedded === 'server')
    throw new ConfigError([
      {
        file: 'environment',
        field: 'temporal.embedded',
        message:
          'embedded: server starts a Temporal server of its own; it cannot be combined with a temporal.address',
      },
    ]);
  return out;
}
