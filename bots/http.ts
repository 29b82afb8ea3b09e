import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

interface Route {
  method: string;
  /** Exact path, or a prefix when it ends with '/*'. */
  path: string;
  handler: Handler;
}

/**
 * The one HTTP server of a ctem process: health and readiness now; the Slack and Teams endpoints and
 * the dashboard register their routes on it.
 */
export class HttpServer {
  private readonly routes: Route[] = [];
  private readonly server: http.Server;

  constructor(private readonly log: Logger) {
    this.server = http.createServer((req, res) => {
      this.dispatch(req, res).catch((err: unknown) => {
        this.log.error({ err, url: req.url }, 'request failed');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
        else res.end();
      });
    });
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
  }

  route(method: string, path: string, handler: Handler): this {
    this.routes.push({ method: method.toUpperCase(), path, handler });
    return this;
  }

  /** Listen on host:port; with reusePort, other processes may listen there too (SO_REUSEPORT). */
  async listen(
    port: number,
    host: string,
    opts: { reusePort?: boolean; what?: string; settings?: string } = {},
  ): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(
          err.code === 'EADDRINUSE'
            ? new Error(
                opts.what
                  ? `${opts.what} cannot listen on ${host}:${port} because the port is in use; set ${opts.settings ?? 'another port'}`
                  : `the HTTP server cannot listen on ${host}:${port} because the port is in use; set http.port in ctem.yaml or CTEM_HTTP_PORT${opts.reusePort ? '' : ' (or http.reusePort: true in every ctem process meant to share it)'}`,
              )
            : err,
        );
      };
      this.server.once('error', onError);
      this.server.listen({ port, host, ...(opts.reusePort ? { reusePort: true } : {}) }, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = (req.method ?? 'GET').toUpperCase();
    const candidates = this.routes.filter((r) =>
      r.path.endsWith('/*')
        ? url.pathname.startsWith(r.path.slice(0, -1)) || url.pathname === r.path.slice(0, -2)
        : url.pathname === r.path,
    );
    const route = candidates.find((r) => r.method === method || (r.method === 'GET' && method === 'HEAD'));
    if (!route) {
      if (candidates.length > 0) {
        res.setHeader('allow', [...new Set(candidates.map((r) => r.method))].join(', '));
        sendJson(res, 405, { error: 'method not allowed' });
      } else sendJson(res, 404, { error: 'not found' });
      return;
    }
    await route.handler(req, res);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Read a request body with a size cap (bad or hostile clients cannot exhaust memory). */
export async function readBody(req: IncomingMessage, limit = 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) throw Object.assign(new Error('request body too large'), { status: 413 });
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}
