// A local GLPI speaking the legacy REST API (apirest.php) for what the ticket integration uses:
// initSession with App-Token and "Authorization: user_token …" → session_token, Session-Token on
// every call, killSession; getItems with searchText[field] (LIKE, ^/$ anchors), sort/order and
// range paging (206 + Content-Range, ERROR_RANGE_EXCEED_TOTAL); Ticket get/add/update; sub-items
// Ticket/:id/Item_Ticket and Ticket/:id/ITILFollowup; Item_Ticket (one, or several in one bulk add
// answering per item) and ITILFollowup add; Computer lookups, and the search engine
// (search/Computer with criteria[n][link|field|searchtype|value], forcedisplay and range; options 1
// name, 2 id). Errors are ["ERROR_CODE", "message"]. date_mod is server text "YYYY-MM-DD HH:MM:SS".
import { randomBytes } from 'node:crypto';
import { Answer, FakeTicketServer, type FakeAnswer, type FakeRequest } from './ticketServer.ts';

export interface GlpiTicket {
  id: number;
  name: string;
  content: string;
  externalid: string;
  status: number;
  urgency: number;
  type: number;
  entities_id: number;
  time_to_resolve: string | null;
  date: string;
  date_mod: string;
  is_deleted: number;
}

interface Followup {
  id: number;
  itemtype: string;
  items_id: number;
  content: string;
  date: string;
}

interface ItemTicket {
  id: number;
  itemtype: string;
  items_id: number;
  tickets_id: number;
}

export interface FakeGlpiOptions {
  appToken: string;
  userToken: string;
  computers?: { id: number; name: string }[];
}

function glpiNow(): string {
  return new Date().toISOString().replace('T', ' ').slice(0, 19);
}

/** GLPI's searchText: a LIKE %value% match, with ^ and $ anchoring the start and end. */
function textMatches(value: unknown, pattern: string): boolean {
  const text = String(value ?? '').toLowerCase();
  let p = pattern.toLowerCase();
  const start = p.startsWith('^');
  const end = p.endsWith('$');
  if (start) p = p.slice(1);
  if (end) p = p.slice(0, -1);
  if (start && end) return text === p;
  if (start) return text.startsWith(p);
  if (end) return text.endsWith(p);
  return text.includes(p);
}

const fail = (status: number, code: string, message: string) => new Answer({ status, body: [code, message] });

export class FakeGlpi extends FakeTicketServer {
  readonly tickets = new Map<number, GlpiTicket>();
  readonly followups: Followup[] = [];
  readonly itemTickets: ItemTicket[] = [];
  readonly computers: { id: number; name: string }[];
  readonly sessions = new Set<string>();
  readonly killed: string[] = [];
  private nextTicket = 1;
  private nextFollowup = 1;
  private nextLink = 1;

  constructor(readonly options: FakeGlpiOptions) {
    super();
    this.computers = options.computers ?? [];
  }

  protected override rateLimitBody(): unknown {
    return ['ERROR_TOO_MANY_REQUESTS', 'Too many requests'];
  }

