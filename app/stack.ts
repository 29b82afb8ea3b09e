import { createHash, timingSafeEqual } from 'node:crypto';
import os from 'node:os';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Worker } from '@temporalio/worker';
import { Client } from '@temporalio/client';
import type { Config } from '../domain/config.ts';
import { createPool, type Pool } from '../runtime/pool.ts';
import { migrate } from '../runtime/migrate.ts';
import { resolveSecret } from '../runtime/config.ts';
import { ensureDatabase, startEmbeddedPostgres, type RunningPostgres } from '../runtime/postgres.ts';
import { startTemporalDevServer, type RunningTemporal } from '../runtime/temporal.ts';
import { startTemporalServer, TEMPORAL_SERVER_VERSION } from '../runtime/temporalServer.ts';
import { connectClient, connectWorker, validateTemporalConnection } from '../runtime/temporalConnection.ts';
import { ensureSchedules } from '../lifecycle/schedules.ts';
import { migrateLegacyLifecycles } from '../lifecycle/migrateLegacy.ts';
import { validateLifecycleSettings } from '../lifecycle/settings.ts';
import { validateNotificationSettings } from '../lifecycle/notificationPolicy.ts';
import { createWorker, installWorkerRuntime } from '../worker/worker.ts';
import { HttpServer, sendJson } from '../bots/http.ts';
import { startChatBots } from '../bots/mount.ts';
import { mountDashboard } from '../bots/dashboard/app.ts';
import { registerTicketWebhooks } from '../bots/webhooks/index.ts';
import { startTicketPollers } from '../tickets/pollers.ts';
import { CtemMetrics } from './metrics.ts';
import { STACK_FILE, type StackInfo } from '../runtime/stackInfo.ts';
import { compose } from './compose.ts';
import type { Deps } from '../runtime/deps.ts';

export interface Stack {
  info: StackInfo;
  pool: Pool;
  databaseUrl: string;
  http: HttpServer;
  /** A Temporal client on the stack's namespace (commands such as `ctem demo` drive workflows with it). */
  client: Client;
  /** The dependencies the stack's worker runs with (its integrations, clock…). */
  deps: Deps;
  stop(): Promise<void>;
}

export interface StartStackOptions {
  config: Config;
  baseDir: string;
  home: string;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  onProgress?: (step: string) => void;
}

/**
 * Start everything a ctem deployment needs in one process: PostgreSQL (embedded unless DATABASE_URL),
 * migrations, Temporal (dev server with a persistent db file unless temporal.address), the worker and
 * the HTTP server. If any step fails, what was already started is stopped again.
 */
