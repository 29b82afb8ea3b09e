// A local Jira Cloud speaking REST v3 for what the ticket integration uses: basic (email:API token)
// or bearer auth; POST /issue with ADF validated (and a description or comment over 32,767
// characters refused, as Jira Cloud does); GET/PUT /issue/{key}; comments with startAt/total
// paging; transitions by status category with a required resolution on Done; GET/POST
// /search/jql with JQL (labels, project, AND, ORDER BY), nextPageToken paging and "only id unless
// asked"; the retired GET/POST /search answering 410 Gone. Humans act through humanTransition(),
// which sends the signed webhook (X-Hub-Signature: sha256=…) Jira Cloud sends. Like Jira Cloud's
// search index, JQL can lag behind writes: with `searchLag: n`, a new issue stays out of the next n
// searches (counted, not timed, so a test of the lag does not depend on speed).
import { createHmac } from 'node:crypto';
import {
  Answer,
  basicCredentials,
  FakeTicketServer,
  type FakeAnswer,
  type FakeRequest,
} from './ticketServer.ts';

type Category = 'new' | 'indeterminate' | 'done';

interface Status {
  id: string;
  name: string;
  category: Category;
}

const statuses: Record<string, Status> = {
  'To Do': { id: '10000', name: 'To Do', category: 'new' },
  'In Progress': { id: '3', name: 'In Progress', category: 'indeterminate' },
  Done: { id: '10001', name: 'Done', category: 'done' },
};

/** The default Jira Software workflow's transitions, by the status they start from. */
const transitionsFrom: Record<string, { id: string; name: string; to: string }[]> = {
  'To Do': [
    { id: '21', name: 'Start Progress', to: 'In Progress' },
    { id: '31', name: 'Done', to: 'Done' },
  ],
  'In Progress': [
    { id: '11', name: 'Stop Progress', to: 'To Do' },
    { id: '31', name: 'Done', to: 'Done' },
  ],
  Done: [{ id: '41', name: 'Reopen', to: 'To Do' }],
};

export interface JiraIssue {
  id: string;
  key: string;
  fields: {
    summary: string;
    description: unknown;
    labels: string[];
    priority?: { name: string };
    duedate?: string;
    issuetype: { name: string };
    project: { key: string };
    status: string;
    resolution?: { name: string } | null;
    created: string;
    updated: string;
  };
  properties: Record<string, unknown>;
  comments: { id: string; body: unknown; created: string }[];
}

export interface FakeJiraOptions {
  email: string;
  apiToken: string;
  /** Accepted as "Authorization: Bearer <token>" (OAuth 2.0 access token). */
  accessToken?: string;
  projects?: string[];
  priorities?: string[];
  webhook?: { url: string; secret: string };
  /** Searches a newly created issue stays invisible to (Jira's index lags behind writes). */
  searchLag?: number;
}

const adfBlockTypes = new Set([
  'paragraph',
  'heading',
  'bulletList',
  'orderedList',
  'listItem',
  'codeBlock',
  'rule',
  'blockquote',
]);
const adfMarks = new Set(['strong', 'em', 'code', 'link', 'subsup', 'underline', 'strike']);

/** Throws a description of the first ADF problem (the real server refuses such documents with 400). */
function checkAdfNode(node: unknown, path: string): void {
  if (!node || typeof node !== 'object') throw new Error(`${path} is not a node`);
  const n = node as { type?: unknown; text?: unknown; content?: unknown; marks?: unknown; attrs?: unknown };
  if (n.type === 'text') {
    if (typeof n.text !== 'string' || n.text.length === 0)
      throw new Error(`${path}: text nodes need non-empty text`);
    for (const m of (n.marks as { type?: string; attrs?: { href?: unknown } }[] | undefined) ?? []) {
      if (!adfMarks.has(m.type ?? '')) throw new Error(`${path}: unknown mark ${String(m.type)}`);
      if (m.type === 'link' && typeof m.attrs?.href !== 'string')
        throw new Error(`${path}: link needs attrs.href`);
    }
    return;
  }
  if (n.type === 'hardBreak') return;
  if (typeof n.type !== 'string' || !adfBlockTypes.has(n.type))
    throw new Error(`${path}: unknown node type ${String(n.type)}`);
  if (!Array.isArray(n.content)) throw new Error(`${path}: ${n.type} needs content`);
  if (
    (n.type === 'bulletList' || n.type === 'orderedList' || n.type === 'listItem') &&
    n.content.length === 0
  )
    throw new Error(`${path}: ${n.type} must not be empty`);
  n.content.forEach((c, i) => checkAdfNode(c, `${path}.content[${i}]`));
}

