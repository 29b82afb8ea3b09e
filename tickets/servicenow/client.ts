// ServiceNow through the Table API with Node's fetch: incident (or a configured table), basic or
// OAuth bearer auth, correlation_id as the campaign's external key, encoded queries with values escaped,
// sysparm_limit/sysparm_offset paging and sysparm_display_value where names are wanted.
import type { CampaignSummary, TicketRef } from '../../domain/ports.ts';
import type { ServiceNowConfig } from './config.ts';
import { commentMarker, contentHash, externalKeyPrefix, renderText, type TicketView } from '../content.ts';
import type { TicketSystemDeps } from '../module.ts';
import { RemoteTicketSystemBase, withMarker, type RemoteChange, type RemoteStatus } from '../remote.ts';
import { basicAuth, fetchJson, transportPolicy, type TransportPolicy } from '../transport.ts';

export type QueryOperator = '=' | '!=' | 'LIKE' | 'STARTSWITH' | '>=' | '>' | '<' | '<=';

/**
 * An encoded query (field op value joined by ^). A literal ^ inside a value is written ^^, the
 * escape ServiceNow's parser understands; the whole string is then URL-encoded by the caller.
 */
export function encodedQuery(
  terms: [field: string, op: QueryOperator, value: string][],
  orderBy?: string,
): string {
  const parts = terms.map(([field, op, value]) => {
    if (!/^[A-Za-z0-9_.]+$/.test(field)) throw new Error(`not a ServiceNow field name: ${field}`);
    if (/[\r\n]/.test(value)) throw new Error('a ServiceNow query value cannot contain a line break');
    return `${field}${op}${value.replace(/\^/g, '^^')}`;
  });
  if (orderBy) parts.push(`ORDERBY${orderBy}`);
  return parts.join('^');
}

/** The message of a Table API error body: {"error": {"message", "detail"}, "status": "failure"}. */
export function serviceNowErrorMessage(body: unknown, text: string): string {
  const error = (body as { error?: { message?: unknown; detail?: unknown } } | undefined)?.error;
  if (error && typeof error === 'object') {
    return [error.message, error.detail]
      .filter((p): p is string => typeof p === 'string' && p !== '')
      .join(': ');
  }
  return text.slice(0, 200);
}

interface Row {
  sys_id?: string;
  number?: string;
  state?: string | { value?: string; display_value?: string };
  sys_updated_on?: string | { value?: string; display_value?: string };
  correlation_id?: string;
  work_notes?: string | { value?: string; display_value?: string };
  comments?: string | { value?: string; display_value?: string };
}

function fieldValue(v: Row['state']): string {
  return typeof v === 'string' ? v : (v?.value ?? '');
}

function fieldDisplay(v: Row['state']): string {
  return typeof v === 'string' ? v : (v?.display_value ?? v?.value ?? '');
}

function query(params: Record<string, string | number | boolean>): string {
  return Object.entries(params)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
}

export class ServiceNowTicketSystem extends RemoteTicketSystemBase {
  readonly name = 'servicenow';
  protected readonly dashboardUrl: string | undefined;
  readonly textLimit: number;
  private readonly policy: TransportPolicy;
  /** Page size of list reads. */
  pageSize = 100;

  constructor(
    private readonly cfg: ServiceNowConfig,
    private readonly deps: TicketSystemDeps,
  ) {
    super();
    this.dashboardUrl = cfg.dashboardUrl;
    this.textLimit = cfg.textLimit;
    this.policy = transportPolicy('servicenow', cfg);
  }

  private authorization(): string {
    const auth = this.cfg.auth;
    return 'token' in auth
      ? `Bearer ${this.deps.readSecret(auth.token)}`
      : basicAuth(auth.username, this.deps.readSecret(auth.password));
  }

  private tableUrl(suffix = '', params: Record<string, string | number | boolean> = {}): string {
    const base = `${this.cfg.url.replace(/\/$/, '')}/api/now/table/${this.cfg.table}${suffix}`;
    const qs = query(params);
    return qs ? `${base}?${qs}` : base;
  }

  private async request(op: string, method: string, url: string, body?: unknown): Promise<{ body: unknown }> {
    return await fetchJson(
      this.policy,
      op,
      url,
      { method, headers: { authorization: this.authorization() }, body },
      serviceNowErrorMessage,
    );
  }

  private refFor(sysId: string): TicketRef {
    return {
      system: this.name,
      key: sysId,
      url: `${this.cfg.url.replace(/\/$/, '')}/nav_to.do?uri=${encodeURIComponent(`${this.cfg.table}.do?sys_id=${sysId}`)}`,
    };
  }

  /** Every row matching an encoded query, read page by page with sysparm_limit / sysparm_offset. */
  async list(
    encoded: string,
    fields: string[],
    displayValue: 'true' | 'false' | 'all' = 'false',
  ): Promise<Row[]> {
    const rows: Row[] = [];
    for (let offset = 0; ; offset += this.pageSize) {
      const { body } = await this.request(
        'list records',
        'GET',
        this.tableUrl('', {
          sysparm_query: encoded,
          sysparm_fields: fields.join(','),
          sysparm_display_value: displayValue,
          sysparm_exclude_reference_link: true,
          sysparm_limit: this.pageSize,
          sysparm_offset: offset,
        }),
      );
      const page = (body as { result?: Row[] } | undefined)?.result ?? [];
      rows.push(...page);
      if (page.length < this.pageSize) return rows;
    }
  }

