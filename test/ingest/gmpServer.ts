// A local gvmd stand-in speaking GMP over a Unix socket, or over TLS on 127.0.0.1 (as gvmd listens
// on port 9390) when given a key and certificate: each command is one XML element, each answer
// one XML element with status and status_text, as gvmd does. It checks authentication first, keeps
// the targets and tasks it was asked to create, runs a started task to "Done" over two polls, and
// answers get_reports with a real GVM XML report wrapped in <get_reports_response>.
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { SaxesParser } from 'saxes';

interface Element {
  name: string;
  attrs: Record<string, string>;
  children: Element[];
  text: string;
}

export interface LocalGvmd {
  /** The Unix socket path (Unix mode only). */
  socket: string;
  /** The TLS port on 127.0.0.1 (TLS mode only). */
  port?: number;
  /** TLS connections that completed a handshake. */
  tlsSessions: number;
  /** Every command's name, in order. */
  commands: string[];
  targets: { id: string; name: string; hosts: string; portList?: string }[];
  tasks: { id: string; name: string; config?: string; target?: string; scanner?: string }[];
  /** The GVM XML report (root <report>) the next started task produces. */
  report: string;
  close(): Promise<void>;
}

export async function startLocalGvmd(opts: {
  username: string;
  password: string;
  /** PEM key and certificate: listen for GMP over TLS instead of a Unix socket. */
  tls?: { key: string; cert: string };
}): Promise<LocalGvmd> {
  const socket = path.join(mkdtempSync(path.join(os.tmpdir(), 'ctem-gvmd-')), 'gvmd.sock');
  const reports = new Map<string, string>();
  const runs = new Map<string, { polls: number; reportId: string }>();
  const state: LocalGvmd = {
    socket,
    tlsSessions: 0,
    commands: [],
    targets: [],
    tasks: [],
    report: '',
    close: async () => await new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const child = (e: Element, name: string) => e.children.find((c) => c.name === name);
  const answer = (cmd: Element, authenticated: boolean): { xml: string; authenticated: boolean } => {
    const r = `${cmd.name}_response`;
    const ok = (status: number, text: string, body = '', attrs = '') =>
      `<${r} status="${status}" status_text="${text}"${attrs}>${body}</${r}>`;
    if (cmd.name === 'authenticate') {
      const creds = child(cmd, 'credentials');
      const good =
        creds &&
        child(creds, 'username')?.text === opts.username &&
        child(creds, 'password')?.text === opts.password;
      return good
        ? { xml: ok(200, 'OK', '<role>Admin</role><timezone>UTC</timezone>'), authenticated: true }
        : { xml: ok(400, 'Authentication failed'), authenticated: false };
    }
    if (!authenticated)
      return { xml: ok(400, `Only command GET_VERSION is allowed before AUTHENTICATE`), authenticated };
    switch (cmd.name) {
      case 'create_target': {
        const id = randomUUID();
        state.targets.push({
          id,
          name: child(cmd, 'name')?.text ?? '',
          hosts: child(cmd, 'hosts')?.text ?? '',
          portList: child(cmd, 'port_list')?.attrs.id,
        });
        return { xml: ok(201, 'OK, resource created', '', ` id="${id}"`), authenticated };
      }
      case 'create_task': {
        const target = child(cmd, 'target')?.attrs.id;
        if (!state.targets.some((t) => t.id === target))
          return { xml: ok(404, 'Failed to find target'), authenticated };
        const id = randomUUID();
        state.tasks.push({
          id,
          name: child(cmd, 'name')?.text ?? '',
          config: child(cmd, 'config')?.attrs.id,
          target,
          scanner: child(cmd, 'scanner')?.attrs.id,
        });
        return { xml: ok(201, 'OK, resource created', '', ` id="${id}"`), authenticated };
      }
      case 'start_task': {
        const id = cmd.attrs.task_id ?? '';
        if (!state.tasks.some((t) => t.id === id))
          return { xml: ok(404, 'Failed to find task'), authenticated };
        const reportId = randomUUID();
        reports.set(reportId, state.report);
        runs.set(id, { polls: 0, reportId });
        return { xml: ok(202, 'OK, request submitted', `<report_id>${reportId}</report_id>`), authenticated };
      }
      case 'get_tasks': {
        const id = cmd.attrs.task_id ?? '';
        const run = runs.get(id);
        if (!run) return { xml: ok(404, 'Failed to find task'), authenticated };
        run.polls++;
        const status = run.polls >= 2 ? 'Done' : 'Running';
        const progress = run.polls >= 2 ? -1 : 42;
        return {
          xml: ok(
            200,
            'OK',
            `<apply_overrides>0</apply_overrides><task id="${id}"><name>task</name><status>${status}</status><progress>${progress}</progress><last_report><report id="${run.reportId}"/></last_report></task><filters id=""><term>task_id=${id}</term></filters>`,
          ),
          authenticated,
        };
      }
      case 'get_reports': {
        const report = reports.get(cmd.attrs.report_id ?? '');
        if (!report || cmd.attrs.format_id !== 'a994b278-1f62-11e1-96ac-406186ea4fc5')
          return { xml: ok(404, 'Failed to find report'), authenticated };
        return {
          xml: ok(
            200,
            'OK',
            `${report.replace(/^<\?xml[^>]*\?>\s*/, '')}<filters id=""><term>${cmd.attrs.filter ?? ''}</term></filters><sort><field>name<order>ascending</order></field></sort><reports max="-1" start="1"/><report_count>1<filtered>1</filtered><page>1</page></report_count>`,
          ),
          authenticated,
        };
      }
      default:
        return { xml: ok(400, 'Bogus command name'), authenticated };
    }
  };
  const serve = (conn: net.Socket) => {
    let authenticated = false;
    let parser: SaxesParser;
    const reset = () => {
      parser = new SaxesParser({ xmlns: false });
      const stack: Element[] = [];
      parser.on('opentag', (tag) => {
        const e: Element = {
          name: tag.name,
          attrs: { ...(tag.attributes as Record<string, string>) },
          children: [],
          text: '',
        };
        stack.at(-1)?.children.push(e);
        stack.push(e);
      });
      parser.on('text', (t) => {
        const top = stack.at(-1);
        if (top) top.text += t;
      });
      parser.on('closetag', () => {
        const e = stack.pop()!;
        if (stack.length > 0) return;
        state.commands.push(e.name);
        const a = answer(e, authenticated);
        authenticated = a.authenticated;
        // Answer in pieces, as a socket may deliver them.
        const mid = Math.floor(a.xml.length / 2);
        conn.write(a.xml.slice(0, mid));
        setImmediate(() => conn.write(a.xml.slice(mid)));
        setImmediate(reset);
      });
    };
    reset();
    conn.on('data', (chunk: Buffer) => parser.write(chunk.toString('utf8')));
    conn.on('error', () => undefined);
  };
  if (opts.tls) {
    const secure = tls.createServer({ key: opts.tls.key, cert: opts.tls.cert }, (conn) => {
      state.tlsSessions++;
      serve(conn);
    });
    // A client that refuses the certificate aborts the handshake: not the server's failure.
    secure.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve));
    state.port = (secure.address() as net.AddressInfo).port;
    state.socket = '';
    state.close = async () => await new Promise<void>((resolve) => secure.close(() => resolve()));
    return state;
  }
  const server = net.createServer(serve);
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return state;
}
