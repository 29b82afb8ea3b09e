// PatchExecutor through Red Hat Satellite (Foreman + Katello REST API v2): find the host, find the
// errata applicable to it for the exposures' CVEs (or the advisories the scanner named), then start
// a remote-execution job with Katello's "install errata by search query" feature, poll it to the
// end, and keep its output. The plan names the exact errata; apply installs those and no other.
//
// Idempotent: each job carries a tag derived from the unit and host in its description; apply looks
// for a job with that tag before creating one, so a retried activity follows the job it started.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { PatchExecutor, PatchPlan, PatchResult, PatchTarget } from '../../domain/ports.ts';
import { resolveSecret } from '../../runtime/config.ts';
import { durationMs } from '../../domain/config.ts';
import { parseCveId, parseErratumId, parseHostName, PatchInputError } from '../../domain/packages.ts';
import type { SatelliteIntegration } from '../config.ts';

/** The remote-execution template input that holds the errata search query. */
export const errataSearchInput = 'Errata search query';

export class SatelliteApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'SatelliteApiError';
  }
  /** 4xx other than 408/429 will not change by retrying. */
  get permanent(): boolean {
    return this.status >= 400 && this.status < 500 && this.status !== 408 && this.status !== 429;
  }
}

interface ForemanIndex<T> {
  total: number;
  subtotal: number;
  page: number | string;
  per_page: number | string;
  results: T[];
}

interface ForemanHost {
  id: number;
  name: string;
}

interface KatelloErratum {
  id: number;
  errata_id: string;
  title?: string;
  type?: string;
  severity?: string;
  reboot_suggested?: boolean;
  cves?: { cve_id: string }[];
  packages?: string[];
}

export interface JobInvocation {
  id: number;
  description?: string;
  status_label: string;
  succeeded?: number;
  failed?: number;
  pending?: number;
  total?: number;
  targeting?: { search_query?: string; hosts?: { id: number; name: string }[] };
}

interface HostOutput {
  complete: boolean;
  refresh: boolean;
  output: { output: string; output_type?: string; timestamp?: number }[];
}

export interface SatelliteOptions {
  baseDir: string;
  env?: NodeJS.ProcessEnv;
  /** Called while a job is polled (an activity heartbeat). */
  onProgress?: (detail: { jobId: number; status: string }) => void;
  /** Waits between polls; tests may shorten it. */
  sleep?: (ms: number) => Promise<void>;
}

/** The JSON REST client: Basic auth (password or personal access token), optional CA, 429 back-off. */
class SatelliteApi {
  private readonly base: URL;
  private readonly authorization: string;
  private readonly agent: http.Agent;
  private readonly timeoutMs: number;

  constructor(
    settings: SatelliteIntegration,
    baseDir: string,
    env: NodeJS.ProcessEnv,
    private readonly sleep: (ms: number) => Promise<void>,
  ) {
    this.base = new URL(settings.url.endsWith('/') ? settings.url : `${settings.url}/`);
    const secret = resolveSecret(settings.password, env, baseDir);
    this.authorization = `Basic ${Buffer.from(`${settings.username}:${secret}`).toString('base64')}`;
    const ca = settings.caFile ? readFileSync(path.resolve(baseDir, settings.caFile)) : undefined;
    this.agent =
      this.base.protocol === 'https:'
        ? new https.Agent({ ca, keepAlive: true })
        : new http.Agent({ keepAlive: true });
    this.timeoutMs = durationMs(settings.requestTimeout);
  }