export async function startStack(opts: StartStackOptions): Promise<Stack> {
  const { config, baseDir, home, log } = opts;
  const env = opts.env ?? process.env;
  const progress = opts.onProgress ?? (() => undefined);
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse())
      await stop().catch((err: unknown) => log.warn({ err }, 'stop step failed'));
    stops.length = 0;
  };
  try {
    validateTemporalConnection(config, baseDir, env);
    await mkdir(home, { recursive: true });

    let pg: RunningPostgres | undefined;
    let databaseUrl: string;
    if (config.database.url) {
      databaseUrl = resolveSecret(config.database.url, env, baseDir);
      progress('using the configured PostgreSQL');
    } else {
      progress('starting embedded PostgreSQL');
      const port = Number(env.CTEM_PG_PORT ?? 55432);
      pg = await startEmbeddedPostgres({ dataDir: path.join(home, 'postgres'), port });
      stops.push(() => pg!.stop());
      databaseUrl = await ensureDatabase(pg.url, 'ctem');
    }
    const pool = createPool(databaseUrl, 20);
    stops.push(() => pool.end());
    progress('applying database migrations');
    const migrated = await migrate(pool);
    if (migrated.applied.length) log.info({ applied: migrated.applied }, 'migrations applied');

    let temporal: RunningTemporal | undefined;
    let address = config.temporal.address;
    if (!address && config.temporal.embedded === 'server') {
      const server = config.temporal.server;
      progress(
        `starting the Temporal server ${TEMPORAL_SERVER_VERSION} on PostgreSQL (${server.shards} history shards)`,
      );
      temporal = await startTemporalServer({
        databaseUrl,
        dir: path.join(home, 'temporal-server'),
        port: Number(env.CTEM_TEMPORAL_PORT ?? 7233),
        shards: server.shards,
        retentionDays: server.retentionDays,
        databases: { main: server.database, visibility: server.visibilityDatabase },
        maxConns: server.maxConns,
        namespace: config.temporal.namespace,
      });
      stops.push(() => temporal!.stop());
      address = temporal.address;
    } else if (!address) {
      progress('starting the Temporal dev server');
      const port = Number(env.CTEM_TEMPORAL_PORT ?? 7233);
      temporal = await startTemporalDevServer({
        port,
        uiPort: Number(env.CTEM_TEMPORAL_UI_PORT ?? port + 1000),
        headless: env.CTEM_TEMPORAL_UI === '0',
        dbFile: path.join(home, 'temporal.db'),
        namespace: config.temporal.namespace,
      });
      stops.push(() => temporal!.stop());
      address = temporal.address;
    }

    const composition = compose({ pool, config, baseDir, log, env });
    stops.push(async () => composition.stop());
    const metrics = new CtemMetrics(pool);
    progress('starting the worker');
    installWorkerRuntime(log);
    const connection = await connectWorker(config, address, baseDir);
    stops.push(() => connection.close());
    const worker: Worker = await createWorker({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      deps: composition.deps,
      extra: { interceptors: { activity: [metrics.activityInterceptor()] } },
    });
    const running = worker.run();
    stops.push(async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    });
    running.catch((err: unknown) => log.error({ err }, 'worker stopped with an error'));

    progress('creating the Temporal Schedules');
    validateLifecycleSettings(config);
    validateNotificationSettings(config);
    const clientConnection = await connectClient(config, address, baseDir);
    stops.push(() => clientConnection.close());
    const client = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
    metrics.useTemporal(client);
    const schedules = await ensureSchedules(client, config, config.temporal.taskQueue);
    log.info({ schedules }, 'schedules in place');
    const pollers = await startTicketPollers(client, config, config.temporal.taskQueue);
    if (pollers.length) log.info({ pollers }, 'ticket pollers running');
    // Lifecycles of the previous release (one workflow per exposure) move into their campaigns.
    const legacy = await migrateLegacyLifecycles(composition.deps, client, {
      taskQueue: config.temporal.taskQueue,
    });
    if (legacy.found) {
      log.info({ legacy }, 'lifecycles of the previous release moved into campaigns');
      progress(`moved ${legacy.moved} lifecycle(s) of the previous release into campaigns`);
    }

    progress('starting the HTTP server');
    const http = new HttpServer(log.child({ part: 'http' }));
    http.route('GET', '/healthz', (_req, res) => sendJson(res, 200, { status: 'ok' }));
    http.route('GET', '/readyz', async (_req, res) => {
      const dbOk = await pool.query('select 1').then(
        () => true,
        () => false,
      );
      const workerOk = worker.getState() === 'RUNNING';
      // `instance` tells which ctem process answered when several share one address.
      sendJson(res, dbOk && workerOk ? 200 : 503, {
        database: dbOk,
        worker: worker.getState(),
        instance: `${process.pid}@${os.hostname()}`,
      });
    });
    registerTicketWebhooks(http, config, { pool, client, log: log.child({ part: 'tickets' }), baseDir });
    // Slack and Teams (when configured) register their endpoints on the same server.
    const chat = await startChatBots({ http, config, chat: composition.chat, client, log, baseDir, env });
    if (chat) stops.push(() => chat.stop());
    // The dashboard (when dashboard: configures accounts or tokens) decides through the same API.
    mountDashboard({
      http,
      config,
      pool,
      client,
      log: log.child({ part: 'dashboard' }),
      baseDir,
      env,
      ...(chat ? { decisions: chat.decisions } : {}),
    });
    const httpPort = await http.listen(config.http.port, config.http.host, {
      reusePort: config.http.reusePort,
    });
    stops.push(() => http.close());
    // Metrics on a listener of their own (loopback unless metrics.host says otherwise).
    const metricsAt = config.metrics.enabled
      ? await serveMetrics(metrics, config, baseDir, env, log, stops)
      : undefined;

    const info: StackInfo = {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      databaseUrl: { embedded: !!pg, port: pg ? Number(new URL(databaseUrl).port) : undefined },
      temporal: {
        address,
        namespace: config.temporal.namespace,
        embedded: !!temporal,
        ...(temporal ? { engine: config.temporal.embedded } : {}),
        uiUrl: temporal?.uiUrl,
      },
      taskQueue: config.temporal.taskQueue,
      http: { host: config.http.host, port: httpPort },
      ...(metricsAt ? { metrics: metricsAt } : {}),
    };
    const stackFile = path.join(home, STACK_FILE);
    await writeFile(stackFile, JSON.stringify(info, null, 2));
    stops.push(() => rm(stackFile, { force: true }));
    // Stop order: HTTP, worker (drains activities), Temporal, pool, PostgreSQL.
    return { info, pool, databaseUrl, http, client, deps: composition.deps, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** The metrics listener: GET /metrics, with the bearer token when metrics.token is set. */
async function serveMetrics(
  metrics: CtemMetrics,
  config: Config,
  baseDir: string,
  env: NodeJS.ProcessEnv,
  log: Logger,
  stops: (() => Promise<void>)[],
): Promise<{ host: string; port: number }> {
  const token = config.metrics.token ? resolveSecret(config.metrics.token, env, baseDir) : undefined;
  const server = new HttpServer(log.child({ part: 'metrics' }));
  server.route('GET', '/metrics', async (req, res) => {
    if (token !== undefined && !sameSecret(req.headers.authorization ?? '', `Bearer ${token}`)) {
      sendJson(res, 401, { error: 'a bearer token is required (metrics.token)' });
      return;
    }
    const body = await metrics.registry.metrics();
    res.writeHead(200, { 'content-type': metrics.registry.contentType });
    res.end(body);
  });
  const port = await server.listen(config.metrics.port, config.metrics.host, {
    what: 'The metrics listener',
    settings: 'metrics.port in ctem.yaml or CTEM_METRICS_PORT (0 for any free port)',
  });
  stops.push(() => server.close());
  return { host: config.metrics.host, port };
}

function sameSecret(a: string, b: string): boolean {
  const [x, y] = [createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest()];
  return timingSafeEqual(x, y);
}