  protected handle(req: FakeRequest): FakeAnswer {
    const path = req.path.replace(/^\/apirest\.php\/?/, '');
    if (req.headers['app-token'] !== this.options.appToken)
      throw fail(400, 'ERROR_WRONG_APP_TOKEN_PARAMETER', 'missing parameter app_token');
    if (path === 'initSession') {
      if (req.headers.authorization !== `user_token ${this.options.userToken}`)
        throw fail(401, 'ERROR_GLPI_LOGIN_USER_TOKEN', 'parameter user_token seems invalid');
      const token = randomBytes(20).toString('hex');
      this.sessions.add(token);
      return { status: 200, body: { session_token: token } };
    }
    const token = req.headers['session-token'];
    if (typeof token !== 'string' || !this.sessions.has(token))
      throw fail(401, 'ERROR_SESSION_TOKEN_INVALID', 'session_token seems invalid');
    if (path === 'killSession') {
      this.sessions.delete(token);
      this.killed.push(token);
      return { status: 200, body: true };
    }
    if (req.method === 'GET' && req.raw)
      throw fail(400, 'ERROR_JSON_PAYLOAD_FORBIDDEN', 'GET requests must have an empty body');

    let m: RegExpExecArray | null;
    if (path === 'Ticket' && req.method === 'GET')
      return this.list(
        req,
        [...this.tickets.values()].filter((t) => !t.is_deleted),
      );
    if (path === 'Computer' && req.method === 'GET') return this.list(req, this.computers);
    if (path === 'search/Computer' && req.method === 'GET') return this.search(req);
    if (path === 'Ticket' && req.method === 'POST') return this.addTicket(req);
    if ((m = /^Ticket\/(\d+)$/.exec(path))) {
      const t = this.ticket(Number(m[1]));
      if (req.method === 'GET') return { status: 200, body: t, headers: { 'last-modified': t.date_mod } };
      if (req.method === 'PUT') return this.updateTicket(t, req);
    }
    if ((m = /^Ticket\/(\d+)\/ITILFollowup$/.exec(path)) && req.method === 'GET') {
      const id = this.ticket(Number(m[1])).id;
      return this.list(
        req,
        this.followups.filter((f) => f.itemtype === 'Ticket' && f.items_id === id),
      );
    }
    if ((m = /^Ticket\/(\d+)\/Item_Ticket$/.exec(path)) && req.method === 'GET') {
      const id = this.ticket(Number(m[1])).id;
      return this.list(
        req,
        this.itemTickets.filter((l) => l.tickets_id === id),
      );
    }
    if (path === 'ITILFollowup' && req.method === 'POST') {
      const input = this.input(req);
      const t = this.ticket(Number(input.items_id));
      if (input.itemtype !== 'Ticket' || typeof input.content !== 'string' || input.content === '')
        throw fail(400, 'ERROR_GLPI_ADD', 'You must fill the content, itemtype and items_id');
      const f: Followup = {
        id: this.nextFollowup++,
        itemtype: 'Ticket',
        items_id: t.id,
        content: input.content,
        date: glpiNow(),
      };
      this.followups.push(f);
      t.date_mod = glpiNow();
      return {
        status: 201,
        body: { id: f.id, message: '' },
        headers: { location: `${this.url}/apirest.php/ITILFollowup/${f.id}` },
      };
    }
    if (path === 'Item_Ticket' && req.method === 'POST') {
      const inputs = (req.body as { input?: unknown } | undefined)?.input;
      if (!Array.isArray(inputs)) return { status: 201, body: this.addLink(this.input(req)) };
      // A bulk add: each item is added or refused on its own.
      const results = inputs.map((input: Record<string, unknown>) => {
        try {
          return this.addLink(input);
        } catch (err) {
          if (!(err instanceof Answer)) throw err;
          const [, message] = err.answer.body as [string, string];
          return { id: false, message };
        }
      });
      return { status: results.every((r) => r.id !== false) ? 201 : 207, body: results };
    }
    throw fail(400, 'ERROR_ITEMTYPE_NOT_FOUND_NOR_COMMONDBTM', `resource ${path} not found`);
  }

  private addLink(input: Record<string, unknown>): { id: number; message: string } {
    const t = this.ticket(Number(input.tickets_id));
    const itemtype = String(input.itemtype);
    const itemsId = Number(input.items_id);
    if (itemtype === 'Computer' && !this.computers.some((c) => c.id === itemsId))
      throw fail(400, 'ERROR_GLPI_ADD', 'Item not found');
    if (
      this.itemTickets.some((l) => l.tickets_id === t.id && l.itemtype === itemtype && l.items_id === itemsId)
    )
      throw fail(400, 'ERROR_GLPI_ADD', 'This item is already linked to the ticket');
    const link: ItemTicket = { id: this.nextLink++, itemtype, items_id: itemsId, tickets_id: t.id };
    this.itemTickets.push(link);
    return { id: link.id, message: '' };
  }

  /** The search engine over Computers: criteria combined left to right by their links. */
  private search(req: FakeRequest): FakeAnswer {
    const criteria = new Map<number, Record<string, string>>();
    for (const [k, v] of req.query.entries()) {
      const c = /^criteria\[(\d+)\]\[(link|field|searchtype|value)\]$/.exec(k);
      if (!c) continue;
      const i = Number(c[1]);
      criteria.set(i, { ...criteria.get(i), [c[2]!]: v });
    }
    const options: Record<string, (c: { id: number; name: string }) => string> = {
      '1': (c) => c.name,
      '2': (c) => String(c.id),
    };
    const matches = (c: { id: number; name: string }, crit: Record<string, string>): boolean => {
      const value = options[crit.field ?? '']?.(c);
      if (value === undefined) throw fail(400, 'ERROR', `unknown search option ${crit.field}`);
      if (crit.searchtype === 'contains') return textMatches(value, crit.value ?? '');
      if (crit.searchtype === 'equals') return value === crit.value;
      throw fail(400, 'ERROR', `searchtype ${crit.searchtype} is not supported here`);
    };
    const ordered = [...criteria.entries()].sort(([a], [b]) => a - b).map(([, c]) => c);
    const found = this.computers
      .filter(
        (c) =>
          ordered.reduce<boolean | undefined>((acc, crit) => {
            const m = matches(c, crit);
            if (acc === undefined) return m;
            switch ((crit.link ?? 'AND').toUpperCase()) {
              case 'OR':
                return acc || m;
              case 'AND NOT':
                return acc && !m;
              case 'OR NOT':
                return acc || !m;
              default:
                return acc && m;
            }
          }, undefined) ?? true,
      )
      .sort((a, b) => a.name.localeCompare(b.name));
    const [start, end] = (req.query.get('range') ?? '0-49').split('-').map(Number) as [number, number];
    const page = found.slice(start, end + 1);
    const forced = [...req.query.entries()]
      .filter(([k]) => /^forcedisplay\[\d+\]$/.test(k))
      .map(([, v]) => v);
    const shown = new Set(['1', '2', '80', ...forced]);
    return {
      status: page.length < found.length ? 206 : 200,
      body: {
        totalcount: found.length,
        count: page.length,
        sort: [1],
        order: ['ASC'],
        data: page.map((c) =>
          Object.fromEntries(
            [...shown]
              .filter((o) => o === '80' || options[o])
              .map((o) => [o, o === '80' ? 'Root entity' : o === '2' ? c.id : options[o]!(c)]),
          ),
        ),
      },
      headers: {
        'content-range': `${start}-${Math.min(end, Math.max(found.length - 1, 0))}/${found.length}`,
        'accept-range': 'Computer 1000',
      },
    };
  }

