// The production-shaped Temporal: the real server (go.temporal.io/server, the release the CLI's dev
// server embeds) with PostgreSQL persistence and PostgreSQL visibility in two databases of the
// project's PostgreSQL, schemas installed by Temporal's own temporal-sql-tool, several history shards,
// and the four services (frontend, history, matching, worker) in one process. `npm run setup --
// --temporal-server` builds both binaries into .ctem/bin.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { supervise } from './child.ts';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { msNumberToTs } from '@temporalio/common';
import { bundledBinDir } from './paths.ts';
import { isPortFree, PortInUseError, waitForPort } from './ports.ts';
import { SEARCH_ATTRIBUTES, untilTemporalAnswers, type RunningTemporal } from './temporal.ts';

/** The server release the project pins (the one Temporal CLI 1.5.1 embeds as its dev server). */
export const TEMPORAL_SERVER_VERSION = '1.29.1';

export interface TemporalServerPorts {
  frontend: number;
  frontendHttp: number;
  history: number;
  matching: number;
  worker: number;
  frontendMembership: number;
  historyMembership: number;
  matchingMembership: number;
  workerMembership: number;
}

export interface TemporalServerOptions {
  /** PostgreSQL the server persists to; its user must be allowed to create databases. */
  databaseUrl: string;
  /** Where the rendered configuration and the server's log live. */
  dir: string;
  /** The frontend's gRPC port; the other services' ports follow Temporal's layout from it. */
  port: number;
  ports?: Partial<TemporalServerPorts>;
  /** History shards: fixed when the databases are first set up (a later different value is refused). */
  shards?: number;
  namespace?: string;
  /** How long closed workflows' histories are kept. */
  retentionDays?: number;
  /** Database names for persistence and visibility. */
  databases?: { main?: string; visibility?: string };
  /** Connections each service may open to the persistence database. */
  maxConns?: number;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  onOutput?: (line: string) => void;
}

export class MissingTemporalServerError extends Error {
  constructor(which: string) {
    super(
      `${which} was not found in .ctem/bin: run \`node scripts/setup.mjs --temporal-server\` (or \`npm run cluster\`, which does) to build the pinned Temporal server ${TEMPORAL_SERVER_VERSION}, or set CTEM_TEMPORAL_SERVER_BIN and CTEM_TEMPORAL_SQL_TOOL_BIN`,
    );
    this.name = 'MissingTemporalServerError';
  }
}

/** Temporal's default port layout (7233 frontend, 7234 history, 7235 matching, 7239 worker…) moved to `frontend`. */
export function temporalServerPorts(
  frontend: number,
  given: Partial<TemporalServerPorts> = {},
): TemporalServerPorts {
  return {
    frontend,
    frontendHttp: frontend + 10,
    history: frontend + 1,
    matching: frontend + 2,
    worker: frontend + 6,
    frontendMembership: frontend - 300,
    historyMembership: frontend - 299,
    matchingMembership: frontend - 298,
    workerMembership: frontend - 294,
    ...given,
  };
}

interface Binaries {
  server: string;
  sqlTool: string;
}

function findBinaries(env: NodeJS.ProcessEnv = process.env): Binaries {
  const server = env.CTEM_TEMPORAL_SERVER_BIN ?? path.join(bundledBinDir, 'temporal-server');
  const sqlTool = env.CTEM_TEMPORAL_SQL_TOOL_BIN ?? path.join(bundledBinDir, 'temporal-sql-tool');
  if (!existsSync(server)) throw new MissingTemporalServerError('The Temporal server (temporal-server)');
  if (!existsSync(sqlTool))
    throw new MissingTemporalServerError("Temporal's schema tool (temporal-sql-tool)");
  return { server, sqlTool };
}

export interface SqlTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  /** sslmode of the URL: require/verify-ca/verify-full turn TLS on. */
  tls: 'off' | 'on' | 'verify';
}

