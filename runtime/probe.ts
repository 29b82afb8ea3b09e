// Cheap, harmless round trips that prove a service is there and takes our credentials (`ctem
// doctor`): one HTTP request on its own connection, a protocol greeting, a bare connect. Each
// integration's doctor check is built from these.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';

/** A failure that comes with its own advice. */
export class ProbeFailure extends Error {
  constructor(
    message: string,
    readonly advice: string,
  ) {
    super(message);
  }
}

export const trimUrl = (url: string) => url.replace(/\/+$/, '');
export const basicCredentials = (user: string, pass: string) =>
  `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

/**
 * One request on its own connection (no keep-alive pool), so a one-shot command exits as soon as it
 * is done whatever keep-alive the server offers.
 */
export async function httpJson(
  url: string,
  headers: Record<string, string>,
  method = 'GET',
): Promise<unknown> {
  const shown = `${method} ${url.replace(/\?.*$/, '')}`;
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const u = new URL(url);
    const req = (u.protocol === 'https:' ? https : http).request(
      u,
      { method, agent: false, headers: { accept: 'application/json', connection: 'close', ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= 1024 * 1024) chunks.push(c);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
  if (status < 200 || status >= 300)
    throw Object.assign(new Error(`${shown} answered ${status}`), { code: `HTTP${status}` });
  try {
    return text ? (JSON.parse(text) as unknown) : {};
  } catch {
    throw Object.assign(new Error(`${shown} did not answer JSON`), { code: 'HTTP404' });
  }
}

/** Connect, read the first line the server sends, and check it looks like the expected protocol. */
export async function greeting(host: string, port: number, expect: RegExp, useTls = false): Promise<string> {
  return await new Promise<string>((resolve, reject) => {
    const socket = useTls
      ? tls.connect({ host, port, rejectUnauthorized: false })
      : net.connect({ host, port });
    let buf = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0 || buf.length > 512) {
        socket.destroy();
        const line = buf.slice(0, nl >= 0 ? nl : 512).trim();
        if (expect.test(line)) resolve(`greeted: ${line.slice(0, 80)}`);
        else
          reject(
            new ProbeFailure(
              `${host}:${port} answered "${line.slice(0, 80)}", not the expected protocol`,
              `check the port: something else listens on ${host}:${port}`,
            ),
          );
      }
    });
    socket.on('error', reject);
    socket.on('end', () => reject(new Error(`${host}:${port} closed the connection without a greeting`)));
  });
}

export async function connectOnly(
  open: () => net.Socket,
  event: 'connect' | 'secureConnect' = 'connect',
): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const s = open();
    s.once(event, () => {
      s.destroy();
      resolve();
    });
    s.once('error', reject);
  });
}
