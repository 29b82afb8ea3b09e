// A local ServiceNow instance speaking the Table API for one table (incident by default): basic or
// bearer auth, {"result": …} bodies and {"error": {message, detail}, "status": "failure"} errors,
// encoded queries (^-joined terms, ^^ for a literal ^, ORDERBY/ORDERBYDESC, =, !=, LIKE, STARTSWITH,
// >=, <=, >, <) with unknown fields matching nothing, sysparm_limit/sysparm_offset paging with
// X-Total-Count and Link headers, sysparm_fields, sysparm_display_value (false/true/all), journal
// fields (work_notes, comments) that append entries, and the data policy that a resolved incident
// needs close_code and close_notes. Humans act through humanResolve(), which calls the outbound
// REST endpoint the way a business rule would.
import { randomBytes } from 'node:crypto';
import {
  Answer,
  basicCredentials,
  FakeTicketServer,
  type FakeAnswer,
  type FakeRequest,
} from './ticketServer.ts';

export interface SnRecord {
  sys_id: string;
  number: string;
  short_description: string;
  description: string;
  correlation_id: string;
  correlation_display: string;
  state: string;
  urgency: string;
  impact: string;
  close_code: string;
  close_notes: string;
  assignment_group: string;
  sys_created_on: string;
  sys_updated_on: string;
  sys_updated_by: string;
  work_notes: { at: string; by: string; text: string }[];
  comments: { at: string; by: string; text: string }[];
}

const stateNames: Record<string, string> = {
  '1': 'New',
  '2': 'In Progress',
  '3': 'On Hold',
  '6': 'Resolved',
  '7': 'Closed',
  '8': 'Canceled',
};
const journalFields = new Set(['work_notes', 'comments']);
const writableFields = new Set([
  'short_description',
  'description',
  'correlation_id',
  'correlation_display',
  'state',
  'urgency',
  'impact',
  'close_code',
  'close_notes',
  'assignment_group',
  'work_notes',
  'comments',
]);

export interface FakeServiceNowOptions {
  user: string;
  password: string;
  /** Accepted as "Authorization: Bearer <token>" (OAuth). */
  token?: string;
  table?: string;
  outbound?: { url: string; header: string; secret: string };
}

/** ServiceNow's glide date-time text, UTC: "2024-05-01 10:00:00". */
function glideNow(): string {
  return new Date().toISOString().replace('T', ' ').slice(0, 19);
}

interface Term {
  field: string;
  op: string;
  value: string;
}

/** Split an encoded query on ^, keeping ^^ as a literal ^ inside values. */
export function parseEncodedQuery(q: string): { terms: Term[]; order?: { field: string; desc: boolean } } {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < q.length; i++) {
    if (q[i] === '^') {
      if (q[i + 1] === '^') {
        current += '^';
        i++;
      } else {
        parts.push(current);
        current = '';
      }
    } else current += q[i];
  }
  parts.push(current);
  const terms: Term[] = [];
  let order: { field: string; desc: boolean } | undefined;
  for (const part of parts.filter((p) => p !== '')) {
    const o = /^ORDERBY(DESC)?(\w+)$/.exec(part);
    if (o) {
      order = { field: o[2]!, desc: !!o[1] };
      continue;
    }
    const m = /^([A-Za-z0-9_.]+?)(STARTSWITH|LIKE|!=|>=|<=|=|>|<)(.*)$/.exec(part);
    if (!m)
      throw new Answer({
        status: 400,
        body: { error: { message: `Invalid query term: ${part}` }, status: 'failure' },
      });
    terms.push({ field: m[1]!, op: m[2]!, value: m[3]! });
  }
  return { terms, order };
}

export class FakeServiceNow extends FakeTicketServer {
  readonly records = new Map<string, SnRecord>();
  private counter = 10000;
  readonly outboundDeliveries: { status: number; body: unknown }[] = [];

  constructor(readonly options: FakeServiceNowOptions) {
    super();
  }

  get table(): string {
    return this.options.table ?? 'incident';
  }