export function sqlTarget(databaseUrl: string): SqlTarget {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw new Error(
      'the PostgreSQL URL for the Temporal server is not a URL (postgres://user:password@host:port/db)',
    );
  }
  if (!/^postgres(ql)?:$/.test(url.protocol))
    throw new Error(`the Temporal server needs a postgres:// URL, not ${url.protocol}//`);
  const sslmode = url.searchParams.get('sslmode') ?? 'disable';
  return {
    host: url.hostname,
    port: Number(url.port || 5432),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    tls: sslmode === 'verify-full' ? 'verify' : ['require', 'verify-ca'].includes(sslmode) ? 'on' : 'off',
  };
}

/** One temporal-sql-tool call; the password travels in the environment, never on the command line. */
function sqlTool(bin: string, target: SqlTarget, database: string, argv: string[]): string {
  const args = [
    '--plugin',
    'postgres12',
    '--ep',
    target.host,
    '-p',
    String(target.port),
    '-u',
    target.user,
    '--db',
    database,
    ...(target.tls !== 'off' ? ['--tls'] : []),
    ...(target.tls === 'on' ? ['--tls-disable-host-verification'] : []),
    ...argv,
  ];
  const r = spawnSync(bin, args, {
    encoding: 'utf8',
    env: { ...process.env, SQL_PASSWORD: target.password },
  });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0) {
    const last = out.trim().split('\n').slice(-3).join(' | ');
    throw new Error(`temporal-sql-tool ${argv[0]} on database ${database} failed: ${last}`);
  }
  return out;
}

/**
 * Create the persistence and visibility databases when missing and bring both schemas to the
 * version this server release ships (temporal-sql-tool setup-schema, then update-schema). Idempotent.
 */
export async function prepareTemporalDatabases(
  databaseUrl: string,
  databases: { main: string; visibility: string },
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const { sqlTool: bin } = findBinaries(env);
  const target = sqlTarget(databaseUrl);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    for (const [name, schema] of [
      [databases.main, 'postgresql/v12/temporal'],
      [databases.visibility, 'postgresql/v12/visibility'],
    ] as const) {
      const exists = await client.query('select 1 from pg_database where datname = $1', [name]);
      if (exists.rowCount === 0) sqlTool(bin, target, name, ['create-database']);
      const db = new pg.Client({ connectionString: withDatabase(databaseUrl, name) });
      await db.connect();
      const versioned = await db
        .query("select 1 from information_schema.tables where table_name = 'schema_version'")
        .finally(() => db.end());
      if (versioned.rowCount === 0) sqlTool(bin, target, name, ['setup-schema', '-v', '0.0']);
      sqlTool(bin, target, name, ['update-schema', '--schema-name', schema]);
    }
  } finally {
    await client.end();
  }
}

