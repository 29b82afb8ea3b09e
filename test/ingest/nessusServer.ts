// A local server speaking the Nessus REST endpoints the connector uses, with their real shapes:
// X-ApiKeys authentication, launch with alt_targets, scan details with history, export with
// history_id, export status and download. Runs are "running" at the first answered poll, "completed" at the next; exports
// "loading" → "ready"; the first status poll of each run answers 429 with Retry-After.
import http from 'node:http';
import { randomUUID } from 'node:crypto';

export interface LocalNessus {
  url: string;
  /** Every launch: scan id and the alt_targets it carried. */
  launches: { scanId: number; altTargets: string[] }[];
  /** "METHOD /path" of every request, in order. */
  requests: string[];
  /** The .nessus XML the next export serves. */
  report: string;
  close(): Promise<void>;
}

export async function startLocalNessus(opts: {
  accessKey: string;
  secretKey: string;
  scanIds: number[];
}): Promise<LocalNessus> {
  const runs = new Map<
    number,
    { history_id: number; uuid: string; status: string; polls: number; report: string }[]
  >();
  const exports = new Map<string, { polls: number; report: string }>();
  let nextHistory = 1000;
  let nextFile = 5000;
  const state: LocalNessus = {
    url: '',
    launches: [],
    requests: [],
    report: '',
    close: async () => await new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const send = (
    res: http.ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', 'http://x');
    state.requests.push(`${req.method} ${url.pathname}`);
    if (req.headers['x-apikeys'] !== `accessKey=${opts.accessKey}; secretKey=${opts.secretKey}`)
      return send(res, 401, { error: 'Invalid Credentials' });
    const m = /^\/scans\/(\d+)(\/.*)?$/.exec(url.pathname);
    const scanId = Number(m?.[1]);
    if (!m || !opts.scanIds.includes(scanId))
      return send(res, 404, { error: 'The requested file was not found.' });
    const rest = m[2] ?? '';
    const history = runs.get(scanId) ?? [];
    runs.set(scanId, history);
    if (req.method === 'POST' && rest === '/launch') {
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as { alt_targets?: string[] };
      state.launches.push({ scanId, altTargets: body.alt_targets ?? [] });
      const uuid = randomUUID();
      history.push({ history_id: nextHistory++, uuid, status: 'running', polls: 0, report: state.report });
      return send(res, 200, { scan_uuid: uuid });
    }
    if (req.method === 'GET' && rest === '') {
      const latest = history.at(-1);
      if (latest && latest.polls++ === 0)
        return send(res, 429, { error: 'Too many requests' }, { 'Retry-After': '1' });
      for (const run of history) if (run.polls >= 3) run.status = 'completed';
      return send(res, 200, {
        info: { status: latest?.status ?? 'empty', uuid: latest?.uuid, name: `scan ${scanId}` },
        history: history.map(({ history_id, uuid, status }) => ({ history_id, uuid, status })),
      });
    }
    if (req.method === 'POST' && rest === '/export') {
      const run = history.find((h) => h.history_id === Number(url.searchParams.get('history_id')));
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as { format?: string };
      if (!run || body.format !== 'nessus') return send(res, 400, { error: 'bad export request' });
      const file = String(nextFile++);
      exports.set(file, { polls: 0, report: run.report });
      return send(res, 200, { file: Number(file), token: randomUUID() });
    }
    const e = /^\/export\/(\d+)\/(status|download)$/.exec(rest);
    const exp = e ? exports.get(e[1]!) : undefined;
    if (req.method === 'GET' && e && exp) {
      if (e[2] === 'status') return send(res, 200, { status: exp.polls++ >= 1 ? 'ready' : 'loading' });
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      return res.end(exp.report);
    }
    send(res, 404, { error: 'unknown endpoint' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return state;
}