  protected override rateLimitBody(): unknown {
    return { error: { message: 'Too Many Requests', detail: 'Rate limit exceeded' }, status: 'failure' };
  }

  private authorized(req: FakeRequest): boolean {
    const auth = req.headers.authorization;
    if (this.options.token && auth === `Bearer ${this.options.token}`) return true;
    const basic = basicCredentials(auth);
    return !!basic && basic[0] === this.options.user && basic[1] === this.options.password;
  }

  private value(r: SnRecord, field: string): string | undefined {
    if (journalFields.has(field)) return '';
    const v = (r as unknown as Record<string, unknown>)[field];
    return typeof v === 'string' ? v : undefined;
  }

  private display(r: SnRecord, field: string): string {
    if (journalFields.has(field)) {
      const entries = field === 'work_notes' ? r.work_notes : r.comments;
      const label = field === 'work_notes' ? 'Work notes' : 'Additional comments';
      return [...entries]
        .reverse()
        .map((e) => `${e.at} - ${e.by} (${label})\n${e.text}\n\n`)
        .join('');
    }
    if (field === 'state') return stateNames[r.state] ?? r.state;
    return this.value(r, field) ?? '';
  }

  private render(r: SnRecord, fields: string[] | undefined, displayValue: string): Record<string, unknown> {
    const names = fields?.length ? fields : Object.keys(r);
    const out: Record<string, unknown> = {};
    for (const f of names) {
      if (this.value(r, f) === undefined && !journalFields.has(f)) continue;
      if (displayValue === 'all') out[f] = { display_value: this.display(r, f), value: this.value(r, f) };
      else if (displayValue === 'true') out[f] = this.display(r, f);
      else out[f] = this.value(r, f);
    }
    return out;
  }

  private matches(r: SnRecord, t: Term): boolean {
    const v = this.value(r, t.field);
    if (v === undefined) return false; // unknown field: matches nothing (glide.invalid_query.returns_no_rows)
    switch (t.op) {
      case '=':
        return v === t.value;
      case '!=':
        return v !== t.value;
      case 'LIKE':
        return v.toLowerCase().includes(t.value.toLowerCase());
      case 'STARTSWITH':
        return v.toLowerCase().startsWith(t.value.toLowerCase());
      case '>=':
        return v >= t.value;
      case '<=':
        return v <= t.value;
      case '>':
        return v > t.value;
      default:
        return v < t.value;
    }
  }

  private record(sysId: string): SnRecord {
    const r = this.records.get(sysId);
    if (!r)
      throw new Answer({
        status: 404,
        body: {
          error: {
            message: 'No Record found',
            detail: "Record doesn't exist or ACL restricts the record retrieval",
          },
          status: 'failure',
        },
      });
    return r;
  }

  private write(r: SnRecord, body: Record<string, unknown>, by: string): void {
    for (const [k, v] of Object.entries(body)) {
      if (!writableFields.has(k)) continue; // the Table API ignores unknown fields
      const text = String(v);
      if (k === 'work_notes' || k === 'comments') {
        if (text) (k === 'work_notes' ? r.work_notes : r.comments).push({ at: glideNow(), by, text });
      } else (r as unknown as Record<string, string>)[k] = text;
    }
    r.sys_updated_on = glideNow();
    r.sys_updated_by = by;
  }

  /** The data policy of resolved incidents. */
  private checkPolicy(r: SnRecord): void {
    if ((r.state === '6' || r.state === '7') && (!r.close_code || !r.close_notes))
      throw new Answer({
        status: 403,
        body: {
          error: {
            message: 'Operation Failed',
            detail:
              'Data Policy Exception: \n\tThe following fields are mandatory: Resolution code, Resolution notes\n',
          },
          status: 'failure',
        },
      });
    if (!stateNames[r.state])
      throw new Answer({
        status: 400,
        body: { error: { message: `Invalid state ${r.state}` }, status: 'failure' },
      });
  }