function withDatabase(databaseUrl: string, name: string): string {
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

const PASSWORD_ENV = 'CTEM_TEMPORAL_SQL_PASSWORD';

/** The server's configuration file (Temporal's YAML, rendered as a template for the password). */
export function temporalServerConfig(opts: {
  target: SqlTarget;
  ports: TemporalServerPorts;
  shards: number;
  databases: { main: string; visibility: string };
  maxConns: number;
  logLevel: string;
  dynamicConfigFile: string;
}): string {
  const { target, ports } = opts;
  const tls =
    target.tls === 'off'
      ? ''
      : `
        tls:
          enabled: true
          enableHostVerification: ${target.tls === 'verify'}`;
  const store = (database: string, conns: number) => `
      sql:
        pluginName: postgres12
        databaseName: ${JSON.stringify(database)}
        connectAddr: ${JSON.stringify(`${target.host}:${target.port}`)}
        connectProtocol: tcp
        user: ${JSON.stringify(target.user)}
        password: {{ env "${PASSWORD_ENV}" | quote }}
        maxConns: ${conns}
        maxIdleConns: ${conns}
        maxConnLifetime: 1h${tls}`;
  const service = (grpc: number, membership: number, http?: number) => `
    rpc:
      grpcPort: ${grpc}
      membershipPort: ${membership}
      bindOnLocalHost: true${http ? `\n      httpPort: ${http}` : ''}`;
  return `# enable-template
# Written by ctem (runtime/temporalServer.ts) at each start; edits are overwritten.
log:
  stdout: true
  level: ${opts.logLevel}
persistence:
  defaultStore: ctem-default
  visibilityStore: ctem-visibility
  numHistoryShards: ${opts.shards}
  datastores:
    ctem-default:${store(opts.databases.main, opts.maxConns)}
    ctem-visibility:${store(opts.databases.visibility, Math.max(2, Math.ceil(opts.maxConns / 4)))}
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
services:
  frontend:${service(ports.frontend, ports.frontendMembership, ports.frontendHttp)}
  history:${service(ports.history, ports.historyMembership)}
  matching:${service(ports.matching, ports.matchingMembership)}
  worker:${service(ports.worker, ports.workerMembership)}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: 127.0.0.1:${ports.frontend}
      httpAddress: 127.0.0.1:${ports.frontendHttp}
dcRedirectionPolicy:
  policy: noop
archival:
  history:
    state: disabled
  visibility:
    state: disabled
namespaceDefaults:
  archival:
    history:
      state: disabled
    visibility:
      state: disabled
dynamicConfigClient:
  filepath: ${JSON.stringify(opts.dynamicConfigFile)}
  pollInterval: 60s
`;
}

/**
 * Start the real Temporal server on loopback against PostgreSQL, register the namespace and ctem's
 * search attributes, and resolve once the namespace answers a real RPC.
 */
export async function startTemporalServer(opts: TemporalServerOptions): Promise<RunningTemporal> {
  const shards = opts.shards ?? 4;
  if (!Number.isInteger(shards) || shards < 1)
    throw new Error('temporal.server.shards must be a whole number ≥ 1');
  const namespace = opts.namespace ?? 'default';
  const databases = {
    main: opts.databases?.main ?? 'temporal',
    visibility: opts.databases?.visibility ?? 'temporal_visibility',
  };
  const ports = temporalServerPorts(opts.port, opts.ports);
  // The server records membership ports in a smallint column (cluster_membership.rpc_port).
  for (const [name, port] of Object.entries(ports))
    if (name.endsWith('Membership') && (port < 1 || port > 32_767))
      throw new Error(
        `the Temporal server's ${name} port ${port} is outside 1-32767 (Temporal stores membership ports as a smallint): set CTEM_TEMPORAL_PORT to a frontend port between 301 and 33061`,
      );
  for (const [name, port] of Object.entries(ports)) {
    if (!(await isPortFree(port)))
      throw new PortInUseError(
        `The Temporal server (${name})`,
        '127.0.0.1',
        port,
        'set CTEM_TEMPORAL_PORT to another frontend port (the other services use ports next to it) or temporal.address to use a running cluster',
      );
  }
  const bins = findBinaries();
  const target = sqlTarget(opts.databaseUrl);
  await prepareTemporalDatabases(opts.databaseUrl, databases);

  const configDir = path.join(opts.dir, 'config');
  await mkdir(configDir, { recursive: true });
  const dynamicConfigFile = path.join(configDir, 'dynamicconfig.yaml');
  if (!existsSync(dynamicConfigFile))
    await writeFile(
      dynamicConfigFile,
      '# Temporal dynamic configuration (https://docs.temporal.io/references/dynamic-configuration);\n# ctem writes this file once and leaves your edits alone.\n{}\n',
    );
  await writeFile(
    path.join(configDir, 'ctem.yaml'),
    temporalServerConfig({
      target,
      ports,
      shards,
      databases,
      maxConns: opts.maxConns ?? 20,
      logLevel: opts.logLevel ?? 'warn',
      dynamicConfigFile,
    }),
    { mode: 0o600 },
  );

  const log = createWriteStream(path.join(opts.dir, 'temporal-server.log'), { flags: 'a' });
  const child: ChildProcess = spawn(
    bins.server,
    ['--root', opts.dir, '--config', 'config', '--env', 'ctem', '--allow-no-auth', 'start'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, [PASSWORD_ENV]: target.password } },
  );
  const supervised = supervise(child, (text) => {
    log.write(text);
    opts.onOutput?.(text);
  });
  const { output, exited } = supervised;
  const stop = async () => {
    await supervised.stop(20_000);
    await new Promise((resolve) => log.end(resolve));
  };

  try {
    const ready = waitForPort(ports.frontend, '127.0.0.1', 120_000).then(() => 'ready' as const);
    const outcome = await Promise.race([ready, exited.then(() => 'exited' as const)]);
    if (outcome === 'exited') {
      throw new Error(
        `the Temporal server exited during start (its log: ${path.join(opts.dir, 'temporal-server.log')}): ${lastLines(output)}`,
      );
    }
    const address = `127.0.0.1:${ports.frontend}`;
    const registered = (async () => {
      await registerNamespace(address, namespace, opts.retentionDays ?? 30);
      // Listing its search attributes needs the namespace served: no separate wait for it.
      await registerSearchAttributes(address, namespace);
      return 'ready' as const;
    })();
    if ((await Promise.race([registered, exited.then(() => 'exited' as const)])) === 'exited') {
      throw new Error(
        `the Temporal server stopped during start (its log: ${path.join(opts.dir, 'temporal-server.log')}): ${lastLines(output)}`,
      );
    }
    let stopping: Promise<void> | undefined;
    return { address, process: child, stop: () => (stopping ??= stop()) };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The server's last error lines (its JSON log's "msg" and "error"), for a start that failed. */
function lastLines(output: string[]): string {
  const lines = output.join('').trim().split('\n');
  const errors = lines.filter((l) => /"level":"(error|fatal)"/.test(l)).slice(-2);
  return (errors.length ? errors : lines.slice(-3))
    .map((l) => {
      try {
        const j = JSON.parse(l) as { msg?: string; error?: string };
        return [j.msg, j.error].filter(Boolean).join(': ');
      } catch {
        return l;
      }
    })
    .join(' | ');
}

const NOT_FOUND = 5;
const ALREADY_EXISTS = 6;

/** Register the namespace once (a server keeps it in its database across restarts). */
async function registerNamespace(address: string, namespace: string, retentionDays: number): Promise<void> {
  await untilTemporalAnswers(address, 120_000, async (conn) => {
    try {
      await conn.workflowService.describeNamespace({ namespace });
      return;
    } catch (err) {
      if ((err as { code?: number }).code !== NOT_FOUND) throw err;
    }
    try {
      await conn.workflowService.registerNamespace({
        namespace,
        description: 'ctem-orchestrator',
        workflowExecutionRetentionPeriod: msNumberToTs(retentionDays * 86_400_000),
      });
    } catch (err) {
      if ((err as { code?: number }).code !== ALREADY_EXISTS) throw err;
    }
  });
}

/** Temporal's IndexedValueType numbers (temporal.api.enums.v1). */
const INDEXED_VALUE_TYPE = { Keyword: 2, Double: 4, Datetime: 6 } as const;

/** The search attributes `start-dev --search-attribute` registers, added on a cluster through the operator API. */
async function registerSearchAttributes(address: string, namespace: string): Promise<void> {
  await untilTemporalAnswers(address, 60_000, async (conn) => {
    const listed = await conn.operatorService.listSearchAttributes({ namespace });
    const have = new Set(Object.keys(listed.customAttributes ?? {}));
    const missing = Object.entries(SEARCH_ATTRIBUTES).filter(([name]) => !have.has(name));
    if (missing.length === 0) return;
    await conn.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map(([name, type]) => [name, INDEXED_VALUE_TYPE[type]])),
    });
    const after = await conn.operatorService.listSearchAttributes({ namespace });
    const absent = missing.filter(([name]) => !(name in (after.customAttributes ?? {})));
    if (absent.length)
      throw new Error(`search attributes not registered yet: ${absent.map(([n]) => n).join(', ')}`);
  });
}