function checkAdf(doc: unknown): string | undefined {
  const d = doc as { type?: unknown; version?: unknown; content?: unknown } | undefined;
  if (!d || d.type !== 'doc' || d.version !== 1 || !Array.isArray(d.content))
    return 'Operation value must be an Atlassian Document (see the Atlassian Document Format)';
  try {
    d.content.forEach((c, i) => checkAdfNode(c, `content[${i}]`));
    return undefined;
  } catch (err) {
    return `Operation value must be an Atlassian Document (see the Atlassian Document Format): ${(err as Error).message}`;
  }
}

/** Jira Cloud's limit on a rich-text field, counted here on the document as sent. */
export const JIRA_TEXT_LIMIT = 32_767;

function tooLong(doc: unknown): string | undefined {
  const length = JSON.stringify(doc ?? '').length;
  return length > JIRA_TEXT_LIMIT
    ? `The entered text is too long. It exceeds the allowed limit of ${JIRA_TEXT_LIMIT.toLocaleString('en-US')} characters.`
    : undefined;
}

/** All text of an ADF tree. */
export function adfPlainText(node: unknown): string {
  if (!node || typeof node !== 'object') return '';
  const n = node as { text?: string; content?: unknown[] };
  return `${n.text ?? ''}${(n.content ?? []).map(adfPlainText).join(' ')}`;
}

interface JqlClause {
  field: string;
  value: string;
}

/** The JQL the integration sends: `field = "value"` clauses joined by AND, an optional ORDER BY. */
function parseJql(jql: string): { clauses: JqlClause[]; order?: { field: string; desc: boolean } } {
  const m = /^(.*?)(?:\s+ORDER BY\s+(\w+)(?:\s+(ASC|DESC))?)?\s*$/i.exec(jql.trim());
  const where = (m?.[1] ?? '').trim();
  const order = m?.[2]
    ? { field: m[2].toLowerCase(), desc: (m[3] ?? 'ASC').toUpperCase() === 'DESC' }
    : undefined;
  if (/^ORDER BY/i.test(where) || where === '')
    throw new Answer({
      status: 400,
      body: {
        errorMessages: [
          'Unbounded JQL queries are not allowed here. Please add a search restriction to your query.',
        ],
      },
    });
  const clauses = where.split(/\s+AND\s+/i).map((part) => {
    const c = /^(\w+)\s*=\s*(?:"([^"]*)"|([\w-]+))$/.exec(part.trim());
    if (!c || !['labels', 'project', 'key', 'status'].includes(c[1]!.toLowerCase()))
      throw new Answer({
        status: 400,
        body: {
          errorMessages: [`Error in the JQL Query: the clause "${part.trim()}" is not understood.`],
          errors: {},
        },
      });
    return { field: c[1]!.toLowerCase(), value: c[2] ?? c[3]! };
  });
  return { clauses, order };
}

export class FakeJira extends FakeTicketServer {
  readonly issues = new Map<string, JiraIssue>();
  private nextId = 10000;
  private readonly projectCounters = new Map<string, number>();
  readonly webhookDeliveries: { status: number; body: unknown }[] = [];
  /** Issue key → searches it is still hidden from (the index lag). */
  private readonly unindexed = new Map<string, number>();

  constructor(readonly options: FakeJiraOptions) {
    super();
  }

  protected override rateLimitBody(): unknown {
    return { errorMessages: ['Rate limit exceeded.'] };
  }

  private authorized(req: FakeRequest): boolean {
    const auth = req.headers.authorization;
    if (this.options.accessToken && auth === `Bearer ${this.options.accessToken}`) return true;
    const basic = basicCredentials(auth);
    return !!basic && basic[0] === this.options.email && basic[1] === this.options.apiToken;
  }

  private issue(keyOrId: string): JiraIssue {
    const issue = this.issues.get(keyOrId) ?? [...this.issues.values()].find((i) => i.id === keyOrId);
    if (!issue)
      throw new Answer({
        status: 404,
        body: {
          errorMessages: ['Issue does not exist or you do not have permission to see it.'],
          errors: {},
        },
      });
    return issue;
  }

