// A local Red Hat Satellite for tests: an HTTP server on 127.0.0.1 speaking the Foreman/Katello API v2
// endpoints the patch executor uses, with their JSON shapes (Foreman index envelopes, Katello's
// errata rabl, foreman_remote_execution's job invocation rabl and host output), Basic auth (a
// password or a personal access token), Katello's and Foreman's error bodies, paging and 429s.
//
//   GET  /api/v2/hosts?search=name = web-01.example.com
//   GET  /katello/api/v2/errata?host_id=…&cve=…|search=errata_id ^ (…)&errata_restrict_applicable|installable=true
//   POST /api/v2/job_invocations            {job_invocation: {feature, inputs, targeting_type, search_query, description_format}}
//   GET  /api/v2/job_invocations?search=description ~ "…"
//   GET  /api/v2/job_invocations/:id        (advances the job: queued → running → succeeded/failed)
//   GET  /api/v2/job_invocations/:id/hosts/:host_id
//
// A job that succeeds installs its errata on the host: they stop being applicable, as in Katello.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeErratum {
  id: number;
  errata_id: string;
  title: string;
  type: 'security' | 'bugfix' | 'enhancement';
  severity: 'Critical' | 'Important' | 'Moderate' | 'Low' | 'None';
  issued: string;
  reboot_suggested: boolean;
  cves: string[];
  packages: string[];
  /** Host ids it applies to (an installed package is older than the erratum's). */
  applicableTo: number[];
  /** Host ids whose content view carries it. */
  installableOn: number[];
}

export interface FakeSatelliteOptions {
  username: string;
  /** Password or personal access token. */
  password: string;
  hosts: { id: number; name: string; organizationId?: number }[];
  errata: FakeErratum[];
  /** How a job ends for a host name (default succeeded). */
  jobOutcome?: (hostName: string) => 'succeeded' | 'failed';
  /** Polls of a job before it finishes (default 2: queued, running, done). */
  pollsUntilDone?: number;
  /** The first N errata requests answer 429 with Retry-After: 1. */
  rateLimitFirst?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body?: unknown;
}

interface Job {
  id: number;
  description: string;
  hostId: number;
  hostName: string;
  errataIds: string[];
  searchQuery: string;
  inputs: Record<string, string>;
  polls: number;
  status: 'queued' | 'running' | 'succeeded' | 'failed';
}

export interface FakeSatellite {
  url: string;
  requests: RecordedRequest[];
  jobs: Job[];
  /** Errata installed by jobs, per host id. */
  installed: Map<number, Set<string>>;
  close(): Promise<void>;
}

