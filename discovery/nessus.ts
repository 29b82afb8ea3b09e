// The Nessus / Tenable REST connector: launch a configured scan against alternative targets, poll it,
// export its run as a .nessus file, and feed that file to the ordinary ingest path.
//
//   POST /scans/{id}/launch {alt_targets}          → {scan_uuid}
//   GET  /scans/{id}                               → {info, history[{history_id, uuid, status}]}
//   POST /scans/{id}/export?history_id=H {format}  → {file}
//   GET  /scans/{id}/export/{file}/status          → {status: loading | ready}
//   GET  /scans/{id}/export/{file}/download        → the .nessus XML
//
// Authentication is the X-ApiKeys header. 429 and 5xx are retried with backoff (Retry-After honoured);
// 401/403 and 404 are configuration errors, not worth retrying.
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { durationMs, type Scope } from '../domain/config.ts';
import { resolveSecret } from '../runtime/config.ts';
import type { RescanRequest, RescanTicket, ScanConnector } from '../domain/ports.ts';
import type { IngestSummary } from '../ingest/ingest.ts';
import {
  ConnectorConfigError,
  integrationSection,
  nessusSchema,
  scopeScanSettings,
  scopeTargets,
  type NessusSettings,
} from './config.ts';
import { heartbeat } from './heartbeat.ts';
import { reportedHosts } from './reportHosts.ts';
import { assetsReportedAs } from './targets.ts';
import { ingestOutput, rescanThrough, type ConnectorContext, type ScopeScanner } from './ingestRun.ts';

/** Nessus answered in a way retrying cannot fix (credentials, a missing scan, a failed run). */
export class NessusError extends Error {
  constructor(
    message: string,
    readonly retryable = false,
  ) {
    super(message);
    this.name = 'NessusError';
  }
}

interface HistoryEntry {
  history_id: number;
  uuid: string;
  status: string;
}

const FAILED_RUN = new Set(['canceled', 'cancelled', 'aborted', 'stopped', 'empty']);
const MAX_ATTEMPTS = 5;

export class NessusClient {
  private readonly base: URL;
  private readonly agent: http.Agent | https.Agent;