  private input(req: FakeRequest): Record<string, unknown> {
    const input = (req.body as { input?: unknown } | undefined)?.input;
    if (!input || typeof input !== 'object' || Array.isArray(input))
      throw fail(400, 'ERROR_BAD_ARRAY', 'input parameter must be an array of objects');
    return input as Record<string, unknown>;
  }

  private ticket(id: number): GlpiTicket {
    const t = this.tickets.get(id);
    if (!t || t.is_deleted) throw fail(404, 'ERROR_ITEM_NOT_FOUND', 'Item not found');
    return t;
  }

  private list<T extends object>(req: FakeRequest, all: T[]): FakeAnswer {
    let rows = all;
    for (const [k, v] of req.query.entries()) {
      const f = /^searchText\[(\w+)\]$/.exec(k);
      if (f) rows = rows.filter((r) => textMatches((r as Record<string, unknown>)[f[1]!], v));
    }
    const sort = req.query.get('sort') ?? 'id';
    const desc = (req.query.get('order') ?? 'ASC').toUpperCase() === 'DESC';
    rows = [...rows].sort((a, b) => {
      const x = (a as Record<string, unknown>)[sort];
      const y = (b as Record<string, unknown>)[sort];
      const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
      return desc ? -c : c;
    });
    const [start, end] = (req.query.get('range') ?? '0-49').split('-').map(Number) as [number, number];
    const total = rows.length;
    if (total > 0 && start >= total)
      throw fail(400, 'ERROR_RANGE_EXCEED_TOTAL', 'Provided range exceed total count of data');
    const page = rows.slice(start, end + 1);
    const last = total === 0 ? 0 : Math.min(end, total - 1);
    return {
      status: page.length < total ? 206 : 200,
      body: page,
      headers: {
        'content-range': `${start}-${last}/${total}`,
        'accept-range': `${req.path.split('/').pop()} 1000`,
      },
    };
  }

  private addTicket(req: FakeRequest): FakeAnswer {
    const input = this.input(req);
    if (typeof input.name !== 'string' || input.name.trim() === '')
      throw fail(400, 'ERROR_GLPI_ADD', 'You must fill the title');
    const status = input.status === undefined ? 1 : Number(input.status);
    if (!(status >= 1 && status <= 6)) throw fail(400, 'ERROR_GLPI_ADD', 'Invalid status');
    const now = glpiNow();
    const t: GlpiTicket = {
      id: this.nextTicket++,
      name: input.name,
      content: String(input.content ?? ''),
      externalid: String(input.externalid ?? ''),
      status,
      urgency: Number(input.urgency ?? 3),
      type: Number(input.type ?? 1),
      entities_id: Number(input.entities_id ?? 0),
      time_to_resolve: typeof input.time_to_resolve === 'string' ? input.time_to_resolve : null,
      date: now,
      date_mod: now,
      is_deleted: 0,
    };
    this.tickets.set(t.id, t);
    return {
      status: 201,
      body: { id: t.id, message: '' },
      headers: { location: `${this.url}/apirest.php/Ticket/${t.id}` },
    };
  }

  private updateTicket(t: GlpiTicket, req: FakeRequest): FakeAnswer {
    const input = this.input(req);
    if ('status' in input) {
      const s = Number(input.status);
      if (!(s >= 1 && s <= 6)) return { status: 400, body: ['ERROR_GLPI_UPDATE', 'Invalid status'] };
      t.status = s;
    }
    for (const k of ['name', 'content', 'externalid'] as const)
      if (typeof input[k] === 'string') t[k] = input[k];
    if (input.urgency !== undefined) t.urgency = Number(input.urgency);
    t.date_mod = glpiNow();
    return { status: 200, body: [{ [String(t.id)]: true, message: '' }] };
  }

  byExternalId(externalid: string): GlpiTicket[] {
    return [...this.tickets.values()].filter((t) => t.externalid === externalid);
  }

  followupsOf(id: number): string[] {
    return this.followups.filter((f) => f.items_id === id).map((f) => f.content);
  }

  /** A technician solves or closes the ticket in the GLPI UI (GLPI calls nobody: it is polled). */
  humanSetStatus(id: number, status: number): void {
    const t = this.ticket(id);
    t.status = status;
    t.date_mod = glpiNow();
  }
}