  async get<T>(
    pathname: string,
    query: Record<string, string | number | boolean | undefined> = {},
  ): Promise<T> {
    const url = new URL(pathname.replace(/^\//, ''), this.base);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
    return await this.request<T>('GET', url);
  }

  async post<T>(pathname: string, body: unknown): Promise<T> {
    return await this.request<T>('POST', new URL(pathname.replace(/^\//, ''), this.base), body);
  }

  private async request<T>(method: string, url: URL, body?: unknown): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const res = await this.once(method, url, body);
      if ((res.status === 429 || res.status === 503) && attempt < 5) {
        const retryAfter = Number(res.headers['retry-after']);
        await this.sleep(
          Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter, 60) * 1000 : 1000 * attempt,
        );
        continue;
      }
      let parsed: unknown;
      try {
        parsed = res.text ? JSON.parse(res.text) : {};
      } catch {
        throw new SatelliteApiError(
          `${method} ${url.pathname} answered ${res.status} with a body that is not JSON`,
          res.status,
        );
      }
      if (res.status >= 200 && res.status < 300) return parsed as T;
      const message =
        (parsed as { error?: { message?: string; full_messages?: string[] } }).error?.full_messages?.join(
          '; ',
        ) ??
        (parsed as { error?: { message?: string } }).error?.message ??
        (parsed as { displayMessage?: string }).displayMessage ??
        res.text.slice(0, 200);
      const hint = res.status === 401 ? ' (check integrations.satellite.username and password)' : '';
      throw new SatelliteApiError(
        `Satellite ${method} ${url.pathname} answered ${res.status}: ${message}${hint}`,
        res.status,
      );
    }
  }

  private async once(
    method: string,
    url: URL,
    body: unknown,
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const lib = url.protocol === 'https:' ? https : http;
    return await new Promise((resolve, reject) => {
      const req = lib.request(
        url,
        {
          method,
          agent: this.agent,
          timeout: this.timeoutMs,
          headers: {
            accept: 'application/json',
            authorization: this.authorization,
            ...(payload
              ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
              : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              text: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () =>
        req.destroy(new Error(`Satellite ${method} ${url.pathname} timed out after ${this.timeoutMs} ms`)),
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Every page of an index. */
  async all<T>(pathname: string, query: Record<string, string | number | boolean | undefined>): Promise<T[]> {
    const out: T[] = [];
    for (let page = 1; ; page++) {
      const r = await this.get<ForemanIndex<T>>(pathname, { ...query, page, per_page: 100 });
      out.push(...r.results);
      if (r.results.length === 0 || out.length >= Number(r.subtotal ?? r.total)) return out;
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

function validateTarget(
  target: PatchTarget,
  index: number,
): { host: string; cves: string[]; errata: string[] } {
  const host = parseHostName(target.host, `targets[${index}].host`);
  const cves = target.cves.map((c, j) => parseCveId(c, `targets[${index}].cves[${j}]`));
  const errata = (target.advisories ?? []).map((a, j) =>
    parseErratumId(a, `targets[${index}].advisories[${j}]`),
  );
  if (cves.length === 0 && errata.length === 0)
    throw new PatchInputError(
      `targets[${index}]`,
      'names neither CVEs nor errata; Satellite installs errata only',
    );
  return { host, cves, errata };
}

/** Katello scoped-search for a set of errata ids (validated: only inert characters). */
export function errataSearchQuery(errataIds: string[]): string {
  return `errata_id ^ (${errataIds.join(', ')})`;
}

/** The tag that finds a job again after a retry: derived from unit and host, search-safe. */
export function jobTag(rolloutId: string, host: string): string {
  return `ctem-${createHash('sha256').update(`${rolloutId}\n${host}`).digest('hex').slice(0, 20)}`;
}

export class SatellitePatchExecutor implements PatchExecutor {
  readonly name = 'satellite';
  private readonly sleep: (ms: number) => Promise<void>;

  /** Satellite applies Red Hat errata: RHSA (security), RHBA (bug fix), RHEA (enhancement). */
  advisoriesIn(text: string): string[] {
    return text.match(/\bRH[SBE]A-\d{4}:\d{4,5}\b/g) ?? [];
  }

  constructor(
    private readonly settings: SatelliteIntegration,
    private readonly options: SatelliteOptions,
  ) {
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  private api(): SatelliteApi {
    return new SatelliteApi(this.settings, this.options.baseDir, this.options.env ?? process.env, this.sleep);
  }

  private async findHost(api: SatelliteApi, host: string): Promise<ForemanHost | undefined> {
    const hits = await api.get<ForemanIndex<ForemanHost>>('/api/v2/hosts', {
      search: `name = ${host}`,
      organization_id: this.settings.organizationId,
      per_page: 2,
    });
    return hits.results.find((h) => h.name.toLowerCase() === host.toLowerCase()) ?? hits.results[0];
  }

  /** Errata applicable to the host, for the CVEs or among the named errata, and which are installable. */
  private async hostErrata(
    api: SatelliteApi,
    hostId: number,
    cves: string[],
    errata: string[],
  ): Promise<{ applicable: KatelloErratum[]; installable: Set<string> }> {
    const byId = new Map<string, KatelloErratum>();
    const installable = new Set<string>();
    const queries: Record<string, string | undefined>[] = errata.length
      ? [{ search: errataSearchQuery(errata) }]
      : cves.map((cve) => ({ cve }));
    for (const q of queries) {
      for (const e of await api.all<KatelloErratum>('/katello/api/v2/errata', {
        ...q,
        host_id: hostId,
        errata_restrict_applicable: true,
      }))
        byId.set(e.errata_id, e);
      for (const e of await api.all<KatelloErratum>('/katello/api/v2/errata', {
        ...q,
        host_id: hostId,
        errata_restrict_installable: true,
      }))
        installable.add(e.errata_id);
    }
    // Ids come back from the server: validate before they go into a search query.
    const applicable = [...byId.values()].filter((e) => {
      parseErratumId(e.errata_id, 'Satellite errata_id');
      return true;
    });
    return { applicable, installable };
  }

  async plan(rolloutId: string, targets: PatchTarget[]): Promise<PatchPlan> {
    const checked = targets.map(validateTarget);
    const api = this.api();
    const steps: PatchPlan['steps'] = [];
    const problems: NonNullable<PatchPlan['problems']> = [];
    const lines: string[] = [
      `Patch plan for ${rolloutId} through Red Hat Satellite ${this.settings.url}, ${targets.length} host(s):`,
    ];
    const planned: PatchTarget[] = [];
    try {
      for (const [i, t] of checked.entries()) {
        const host = await this.findHost(api, t.host);
        if (!host) {
          problems.push({ host: t.host, message: `Satellite knows no host named ${t.host}` });
          lines.push(`${t.host}: not registered in Satellite`);
          planned.push({ ...targets[i]!, advisories: [] });
          continue;
        }
        const { applicable, installable } = await this.hostErrata(api, host.id, t.cves, t.errata);
        const ready = applicable.filter((e) => installable.has(e.errata_id));
        const blocked = applicable.filter((e) => !installable.has(e.errata_id));
        lines.push(`${t.host} (Satellite host ${host.id}, ${host.name}):`);
        for (const e of applicable)
          lines.push(
            `  ${e.errata_id} ${e.severity ?? ''} ${e.title ?? ''} [${(e.cves ?? []).map((c) => c.cve_id).join(', ')}]` +
              `${e.reboot_suggested ? ' (reboot suggested)' : ''}${installable.has(e.errata_id) ? '' : ' — NOT installable from its content view'}`,
          );
        const covered = new Set(applicable.flatMap((e) => (e.cves ?? []).map((c) => c.cve_id)));
        const uncovered = t.cves.filter((c) => !covered.has(c));
        if (applicable.length === 0)
          problems.push({
            host: t.host,
            message: `no applicable errata for ${[...t.errata, ...t.cves].join(', ')}: nothing Satellite can install`,
          });
        else if (uncovered.length && t.errata.length === 0)
          lines.push(`  no applicable erratum mentions ${uncovered.join(', ')}`);
        for (const e of blocked)
          problems.push({
            host: t.host,
            message: `${e.errata_id} applies but is not installable: publish and promote a content view version that contains it`,
          });
        const ids = ready.map((e) => e.errata_id);
        planned.push({ ...targets[i]!, host: t.host, advisories: ids });
        if (ids.length)
          steps.push({
            host: t.host,
            description: `run remote-execution job "${this.settings.feature}" on ${host.name} with ${errataSearchInput}: ${errataSearchQuery(ids)}`,
          });
      }
    } finally {
      api.close();
    }
    if (problems.length)
      lines.push(
        'Problems (apply would not reach the fix):',
        ...problems.map((p) => `  ${p.host}: ${p.message}`),
      );
    return { executor: this.name, rolloutId, targets: planned, summary: lines.join('\n'), steps, problems };
  }

  async apply(plan: PatchPlan): Promise<PatchResult> {
    plan.targets.forEach(validateTarget);
    const api = this.api();
    const hosts: PatchResult['hosts'] = [];
    try {
      for (const [i, target] of plan.targets.entries()) {
        const outcome = await this.applyHost(api, plan.rolloutId, target, i);
        hosts.push(outcome);
        if (!outcome.ok) break;
      }
    } finally {
      api.close();
    }
    return {
      ok: hosts.length === plan.targets.length && hosts.every((h) => h.ok),
      hosts,
      finishedAt: new Date().toISOString(),
    };
  }

  private async applyHost(
    api: SatelliteApi,
    rolloutId: string,
    target: PatchTarget,
    index: number,
  ): Promise<PatchResult['hosts'][number]> {
    const host = parseHostName(target.host, `targets[${index}].host`);
    const approved = (target.advisories ?? []).map((a, j) =>
      parseErratumId(a, `targets[${index}].advisories[${j}]`),
    );
    if (approved.length === 0)
      return { host, ok: false, output: 'the approved plan lists no installable errata for this host' };
    const found = await this.findHost(api, host);
    if (!found) return { host, ok: false, output: `Satellite knows no host named ${host}` };
    const tag = jobTag(rolloutId, host);
    let job = (
      await api.get<ForemanIndex<JobInvocation>>('/api/v2/job_invocations', {
        search: `description ~ "${tag}"`,
        per_page: 1,
      })
    ).results[0];
    const details = await api.all<KatelloErratum>('/katello/api/v2/errata', {
      search: errataSearchQuery(approved),
    });
    const rebootSuggested = details.some((e) => approved.includes(e.errata_id) && e.reboot_suggested);
    if (!job) {
      // Only errata still applicable: a retry after a partial install, or a manual fix, narrows the job.
      const { applicable } = await this.hostErrata(api, found.id, [], approved);
      const ids = applicable.map((e) => e.errata_id).filter((id) => approved.includes(id));
      if (ids.length === 0)
        return {
          host,
          ok: true,
          output: `none of ${approved.join(', ')} is applicable any more: nothing to install`,
        };
      job = await api.post<JobInvocation>('/api/v2/job_invocations', {
        job_invocation: {
          feature: this.settings.feature,
          inputs: { [errataSearchInput]: errataSearchQuery(ids) },
          targeting_type: 'static_query',
          search_query: `name = ${found.name}`,
          description_format: `Install errata ${ids.join(', ')} (${tag})`,
        },
      });
    }
    const finished = await this.poll(api, job.id);
    const out = await api.get<HostOutput>(`/api/v2/job_invocations/${finished.id}/hosts/${found.id}`);
    const output = [
      `job ${finished.id} on ${found.name}: ${finished.status_label}`,
      ...out.output
        .map((o) => o.output)
        .join('')
        .split('\n'),
    ].join('\n');
    return {
      host,
      ok: finished.status_label === 'succeeded',
      output,
      jobId: String(finished.id),
      rebootRequired: rebootSuggested || /reboot (is )?(required|needed)/i.test(output) || undefined,
    };
  }

  private async poll(api: SatelliteApi, jobId: number): Promise<JobInvocation> {
    const deadline = Date.now() + durationMs(this.settings.jobTimeout);
    const interval = durationMs(this.settings.pollInterval);
    for (;;) {
      const job = await api.get<JobInvocation>(`/api/v2/job_invocations/${jobId}`);
      this.options.onProgress?.({ jobId, status: job.status_label });
      if (['succeeded', 'failed', 'cancelled'].includes(job.status_label)) return job;
      if (Date.now() > deadline)
        throw new SatelliteApiError(
          `Satellite job ${jobId} is still ${job.status_label} after ${this.settings.jobTimeout}`,
          408,
        );
      await this.sleep(interval);
    }
  }
}