  private statusJson(name: string) {
    const s = statuses[name]!;
    return {
      self: `${this.url}/rest/api/3/status/${s.id}`,
      id: s.id,
      name: s.name,
      statusCategory: {
        id: { new: 2, indeterminate: 4, done: 3 }[s.category],
        key: s.category,
        name: s.name,
      },
    };
  }

  private issueJson(issue: JiraIssue, fields: string[] | undefined) {
    const wanted = fields ?? ['*all'];
    const all = wanted.includes('*all') || wanted.includes('*navigable');
    const out: Record<string, unknown> = { id: issue.id };
    if (all || wanted.includes('key'))
      Object.assign(out, { key: issue.key, self: `${this.url}/rest/api/3/issue/${issue.id}` });
    const f: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(issue.fields))
      if ((all || wanted.includes(name)) && name !== 'status') f[name] = value;
    if (all || wanted.includes('status')) f.status = this.statusJson(issue.fields.status);
    if (Object.keys(f).length) out.fields = f;
    return out;
  }

  private touch(issue: JiraIssue): void {
    issue.fields.updated = new Date().toISOString();
  }

  protected handle(req: FakeRequest): FakeAnswer {
    if (!this.authorized(req))
      return {
        status: 401,
        body: {
          errorMessages: ['You are not authenticated. Authentication required to perform this operation.'],
        },
      };
    const p = req.path;
    let m: RegExpExecArray | null;

    if (p === '/rest/api/3/search' || p === '/rest/api/2/search')
      return {
        status: 410,
        body: {
          errorMessages: [
            'The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046',
          ],
          errors: {},
        },
      };
    if (p === '/rest/api/3/search/jql') return this.search(req);
    if (p === '/rest/api/3/issue' && req.method === 'POST') return this.create(req);
    if ((m = /^\/rest\/api\/3\/issue\/([^/]+)\/comment$/.exec(p))) {
      const issue = this.issue(m[1]!);
      if (req.method === 'POST') {
        const body = (req.body as { body?: unknown } | undefined)?.body;
        const problem = checkAdf(body) ?? tooLong(body);
        if (problem) return { status: 400, body: { errorMessages: [], errors: { comment: problem } } };
        const comment = {
          id: String(20000 + issue.comments.length + this.issues.size * 100),
          body,
          created: new Date().toISOString(),
        };
        issue.comments.push(comment);
        this.touch(issue);
        return {
          status: 201,
          body: { ...comment, self: `${this.url}/rest/api/3/issue/${issue.id}/comment/${comment.id}` },
        };
      }
      const startAt = Number(req.query.get('startAt') ?? 0);
      const maxResults = Math.min(Number(req.query.get('maxResults') ?? 5000), 100);
      const ordered =
        req.query.get('orderBy') === '-created' ? [...issue.comments].reverse() : issue.comments;
      return {
        status: 200,
        body: {
          startAt,
          maxResults,
          total: issue.comments.length,
          comments: ordered.slice(startAt, startAt + maxResults),
        },
      };
    }
    if ((m = /^\/rest\/api\/3\/issue\/([^/]+)\/transitions$/.exec(p))) {
      const issue = this.issue(m[1]!);
      if (req.method === 'GET') {
        const withFields = (req.query.get('expand') ?? '').includes('transitions.fields');
        return {
          status: 200,
          body: {
            transitions: transitionsFrom[issue.fields.status]!.map((t) => ({
              id: t.id,
              name: t.name,
              to: this.statusJson(t.to),
              hasScreen: t.to === 'Done',
              isAvailable: true,
              ...(withFields && t.to === 'Done'
                ? {
                    fields: {
                      resolution: {
                        required: true,
                        name: 'Resolution',
                        key: 'resolution',
                        allowedValues: [{ name: 'Done' }, { name: "Won't Do" }],
                      },
                    },
                  }
                : {}),
            })),
          },
        };
      }
      const body = req.body as
        { transition?: { id?: string }; fields?: { resolution?: { name?: string } } } | undefined;
      const t = transitionsFrom[issue.fields.status]!.find((x) => x.id === body?.transition?.id);
      if (!t)
        return {
          status: 400,
          body: {
            errorMessages: [`Transition id '${body?.transition?.id}' is not valid for this issue.`],
            errors: {},
          },
        };
      if (t.to === 'Done' && !body?.fields?.resolution?.name)
        return {
          status: 400,
          body: { errorMessages: [], errors: { resolution: 'Resolution is required.' } },
        };
      this.moveTo(issue, t.to, body?.fields?.resolution?.name);
      return { status: 204 };
    }
    if ((m = /^\/rest\/api\/3\/issue\/([^/]+)$/.exec(p))) {
      const issue = this.issue(m[1]!);
      if (req.method === 'GET') {
        const fields = req.query.get('fields')?.split(',');
        return { status: 200, body: this.issueJson(issue, fields) };
      }
      if (req.method === 'PUT') {
        const body = req.body as
          { fields?: Record<string, unknown>; update?: { labels?: { add?: string }[] } } | undefined;
        const problem = this.checkFields(body?.fields ?? {}, false);
        if (problem) return { status: 400, body: { errorMessages: [], errors: problem } };
        Object.assign(issue.fields, body?.fields ?? {});
        for (const op of body?.update?.labels ?? [])
          if (op.add && !issue.fields.labels.includes(op.add)) issue.fields.labels.push(op.add);
        this.touch(issue);
        return { status: 204 };
      }
    }
    return { status: 404, body: { errorMessages: [`No route for ${req.method} ${p}`] } };
  }

  private checkFields(
    fields: Record<string, unknown>,
    creating: boolean,
  ): Record<string, string> | undefined {
    const errors: Record<string, string> = {};
    if (creating || 'summary' in fields) {
      const summary = fields.summary;
      if (typeof summary !== 'string' || summary.trim() === '')
        errors.summary = 'You must specify a summary of the issue.';
      else if (summary.length > 255) errors.summary = 'Summary must be less than 255 characters.';
      else if (/[\r\n]/.test(summary))
        errors.summary = 'The summary is invalid because it contains newline characters.';
    }
    if ('description' in fields) {
      const problem = checkAdf(fields.description) ?? tooLong(fields.description);
      if (problem) errors.description = problem;
    }
    if (
      'labels' in fields &&
      (!Array.isArray(fields.labels) || fields.labels.some((l) => typeof l !== 'string' || /\s/.test(l)))
    )
      errors.labels = 'The label must not contain spaces.';
    if ('priority' in fields) {
      const name = (fields.priority as { name?: string } | undefined)?.name;
      if (
        !name ||
        !(this.options.priorities ?? ['Highest', 'High', 'Medium', 'Low', 'Lowest']).includes(name)
      )
        errors.priority = `Specify a valid priority; '${name}' is not one.`;
    }
    if ('duedate' in fields && !/^\d{4}-\d{2}-\d{2}$/.test(String(fields.duedate)))
      errors.duedate = "Error parsing date string: it must be in the format 'yyyy-MM-dd'.";
    return Object.keys(errors).length ? errors : undefined;
  }

  private create(req: FakeRequest): FakeAnswer {
    const body = req.body as
      { fields?: Record<string, unknown>; properties?: { key: string; value: unknown }[] } | undefined;
    const fields = body?.fields ?? {};
    const project = (fields.project as { key?: string } | undefined)?.key;
    const errors = this.checkFields(fields, true) ?? {};
    if (!project || !(this.options.projects ?? ['SEC']).includes(project))
      errors.project = 'Specify a valid project ID or key';
    const issuetype = (fields.issuetype as { name?: string } | undefined)?.name;
    if (!issuetype) errors.issuetype = 'Specify an issue type';
    if (Object.keys(errors).length) return { status: 400, body: { errorMessages: [], errors } };
    const n = (this.projectCounters.get(project!) ?? 0) + 1;
    this.projectCounters.set(project!, n);
    const id = String(this.nextId++);
    const key = `${project}-${n}`;
    const now = new Date().toISOString();
    const issue: JiraIssue = {
      id,
      key,
      fields: {
        summary: fields.summary as string,
        description: fields.description ?? null,
        labels: (fields.labels as string[] | undefined) ?? [],
        ...(fields.priority ? { priority: fields.priority as { name: string } } : {}),
        ...(fields.duedate ? { duedate: fields.duedate as string } : {}),
        issuetype: { name: issuetype! },
        project: { key: project! },
        status: 'To Do',
        resolution: null,
        created: now,
        updated: now,
      },
      properties: Object.fromEntries((body?.properties ?? []).map((p) => [p.key, p.value])),
      comments: [],
    };
    this.issues.set(key, issue);
    if (this.options.searchLag) this.unindexed.set(key, this.options.searchLag);
    return { status: 201, body: { id, key, self: `${this.url}/rest/api/3/issue/${id}` } };
  }

  private search(req: FakeRequest): FakeAnswer {
    const params =
      req.method === 'POST'
        ? (req.body as { jql?: string; nextPageToken?: string; maxResults?: number; fields?: string[] })
        : {
            jql: req.query.get('jql') ?? undefined,
            nextPageToken: req.query.get('nextPageToken') ?? undefined,
            maxResults: req.query.has('maxResults') ? Number(req.query.get('maxResults')) : undefined,
            fields: req.query.get('fields')?.split(','),
          };
    const { clauses, order } = parseJql(params.jql ?? '');
    // Issues the index has not caught up with yet are missing from this answer.
    const hidden = new Set<string>();
    for (const [key, left] of this.unindexed) {
      hidden.add(key);
      if (left <= 1) this.unindexed.delete(key);
      else this.unindexed.set(key, left - 1);
    }
    let found = [...this.issues.values()].filter(
      (issue) =>
        !hidden.has(issue.key) &&
        clauses.every((c) => {
          if (c.field === 'labels') return issue.fields.labels.includes(c.value);
          if (c.field === 'project') return issue.fields.project.key === c.value;
          if (c.field === 'key') return issue.key === c.value;
          return issue.fields.status === c.value;
        }),
    );
    if (order?.field === 'created')
      found = found.sort((a, b) => (Number(a.id) - Number(b.id)) * (order.desc ? -1 : 1));
    const start = params.nextPageToken
      ? Number(Buffer.from(params.nextPageToken, 'base64url').toString())
      : 0;
    const size = Math.min(params.maxResults ?? 50, 5000);
    const page = found.slice(start, start + size);
    const more = start + size < found.length;
    return {
      status: 200,
      body: {
        issues: page.map((i) => this.issueJson(i, params.fields?.length ? params.fields : ['id'])),
        ...(more ? { nextPageToken: Buffer.from(String(start + size)).toString('base64url') } : {}),
        isLast: !more,
      },
    };
  }

  private moveTo(issue: JiraIssue, status: string, resolution?: string): void {
    issue.fields.status = status;
    issue.fields.resolution = status === 'Done' ? { name: resolution ?? 'Done' } : null;
    this.touch(issue);
  }

  /** Issues carrying a label (what a person would see filtering the board). */
  withLabel(label: string): JiraIssue[] {
    return [...this.issues.values()].filter((i) => i.fields.labels.includes(label));
  }

  commentTexts(key: string): string[] {
    return (this.issues.get(key)?.comments ?? []).map((c) => adfPlainText(c.body));
  }

  /**
   * A person moves the issue (in the Jira UI); Jira then POSTs the signed issue_updated webhook.
   * Returns the webhook's HTTP status.
   */
  async humanTransition(
    key: string,
    to: 'To Do' | 'In Progress' | 'Done',
    user = 'Dana Reviewer',
    secret?: string,
  ): Promise<number> {
    const issue = this.issue(key);
    const from = issue.fields.status;
    this.moveTo(issue, to, to === 'Done' ? 'Done' : undefined);
    const hook = this.options.webhook;
    if (!hook) return 0;
    const body = JSON.stringify({
      timestamp: Date.now(),
      webhookEvent: 'jira:issue_updated',
      issue_event_type_name: 'issue_generic',
      user: { accountId: '5b10ac8d82e05b22cc7d4ef5', displayName: user },
      issue: {
        id: issue.id,
        key: issue.key,
        self: `${this.url}/rest/api/3/issue/${issue.id}`,
        fields: this.issueJson(issue, ['status', 'labels']).fields,
      },
      changelog: {
        id: '10100',
        items: [{ field: 'status', fieldtype: 'jira', fromString: from, toString: to }],
      },
    });
    const signature = createHmac('sha256', secret ?? hook.secret)
      .update(body)
      .digest('hex');
    const res = await fetch(hook.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-hub-signature': `sha256=${signature}`,
        'x-atlassian-webhook-identifier': String(Date.now()),
      },
      body,
    });
    const text = await res.text();
    this.webhookDeliveries.push({
      status: res.status,
      body: text ? (JSON.parse(text) as unknown) : undefined,
    });
    return res.status;
  }
}