export async function startFakeSatellite(opts: FakeSatelliteOptions): Promise<FakeSatellite> {
  const requests: RecordedRequest[] = [];
  const jobs: Job[] = [];
  const installed = new Map<number, Set<string>>();
  let throttled = 0;
  const expected = `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`;

  const send = (
    res: http.ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    res.end(JSON.stringify(body));
  };
  const foremanIndex = (results: unknown[], total: number, q: Record<string, string>) => {
    const perPage = Number(q.per_page ?? 20);
    const page = Number(q.page ?? 1);
    return {
      total,
      subtotal: results.length,
      page,
      per_page: perPage,
      search: q.search ?? null,
      sort: { by: null, order: null },
      results: results.slice((page - 1) * perPage, page * perPage),
    };
  };
  const hostJson = (h: { id: number; name: string; organizationId?: number }) => ({
    id: h.id,
    name: h.name,
    ip: `192.0.2.${h.id}`,
    operatingsystem_name: 'RedHat 9.3',
    organization_id: h.organizationId ?? 1,
    organization_name: 'Default Organization',
    location_name: 'Default Location',
    global_status_label: 'Warning',
    content_facet_attributes: { errata_counts: { security: 1, bugfix: 0, enhancement: 0, total: 1 } },
  });
  const erratumJson = (e: FakeErratum) => ({
    id: e.id,
    pulp_id: `0190${e.id.toString(16).padStart(8, '0')}`,
    title: e.title,
    errata_id: e.errata_id,
    issued: e.issued,
    updated: e.issued,
    severity: e.severity,
    description: `${e.title}.`,
    solution:
      'Before applying this update, make sure all previously released errata relevant to your system have been applied.',
    summary: e.title,
    reboot_suggested: e.reboot_suggested,
    _href: `/pulp/api/v3/content/rpm/advisories/${e.id}/`,
    cves: e.cves.map((c) => ({ cve_id: c, href: `https://access.redhat.com/security/cve/${c}` })),
    bugs: [],
    name: e.title,
    type: e.type,
    hosts_available_count: e.installableOn.length,
    hosts_applicable_count: e.applicableTo.length,
    packages: e.packages,
    module_streams: [],
    deb_packages: [],
  });
  const isInstalled = (hostId: number, id: string) => installed.get(hostId)?.has(id) ?? false;
  const parseIn = (search: string, field: string): string[] | undefined => {
    const m = new RegExp(`^${field} \\^ \\(([^()]*)\\)$`).exec(search.trim());
    return m ? m[1]!.split(',').map((s) => s.trim()) : undefined;
  };
  const jobJson = (j: Job) => ({
    id: j.id,
    description: j.description,
    job_category: 'Katello',
    targeting_id: j.id,
    status: { queued: 2, running: 3, succeeded: 0, failed: 1 }[j.status],
    start_at: '2024-06-04T10:00:00.000Z',
    status_label: j.status,
    ssh_user: null,
    time_to_pickup: null,
    template_id: 142,
    template_name: 'Install errata by search query - Katello Script Default',
    effective_user: 'root',
    succeeded: j.status === 'succeeded' ? 1 : 0,
    failed: j.status === 'failed' ? 1 : 0,
    pending: j.status === 'queued' || j.status === 'running' ? 1 : 0,
    cancelled: 0,
    total: 1,
    missing: 0,
    total_hosts: 1,
    dynflow_task: {
      id: `5f6e1b2a-0000-4000-8000-${String(j.id).padStart(12, '0')}`,
      state: j.status === 'queued' ? 'planned' : j.status === 'running' ? 'running' : 'stopped',
    },
    mode: 'immediate',
    targeting: {
      bookmark_id: null,
      search_query: j.searchQuery,
      targeting_type: 'static_query',
      user_id: 4,
      status: 0,
      status_label: 'planned',
      randomized_ordering: false,
      hosts: [{ id: j.hostId, name: j.hostName }],
    },
    task: { id: `5f6e1b2a-0000-4000-8000-${String(j.id).padStart(12, '0')}`, state: 'running' },
    template_invocations: [
      {
        template_id: 142,
        template_name: 'Install errata by search query - Katello Script Default',
        input_values: Object.entries(j.inputs).map(([name, value], i) => ({
          template_input_name: name,
          template_input_id: 300 + i,
          value,
        })),
      },
    ],
  });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const query = Object.fromEntries(url.searchParams.entries());
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      if (text) {
        try {
          body = JSON.parse(text);
        } catch {
          return send(res, 400, { error: { message: 'Invalid JSON body' } });
        }
      }
      requests.push({
        method: req.method ?? 'GET',
        path: url.pathname,
        query,
        ...(body !== undefined ? { body } : {}),
      });
      if (req.headers.authorization !== expected)
        return send(res, 401, { error: { message: `Unable to authenticate user ${opts.username}` } });

      const p = url.pathname;
      if (req.method === 'GET' && p === '/api/v2/hosts') {
        const m = /^name = "?([^"]+)"?$/.exec(query.search ?? '');
        const found = opts.hosts.filter(
          (h) =>
            (!m || h.name === m[1]) &&
            (!query.organization_id || String(h.organizationId ?? 1) === query.organization_id),
        );
        return send(res, 200, foremanIndex(found.map(hostJson), opts.hosts.length, query));
      }
      if (req.method === 'GET' && p === '/katello/api/v2/errata') {
        if (throttled < (opts.rateLimitFirst ?? 0)) {
          throttled++;
          return send(
            res,
            429,
            { displayMessage: 'Too many requests', errors: ['Too many requests'] },
            { 'retry-after': '1' },
          );
        }
        const hostId = query.host_id ? Number(query.host_id) : undefined;
        if (hostId !== undefined && !opts.hosts.some((h) => h.id === hostId))
          return send(res, 404, {
            displayMessage: `Could not find a host with id ${hostId}`,
            errors: [`Could not find a host with id ${hostId}`],
          });
        let list = opts.errata;
        if (query.cve) list = list.filter((e) => e.cves.includes(query.cve!));
        if (query.search) {
          const ids = parseIn(query.search, 'errata_id');
          if (!ids)
            return send(res, 422, {
              displayMessage: `Invalid search query: ${query.search}`,
              errors: [`Invalid search query: ${query.search}`],
            });
          list = list.filter((e) => ids.includes(e.errata_id));
        }
        if (hostId !== undefined && query.errata_restrict_installable === 'true')
          list = list.filter(
            (e) =>
              e.installableOn.includes(hostId) &&
              e.applicableTo.includes(hostId) &&
              !isInstalled(hostId, e.errata_id),
          );
        else if (hostId !== undefined)
          // Katello restricts to applicable errata whenever host_id is given.
          list = list.filter((e) => e.applicableTo.includes(hostId) && !isInstalled(hostId, e.errata_id));
        const r = foremanIndex(list.map(erratumJson), opts.errata.length, query);
        return send(res, 200, {
          ...r,
          selectable: r.subtotal,
          error: null,
          sort: { by: 'updated', order: 'desc' },
        });
      }
      if (req.method === 'POST' && p === '/api/v2/job_invocations') {
        const ji = (body as { job_invocation?: Record<string, unknown> } | undefined)?.job_invocation;
        if (!ji) return send(res, 422, { error: { message: 'job_invocation is missing' } });
        if (ji.feature && ji.job_template_id)
          return send(res, 422, {
            error: { message: 'Only one of feature or job_template_id can be specified' },
          });
        if (ji.feature !== 'katello_errata_install_by_search')
          return send(res, 404, { error: { message: `Feature with label ${String(ji.feature)} not found` } });
        if (ji.targeting_type !== 'static_query' && ji.targeting_type !== 'dynamic_query')
          return send(res, 422, { error: { message: 'Targeting type is not included in the list' } });
        const hostName = /^name = (\S+)$/.exec(String(ji.search_query ?? ''))?.[1];
        const host = opts.hosts.find((h) => h.name === hostName);
        if (!host)
          return send(res, 422, {
            error: {
              message: `Could not use any template used in the job invocation: no hosts match ${String(ji.search_query)}`,
            },
          });
        const inputs = (ji.inputs ?? {}) as Record<string, string>;
        const ids = parseIn(inputs['Errata search query'] ?? '', 'errata_id');
        if (!ids)
          return send(res, 422, {
            error: { message: "Input 'Errata search query' is required and must be an errata_id search" },
          });
        const job: Job = {
          id: 1000 + jobs.length + 1,
          description: String(ji.description_format ?? 'Install errata by search query'),
          hostId: host.id,
          hostName: host.name,
          errataIds: ids,
          searchQuery: String(ji.search_query),
          inputs,
          polls: 0,
          status: 'queued',
        };
        jobs.push(job);
        return send(res, 201, jobJson(job));
      }
      if (req.method === 'GET' && p === '/api/v2/job_invocations') {
        const tag = /^description ~ "([^"]+)"$/.exec(query.search ?? '')?.[1];
        const found = jobs.filter((j) => !tag || j.description.includes(tag));
        return send(res, 200, foremanIndex(found.map(jobJson), jobs.length, query));
      }
      const show = /^\/api\/v2\/job_invocations\/(\d+)$/.exec(p);
      if (req.method === 'GET' && show) {
        const job = jobs.find((j) => j.id === Number(show[1]));
        if (!job)
          return send(res, 404, {
            error: { message: `Resource job_invocation not found by id '${show[1]}'` },
          });
        job.polls++;
        const done = opts.pollsUntilDone ?? 2;
        if (job.status === 'queued' || job.status === 'running') {
          if (job.polls >= done) {
            job.status = (opts.jobOutcome ?? (() => 'succeeded'))(job.hostName);
            if (job.status === 'succeeded') {
              const set = installed.get(job.hostId) ?? new Set<string>();
              job.errataIds.forEach((id) => set.add(id));
              installed.set(job.hostId, set);
            }
          } else if (job.polls >= 1) job.status = 'running';
        }
        return send(res, 200, jobJson(job));
      }
      const output = /^\/api\/v2\/job_invocations\/(\d+)\/hosts\/(\d+)$/.exec(p);
      if (req.method === 'GET' && output) {
        const job = jobs.find((j) => j.id === Number(output[1]));
        if (!job || job.hostId !== Number(output[2]))
          return send(res, 404, { error: { message: `Host with id '${output[2]}' was not found` } });
        const errata = opts.errata.filter((e) => job.errataIds.includes(e.errata_id));
        const lines =
          job.status === 'succeeded'
            ? [
                'Updating Subscription Management repositories.',
                'Last metadata expiration check: 0:05:12 ago on Tue Jun  4 10:00:03 2024.',
                'Dependencies resolved.',
                ...errata.flatMap((e) => e.packages.map((pkg) => `  Upgrading        : ${pkg}`)),
                'Upgraded:',
                ...errata.flatMap((e) => e.packages.map((pkg) => `  ${pkg}`)),
                'Complete!',
                'Exit status: 0',
              ]
            : job.status === 'failed'
              ? [
                  'Updating Subscription Management repositories.',
                  'Error: Transaction test error:',
                  '  file /usr/lib64/libcrypto.so.3 from install of openssl-libs conflicts with file from package compat-openssl',
                  'Exit status: 1',
                ]
              : ['Updating Subscription Management repositories.'];
        const done = job.status === 'succeeded' || job.status === 'failed';
        return send(res, 200, {
          complete: done,
          refresh: !done,
          output: lines.map((l, i) => ({
            output: `${l}\n`,
            output_type: 'stdout',
            timestamp: 1717495203 + i / 10,
          })),
        });
      }
      return send(res, 404, {
        message:
          'Route overridden by Katello, use the /katello API endpoint instead. See /apidoc for more details.',
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    jobs,
    installed,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