  protected describe(view: TicketView): string {
    return renderText({ kind: 'servicenow.txt', file: this.cfg.template, baseDir: this.deps.baseDir }, view);
  }

  private fields(view: TicketView): Record<string, string> {
    const priority = this.cfg.priorities[view.priority];
    return {
      short_description: view.summary,
      description: this.describe(view),
      ...(priority ? { urgency: String(priority.urgency), impact: String(priority.impact) } : {}),
    };
  }

  contentHash(view: TicketView): string {
    return contentHash(this.fields(view));
  }

  async find(externalKey: string): Promise<TicketRef | undefined> {
    const { body } = await this.request(
      'find by correlation_id',
      'GET',
      this.tableUrl('', {
        sysparm_query: encodedQuery([['correlation_id', '=', externalKey]], 'sys_created_on'),
        sysparm_fields: 'sys_id,number',
        sysparm_limit: 1,
      }),
    );
    const row = (body as { result?: Row[] } | undefined)?.result?.[0];
    return row?.sys_id ? this.refFor(row.sys_id) : undefined;
  }

  async create(view: TicketView): Promise<TicketRef & { number?: string }> {
    const { body } = await this.request(
      'create record',
      'POST',
      this.tableUrl('', { sysparm_fields: 'sys_id,number' }),
      {
        ...this.cfg.fields,
        ...this.fields(view),
        correlation_id: view.externalKey,
        correlation_display: 'CTEM',
      },
    );
    const row = (body as { result?: Row } | undefined)?.result;
    if (!row?.sys_id) throw new Error('servicenow create record: the answer has no sys_id');
    return { ...this.refFor(row.sys_id), number: row.number };
  }

  async update(ref: TicketRef, view: TicketView, _campaign: CampaignSummary): Promise<void> {
    await this.request('update record', 'PATCH', this.tableUrl(`/${ref.key}`, { sysparm_fields: 'sys_id' }), {
      ...this.fields(view),
      correlation_id: view.externalKey,
    });
  }

  async hasComment(ref: TicketRef, marker: string): Promise<boolean> {
    // The journal field's display value holds every entry's text; reading it needs only table access.
    const { body } = await this.request(
      'read journal',
      'GET',
      this.tableUrl(`/${ref.key}`, { sysparm_fields: this.cfg.commentField, sysparm_display_value: true }),
    );
    const row = (body as { result?: Row } | undefined)?.result;
    return fieldDisplay(row?.[this.cfg.commentField]).includes(marker);
  }

  async addComment(ref: TicketRef, text: string, marker: string): Promise<void> {
    await this.request(
      'add journal entry',
      'PATCH',
      this.tableUrl(`/${ref.key}`, { sysparm_fields: 'sys_id' }),
      {
        [this.cfg.commentField]: withMarker(text, marker),
      },
    );
  }

  categoryOfState(state: string): RemoteStatus['category'] {
    return this.cfg.states[state] ?? 'open';
  }

  override landingCategory(to: 'done' | 'open'): RemoteStatus['category'] {
    return this.categoryOfState(String(to === 'done' ? this.cfg.closeState : this.cfg.reopenState));
  }

  async remoteStatus(ref: TicketRef): Promise<RemoteStatus> {
    const { body } = await this.request(
      'read state',
      'GET',
      this.tableUrl(`/${ref.key}`, { sysparm_fields: 'state,number', sysparm_display_value: 'all' }),
    );
    const row = (body as { result?: Row } | undefined)?.result;
    const value = fieldValue(row?.state);
    return { category: this.categoryOfState(value), remote: `${value} ${fieldDisplay(row?.state)}`.trim() };
  }

  async transition(ref: TicketRef, to: 'done' | 'open', note: string): Promise<void> {
    // One PATCH carries state and note together, so there is no half-done transition to repair.
    const body =
      to === 'done'
        ? { state: String(this.cfg.closeState), close_code: this.cfg.closeCode, close_notes: note }
        : {
            state: String(this.cfg.reopenState),
            [this.cfg.commentField]: withMarker(note, commentMarker(`servicenow:${ref.key}:open:${note}`)),
          };
    await this.request(
      to === 'done' ? 'resolve record' : 'reopen record',
      'PATCH',
      this.tableUrl(`/${ref.key}`),
      body,
    );
  }

  /**
   * Records of ours updated at or after a position (sys_updated_on, UTC as the Table API returns it
   * with sysparm_display_value=false). A reconciliation for missed outbound REST calls.
   */
  async changedSince(position: string | undefined): Promise<{ changes: RemoteChange[]; position: string }> {
    // Every key of ours, old ("ctem-ru-") and new ("ctem-cmp-"); the ledger tells ours from others.
    const terms: [string, QueryOperator, string][] = [['correlation_id', 'STARTSWITH', externalKeyPrefix]];
    if (position) terms.push(['sys_updated_on', '>=', position]);
    const rows = await this.list(encodedQuery(terms, 'sys_updated_on'), [
      'sys_id',
      'state',
      'sys_updated_on',
    ]);
    let next = position ?? '';
    const changes = rows
      .filter((r) => r.sys_id)
      .map((r) => {
        const modifiedAt = fieldValue(r.sys_updated_on);
        if (modifiedAt > next) next = modifiedAt;
        const state = fieldValue(r.state);
        return { key: r.sys_id!, category: this.categoryOfState(state), remote: state, modifiedAt };
      });
    return { changes, position: next };
  }
}