  constructor(
    private readonly settings: NessusSettings,
    private readonly keys: { accessKey: string; secretKey: string },
    caFile?: string,
  ) {
    this.base = new URL(settings.url.endsWith('/') ? settings.url : `${settings.url}/`);
    this.agent =
      this.base.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, ca: caFile ? readFileSync(caFile) : undefined })
        : new http.Agent({ keepAlive: true });
  }

  close(): void {
    this.agent.destroy();
  }

  /** Launch the scan on these targets; returns the run's uuid. */
  async launch(scanId: number, targets: string[]): Promise<string> {
    const r = await this.json<{ scan_uuid?: string }>('POST', `scans/${scanId}/launch`, {
      alt_targets: targets,
    });
    if (!r.scan_uuid)
      throw new NessusError(`Nessus did not return a scan_uuid when launching scan ${scanId}`);
    return r.scan_uuid;
  }

  /** Poll until the run finishes; returns its history id. */
  async waitForRun(scanId: number, uuid: string, signal?: AbortSignal): Promise<number> {
    const deadline = Date.now() + durationMs(this.settings.timeout);
    for (;;) {
      const r = await this.json<{ info?: { status?: string }; history?: HistoryEntry[] }>(
        'GET',
        `scans/${scanId}`,
      );
      const run = r.history?.find((h) => h.uuid === uuid);
      const status = run?.status ?? 'pending';
      heartbeat({ nessusScan: scanId, status });
      if (run && status === 'completed') return run.history_id;
      if (FAILED_RUN.has(status))
        throw new NessusError(`Nessus scan ${scanId} run ${uuid} ended as "${status}"; no report to import`);
      if (Date.now() > deadline)
        throw new NessusError(
          `Nessus scan ${scanId} run ${uuid} did not finish within ${this.settings.timeout} (still "${status}")`,
          true,
        );
      await sleep(durationMs(this.settings.pollInterval), undefined, { signal });
    }
  }

  /** Export one run as .nessus and download it to `file`. */
  async exportRun(scanId: number, historyId: number, file: string, signal?: AbortSignal): Promise<void> {
    const r = await this.json<{ file?: number | string }>(
      'POST',
      `scans/${scanId}/export?history_id=${historyId}`,
      { format: 'nessus' },
    );
    if (r.file === undefined)
      throw new NessusError(`Nessus did not return an export file id for scan ${scanId}`);
    const deadline = Date.now() + durationMs(this.settings.timeout);
    for (;;) {
      const s = await this.json<{ status?: string }>('GET', `scans/${scanId}/export/${r.file}/status`);
      heartbeat({ nessusExport: r.file, status: s.status });
      if (s.status === 'ready') break;
      if (s.status === 'error')
        throw new NessusError(`Nessus failed to export scan ${scanId} (file ${r.file})`);
      if (Date.now() > deadline)
        throw new NessusError(`the Nessus export of scan ${scanId} was not ready in time`, true);
      await sleep(Math.min(durationMs(this.settings.pollInterval), 5_000), undefined, { signal });
    }
    const res = await this.send('GET', `scans/${scanId}/export/${r.file}/download`);
    await pipeline(res, createWriteStream(file));
  }

  private async json<T>(method: string, route: string, body?: unknown): Promise<T> {
    const res = await this.send(method, route, body);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new NessusError(
        `Nessus answered ${method} /${route} with something that is not JSON: ${text.slice(0, 200)}`,
      );
    }
  }

  /** One request with retries; resolves to a 2xx response whose body is not yet read. */
  private async send(method: string, route: string, body?: unknown): Promise<http.IncomingMessage> {
    const url = new URL(route, this.base);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    for (let attempt = 1; ; attempt++) {
      let res: http.IncomingMessage;
      try {
        res = await this.request(method, url, payload);
      } catch (err) {
        if (attempt >= MAX_ATTEMPTS)
          throw new NessusError(
            `Nessus at ${this.base.origin} is unreachable: ${(err as Error).message}`,
            true,
          );
        await sleep(backoffMs(attempt));
        continue;
      }
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) return res;
      const text = await readText(res);
      if (status === 401 || status === 403)
        throw new NessusError(
          `Nessus refused the API keys (${status} on ${method} /${route}); check integrations.nessus.accessKey and secretKey`,
        );
      if (status === 404)
        throw new NessusError(
          `Nessus has no ${url.pathname} (404); check the scan id (integrations.nessus.scanId or scopes[].scan.scanId)`,
        );
      if ((status === 429 || status >= 500) && attempt < MAX_ATTEMPTS) {
        const retryAfter = Number(res.headers['retry-after']);
        await sleep(
          Number.isFinite(retryAfter) && retryAfter >= 0
            ? Math.min(retryAfter * 1000, 60_000)
            : backoffMs(attempt),
        );
        continue;
      }
      throw new NessusError(
        `Nessus answered ${status} to ${method} /${route}: ${text.slice(0, 200)}`,
        status >= 500 || status === 429,
      );
    }
  }

  private request(method: string, url: URL, payload?: Buffer): Promise<http.IncomingMessage> {
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(
        url,
        {
          method,
          agent: this.agent,
          timeout: durationMs(this.settings.requestTimeout),
          headers: {
            'X-ApiKeys': `accessKey=${this.keys.accessKey}; secretKey=${this.keys.secretKey}`,
            Accept: 'application/json',
            ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}),
          },
        },
        resolve,
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.settings.requestTimeout}`)));
      req.on('error', reject);
      req.end(payload);
    });
  }
}

function backoffMs(attempt: number): number {
  return Math.min(1000 * 2 ** (attempt - 1), 30_000);
}

async function readText(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Launch, wait, export and download one run; the .nessus file lands in a fresh temp folder. */
export async function runNessusScan(
  client: NessusClient,
  scanId: number,
  targets: string[],
  signal?: AbortSignal,
): Promise<{ file: string; dir: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ctem-nessus-'));
  try {
    const uuid = await client.launch(scanId, targets);
    const historyId = await client.waitForRun(scanId, uuid, signal);
    const file = path.join(dir, `scan-${scanId}-${historyId}.nessus`);
    await client.exportRun(scanId, historyId, file, signal);
    return { file, dir };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

export function createNessusConnector(ctx: ConnectorContext): ScanConnector & ScopeScanner {
  const open = (): { client: NessusClient; settings: NessusSettings } => {
    const settings = integrationSection(ctx.config, 'nessus', nessusSchema);
    const env = process.env;
    const client = new NessusClient(
      settings,
      {
        accessKey: resolveSecret(settings.accessKey, env, ctx.deps.baseDir),
        secretKey: resolveSecret(settings.secretKey, env, ctx.deps.baseDir),
      },
      settings.caFile ? path.resolve(ctx.deps.baseDir, settings.caFile) : undefined,
    );
    return { client, settings };
  };
  const scanIdFor = (settings: NessusSettings, scope: Scope | undefined): number => {
    const fromScope = scope ? scopeScanSettings(ctx.config, scope)?.scanId : undefined;
    const id = fromScope ?? settings.scanId;
    if (id === undefined)
      throw new ConnectorConfigError(
        `ctem.yaml integrations.nessus.scanId: missing; name the Nessus scan to launch (or set scopes[].scan.scanId)`,
      );
    return id;
  };
  return {
    name: 'nessus',
    rescan: async (req: RescanRequest): Promise<RescanTicket> =>
      await rescanThrough(ctx, 'nessus', req, async (targets) => {
        const { client, settings } = open();
        try {
          const scope = ctx.config.scopes.find((s) => s.name === req.scope);
          const run = await runNessusScan(
            client,
            scanIdFor(settings, scope),
            targets.map((t) => t.target),
          );
          // Every host Nessus reached is a ReportHost, even with nothing but informational items.
          const reached = await reportedHosts(run.file, 'nessus');
          const coveredAssetIds = await assetsReportedAs(ctx.deps.pool, reached, {
            among: targets.map((t) => t.assetId),
          });
          return { file: run.file, format: 'nessus', dir: run.dir, coveredAssetIds };
        } finally {
          client.close();
        }
      }),
    scanScope: async (scope: Scope): Promise<IngestSummary> => {
      const { client, settings } = open();
      try {
        const targets = scopeTargets(scope, scopeScanSettings(ctx.config, scope));
        if (targets.length === 0)
          throw new ConnectorConfigError(
            `ctem.yaml scopes[${ctx.config.scopes.indexOf(scope)}]: scope ${scope.name} has no CIDR, literal host name or scan.targets to scan`,
          );
        const run = await runNessusScan(client, scanIdFor(settings, scope), targets);
        const reached = await reportedHosts(run.file, 'nessus');
        const coveredAssetIds = await assetsReportedAs(ctx.deps.pool, reached, { scope: scope.name });
        return await ingestOutput(
          ctx,
          { file: run.file, format: 'nessus', dir: run.dir, coveredAssetIds },
          { cycleScope: scope.name },
        );
      } finally {
        client.close();
      }
    },
  };
}