  protected handle(req: FakeRequest): FakeAnswer {
    if (!this.authorized(req))
      return {
        status: 401,
        body: {
          error: { message: 'User Not Authenticated', detail: 'Required to provide Auth information' },
          status: 'failure',
        },
      };
    const base = `/api/now/table/${this.table}`;
    const fields = req.query.get('sysparm_fields')?.split(',').filter(Boolean);
    const displayValue = req.query.get('sysparm_display_value') ?? 'false';
    const by = basicCredentials(req.headers.authorization)?.[0] ?? 'oauth.user';

    if (req.path === base && req.method === 'GET') {
      const { terms, order } = parseEncodedQuery(req.query.get('sysparm_query') ?? '');
      let rows = [...this.records.values()].filter((r) => terms.every((t) => this.matches(r, t)));
      if (order) {
        const key = order.field;
        rows = rows.sort(
          (a, b) =>
            (this.value(a, key) ?? '').localeCompare(this.value(b, key) ?? '') * (order.desc ? -1 : 1),
        );
      }
      const limit = Number(req.query.get('sysparm_limit') ?? 10000);
      const offset = Number(req.query.get('sysparm_offset') ?? 0);
      const page = rows.slice(offset, offset + limit);
      const headers: Record<string, string> = { 'x-total-count': String(rows.length) };
      if (offset + limit < rows.length) {
        const next = new URLSearchParams(req.query);
        next.set('sysparm_offset', String(offset + limit));
        headers.link = `<${this.url}${base}?${next.toString()}>;rel="next"`;
      }
      return {
        status: 200,
        headers,
        body: { result: page.map((r) => this.render(r, fields, displayValue)) },
      };
    }
    if (req.path === base && req.method === 'POST') {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const now = glideNow();
      const r: SnRecord = {
        sys_id: randomBytes(16).toString('hex'),
        number: `INC${String(this.counter++).padStart(7, '0')}`,
        short_description: '',
        description: '',
        correlation_id: '',
        correlation_display: '',
        state: '1',
        urgency: '3',
        impact: '3',
        close_code: '',
        close_notes: '',
        assignment_group: '',
        sys_created_on: now,
        sys_updated_on: now,
        sys_updated_by: by,
        work_notes: [],
        comments: [],
      };
      this.write(r, body, by);
      this.checkPolicy(r);
      this.records.set(r.sys_id, r);
      return { status: 201, body: { result: this.render(r, fields, displayValue) } };
    }
    const m = new RegExp(`^${base}/([0-9a-f]{32})$`).exec(req.path);
    if (m) {
      const r = this.record(m[1]!);
      if (req.method === 'GET')
        return { status: 200, body: { result: this.render(r, fields, displayValue) } };
      if (req.method === 'PATCH' || req.method === 'PUT') {
        const copy: SnRecord = { ...r, work_notes: [...r.work_notes], comments: [...r.comments] };
        this.write(copy, (req.body ?? {}) as Record<string, unknown>, by);
        this.checkPolicy(copy);
        this.records.set(r.sys_id, copy);
        return { status: 200, body: { result: this.render(copy, fields, displayValue) } };
      }
    }
    return {
      status: 400,
      body: { error: { message: `Invalid table or path ${req.path}` }, status: 'failure' },
    };
  }

  byCorrelation(id: string): SnRecord[] {
    return [...this.records.values()].filter((r) => r.correlation_id === id);
  }

  /** A person resolves the incident in the UI; the business rule then calls our endpoint. Returns its status. */
  async humanResolve(sysId: string, user = 'dana.reviewer', secret?: string): Promise<number> {
    const r = this.record(sysId);
    this.write(
      r,
      { state: '6', close_code: 'Solved (Permanently)', close_notes: 'Patched by the app team' },
      user,
    );
    const out = this.options.outbound;
    if (!out) return 0;
    const res = await fetch(out.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [out.header]: secret ?? out.secret },
      body: JSON.stringify({
        sys_id: r.sys_id,
        number: r.number,
        state: r.state,
        correlation_id: r.correlation_id,
        sys_updated_by: user,
      }),
    });
    const text = await res.text();
    this.outboundDeliveries.push({
      status: res.status,
      body: text ? (JSON.parse(text) as unknown) : undefined,
    });
    return res.status;
  }
}
