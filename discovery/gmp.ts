// A Greenbone Management Protocol (GMP) client: XML commands over gvmd's Unix socket or TLS, one
// command at a time, each answered by one XML element. Small answers are read into a bounded tree;
// a report is streamed to a file as it arrives (a report of a /16 is hundreds of MB).
import { once } from 'node:events';
import { createWriteStream, readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { SaxesParser, type SaxesTagPlain } from 'saxes';

/** A GMP answer element, read whole (small answers only). */
export interface GmpElement {
  name: string;
  attrs: Record<string, string>;
  children: GmpElement[];
  text: string;
}

export function gmpChild(e: GmpElement, name: string): GmpElement | undefined {
  return e.children.find((c) => c.name === name);
}

/** gvmd refused a command (its status and status_text), or the connection failed. */
export class GmpError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'GmpError';
  }
}

export type GmpEndpoint =
  { socket: string } | { host: string; port: number; ca?: string; serverName?: string };

/** Bytes of a non-report answer kept in memory at most. */
const MAX_ANSWER_CHARS = 4 * 1024 * 1024;

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

interface Handler {
  opentag(tag: SaxesTagPlain, depth: number): void;
  text(t: string, depth: number): void;
  closetag(tag: SaxesTagPlain, depth: number): void;
}

export class GmpConnection {
  private parser?: SaxesParser;
  private depth = 0;
  private handler?: Handler;
  private settle?: { resolve: () => void; reject: (err: Error) => void };
  private failure?: Error;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk.toString('utf8')));
    socket.on('error', (err) => this.fail(new GmpError(`GMP connection failed: ${err.message}`)));
    socket.on('close', () => this.fail(new GmpError('gvmd closed the GMP connection')));
  }

  static async connect(endpoint: GmpEndpoint, timeoutMs = 20_000): Promise<GmpConnection> {
    const socket =
      'socket' in endpoint
        ? net.connect({ path: endpoint.socket })
        : tls.connect({
            host: endpoint.host,
            port: endpoint.port,
            servername: endpoint.serverName ?? endpoint.host,
            ca: endpoint.ca ? readFileSync(endpoint.ca) : undefined,
          });
    const ready = 'socket' in endpoint ? 'connect' : 'secureConnect';
    const timer = setTimeout(
      () => socket.destroy(new Error(`no connection within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    try {
      await once(socket, ready);
    } catch (err) {
      const where = 'socket' in endpoint ? endpoint.socket : `${endpoint.host}:${endpoint.port}`;
      throw new GmpError(`cannot reach gvmd at ${where}: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
    return new GmpConnection(socket);
  }

  close(): void {
    this.socket.removeAllListeners('close');
    this.socket.end();
    this.socket.destroy();
  }

  /** Send one command and read its answer whole; a non-2xx status is a GmpError. */
  async command(xml: string): Promise<GmpElement> {
    const stack: GmpElement[] = [];
    let root: GmpElement | undefined;
    let chars = 0;
    await this.exchange(xml, {
      opentag: (tag) => {
        const e: GmpElement = { name: tag.name, attrs: { ...tag.attributes }, children: [], text: '' };
        stack.at(-1)?.children.push(e);
        root ??= e;
        stack.push(e);
      },
      text: (t) => {
        chars += t.length;
        if (chars > MAX_ANSWER_CHARS)
          throw new GmpError(`the answer to ${commandName(xml)} is larger than expected`);
        const top = stack.at(-1);
        if (top) top.text += t;
      },
      closetag: () => {
        stack.pop();
      },
    });
    checkStatus(xml, root!.attrs);
    return root!;
  }

  /**
   * Send one command and write the first child element named `element` of its answer to `file` as
   * XML, streamed (e.g. the <report> of a get_reports answer). Returns the answer's attributes.
   */
  async commandToFile(xml: string, element: string, file: string): Promise<Record<string, string>> {
    const out = createWriteStream(file);
    let rootAttrs: Record<string, string> = {};
    let writing = false;
    let written = false;
    const write = (s: string) => {
      if (!out.write(s)) {
        // Let the file catch up before reading more from gvmd.
        this.socket.pause();
        out.once('drain', () => this.socket.resume());
      }
    };
    try {
      await this.exchange(xml, {
        opentag: (tag, depth) => {
          if (depth === 0) rootAttrs = { ...tag.attributes };
          if (depth === 1 && tag.name === element && !written) writing = true;
          if (writing) write(openTag(tag));
        },
        text: (t) => {
          if (writing) write(escapeText(t));
        },
        closetag: (tag, depth) => {
          if (writing) write(`</${tag.name}>`);
          if (writing && depth === 1) {
            writing = false;
            written = true;
          }
        },
      });
      checkStatus(xml, rootAttrs);
      if (!written) throw new GmpError(`the answer to ${commandName(xml)} has no <${element}>`);
    } finally {
      out.end();
      await once(out, 'close').catch(() => undefined);
    }
    return rootAttrs;
  }

  private async exchange(xml: string, handler: Handler): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.handler) throw new Error('GMP commands are sent one at a time');
    const parser = new SaxesParser({ xmlns: false });
    parser.on('doctype', () => {
      throw new GmpError('gvmd answered with a DOCTYPE; refusing it');
    });
    parser.on('opentag', (tag) => {
      handler.opentag(tag, this.depth);
      this.depth++;
    });
    parser.on('text', (t) => {
      if (this.depth > 0) handler.text(t, this.depth);
    });
    parser.on('cdata', (t) => {
      if (this.depth > 0) handler.text(t, this.depth);
    });
    parser.on('closetag', (tag) => {
      this.depth--;
      handler.closetag(tag, this.depth);
      if (this.depth === 0) this.finish();
    });
    this.parser = parser;
    this.depth = 0;
    this.handler = handler;
    const done = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.socket.write(xml);
    try {
      await done;
    } finally {
      this.parser = undefined;
      this.handler = undefined;
      this.settle = undefined;
    }
  }

  private onData(text: string): void {
    const parser = this.parser;
    if (!parser) return this.fail(new GmpError('gvmd sent data nobody asked for'));
    try {
      parser.write(text);
    } catch (err) {
      this.settle?.reject(
        err instanceof GmpError ? err : new GmpError(`unreadable GMP answer: ${(err as Error).message}`),
      );
    }
  }

  private finish(): void {
    this.settle?.resolve();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.settle?.reject(err);
  }
}

function commandName(xml: string): string {
  return /^<\s*([a-z_]+)/.exec(xml)?.[1] ?? 'the command';
}

function checkStatus(xml: string, attrs: Record<string, string>): void {
  const status = Number(attrs.status);
  if (!(status >= 200 && status < 300))
    throw new GmpError(
      `gvmd refused ${commandName(xml)}: ${attrs.status ?? '?'} ${attrs.status_text ?? ''}`.trim(),
      status,
    );
}

function openTag(tag: SaxesTagPlain): string {
  const attrs = Object.entries(tag.attributes)
    .map(([k, v]) => ` ${k}="${escapeXml(v)}"`)
    .join('');
  return `<${tag.name}${attrs}>`;
}

function escapeText(t: string): string {
  return t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
