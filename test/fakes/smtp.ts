// A local SMTP server (the `smtp-server` package: real SMTP dialogue, AUTH PLAIN/LOGIN) that keeps
// every message it accepts, so tests assert on what nodemailer actually sent over the wire.
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  from: string;
  to: string[];
  user?: string;
  raw: string;
}

export class FakeSmtpServer {
  readonly mails: ReceivedMail[] = [];
  readonly authFailures: string[] = [];
  private server?: SMTPServer;
  port = 0;

  constructor(private readonly account?: { user: string; password: string }) {}

  async start(): Promise<this> {
    this.server = new SMTPServer({
      secure: false,
      disabledCommands: ['STARTTLS'],
      authOptional: !this.account,
      allowInsecureAuth: true,
      logger: false,
      onAuth: (auth, _session, callback) => {
        if (this.account && auth.username === this.account.user && auth.password === this.account.password)
          return callback(null, { user: auth.username });
        this.authFailures.push(auth.username ?? '');
        return callback(new Error('Invalid username or password'));
      },
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const from = session.envelope.mailFrom;
          this.mails.push({
            from: from ? from.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            ...(typeof session.user === 'string' ? { user: session.user } : {}),
            raw: Buffer.concat(chunks).toString('utf8'),
          });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

/** The decoded text of a MIME part of a raw message (quoted-printable or base64), by content type. */
export function mimePart(raw: string, contentType: string): string | undefined {
  const at = raw.toLowerCase().indexOf(`content-type: ${contentType}`);
  if (at < 0) return undefined;
  const headerEnd = raw.indexOf('\r\n\r\n', at);
  const headers = raw.slice(at, headerEnd).toLowerCase();
  const rest = raw.slice(headerEnd + 4);
  const boundary = rest.search(/\r\n--[^\r\n]+/);
  const body = boundary >= 0 ? rest.slice(0, boundary) : rest;
  if (headers.includes('content-transfer-encoding: base64'))
    return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (headers.includes('content-transfer-encoding: quoted-printable')) {
    const soft = body.replace(/=\r?\n/g, '');
    const bytes: number[] = [];
    for (let i = 0; i < soft.length; i++) {
      const hex = soft[i] === '=' ? soft.slice(i + 1, i + 3) : '';
      if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else bytes.push(...Buffer.from(soft[i]!, 'utf8'));
    }
    return Buffer.from(bytes).toString('utf8');
  }
  return body;
}

/** A header of a raw message, with RFC 2047 encoded words decoded. */
export function mailHeader(raw: string, name: string): string | undefined {
  const head = raw.slice(0, raw.indexOf('\r\n\r\n'));
  const m = new RegExp(`^${name}:(.*(?:\\r\\n[ \\t].*)*)`, 'im').exec(head);
  if (!m) return undefined;
  return m[1]!
    .replace(/\r\n[ \t]/g, ' ')
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?utf-8\?([QB])\?([^?]*)\?=/gi, (_w, enc: string, text: string) =>
      enc.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64').toString('utf8')
        : Buffer.from(
            text
              .replace(/_/g, ' ')
              .replace(/=([0-9A-F]{2})/gi, (_x, h: string) => String.fromCharCode(parseInt(h, 16))),
            'latin1',
          ).toString('utf8'),
    )
    .trim();
}
