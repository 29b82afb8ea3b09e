// GLPI through its legacy REST API (apirest.php): initSession with App-Token and a user token,
// Ticket create/update, Item_Ticket links to the campaign's assets (Computers found by name through
// the search engine, a batch of names per request, linked in one bulk add), ITILFollowup for
// comments, killSession at the end. externalid carries the campaign's external key. GLPI has no
// outbound webhooks, so changes are read by polling (changedSince).
import { AsyncLocalStorage } from 'node:async_hooks';
import { ApplicationFailure } from '@temporalio/activity';
import type { CampaignSummary, TicketRef } from '../../domain/ports.ts';
import type { GlpiConfig } from './config.ts';
import { commentMarker, contentHash, externalKeyPrefix, renderText, type TicketView } from '../content.ts';
import type { TicketSystemDeps } from '../module.ts';
import { RemoteTicketSystemBase, withMarker, type RemoteChange, type RemoteStatus } from '../remote.ts';
import { fetchJson, transportPolicy, type TransportPolicy } from '../transport.ts';

/** GLPI errors are ["ERROR_CODE", "message"]. */
export function glpiErrorMessage(body: unknown, text: string): string {
  if (Array.isArray(body)) return body.map(String).join(': ');
  return text.slice(0, 200);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Plain text as GLPI's rich-text HTML: paragraphs and line breaks. */
function textToHtml(text: string): string {
  return text
    .split(/\n{2,}/)
    .map((block) => `<p>${block.split('\n').map(escapeHtml).join('<br>')}</p>`)
    .join('');
}

interface TicketRow {
  id?: number;
  status?: number;
  date_mod?: string;
  externalid?: string;
}

/** "0-49/123" → 123. */
function totalOf(contentRange: string | null): number | undefined {
  const m = /\/(\d+)$/.exec(contentRange ?? '');
  return m ? Number(m[1]) : undefined;
}

export class GlpiTicketSystem extends RemoteTicketSystemBase {
  readonly name = 'glpi';
  protected readonly dashboardUrl: string | undefined;
  readonly textLimit: number;
  private readonly policy: TransportPolicy;
  private readonly sessions = new AsyncLocalStorage<{ token: string }>();
  /** Page size of list reads (range=a-b). */
  pageSize = 50;
  /** Asset names looked up per search request (each name is one OR'ed criterion, with its short form). */
  namesPerSearch = 25;

  constructor(
    private readonly cfg: GlpiConfig,
    private readonly deps: TicketSystemDeps,
  ) {
    super();
    this.dashboardUrl = cfg.dashboardUrl;
    this.textLimit = cfg.textLimit;
    this.policy = transportPolicy('glpi', cfg);
  }

  private url(path: string): string {
    return `${this.cfg.url.replace(/\/$/, '')}/${path}`;
  }

  private appHeaders(): Record<string, string> {
    return this.cfg.appToken ? { 'App-Token': this.deps.readSecret(this.cfg.appToken) } : {};
  }

  /** One login for a sequence of calls; nested sessions reuse the outer one. */
  override async session<T>(fn: () => Promise<T>): Promise<T> {
    if (this.sessions.getStore()) return await fn();
    const { body } = await fetchJson(
      this.policy,
      'initSession',
      this.url('initSession'),
      {
        headers: {
          ...this.appHeaders(),
          authorization: `user_token ${this.deps.readSecret(this.cfg.userToken)}`,
        },
      },
      glpiErrorMessage,
    );
    const token = (body as { session_token?: unknown } | undefined)?.session_token;
    if (typeof token !== 'string') throw new Error('glpi initSession: the answer has no session_token');
    try {
      return await this.sessions.run({ token }, fn);
    } finally {
      await fetchJson(
        this.policy,
        'killSession',
        this.url('killSession'),
        { headers: { ...this.appHeaders(), 'Session-Token': token } },
        glpiErrorMessage,
      ).catch(() => undefined);
    }
  }

  private async request(op: string, method: string, path: string, body?: unknown) {
    const store = this.sessions.getStore();
    if (!store) throw new Error(`glpi ${op} called outside a session`);
    return await fetchJson(
      this.policy,
      op,
      this.url(path),
      { method, headers: { ...this.appHeaders(), 'Session-Token': store.token }, body },
      glpiErrorMessage,
    );
  }

  /** Every row of a collection, page by page (range=a-b, Content-Range: a-b/total). */
  private async listAll<T>(
    op: string,
    path: string,
    params: string,
    stop?: (row: T) => boolean,
  ): Promise<T[]> {
    const rows: T[] = [];
    for (let start = 0; ; start += this.pageSize) {
      const sep = params ? '&' : '';
      const res = await this.request(
        op,
        'GET',
        `${path}?${params}${sep}range=${start}-${start + this.pageSize - 1}`,
      );
      const page = Array.isArray(res.body) ? (res.body as T[]) : [];
      rows.push(...page);
      if (stop && page.some(stop)) return rows;
      const total = totalOf(res.headers.get('content-range'));
      if (page.length < this.pageSize || total === undefined || start + page.length >= total) return rows;
    }
  }

  private refFor(id: number | string): TicketRef {
    const base = this.cfg.url.replace(/\/apirest\.php\/?$/, '').replace(/\/$/, '');
    return { system: this.name, key: String(id), url: `${base}/front/ticket.form.php?id=${id}` };
  }

  protected describe(view: TicketView): string {
    return renderText({ kind: 'glpi.html', file: this.cfg.template, baseDir: this.deps.baseDir }, view);
  }

  protected override commentSize(text: string, marker: string): number {
    return textToHtml(withMarker(text, marker)).length;
  }

  private fields(view: TicketView): Record<string, unknown> {
    const urgency = this.cfg.urgencies[view.priority];
    return {
      name: view.summary,
      content: this.describe(view),
      ...(urgency ? { urgency } : {}),
    };
  }

  contentHash(view: TicketView): string {
    return contentHash({ ...this.fields(view), assets: view.assets });
  }

  async find(externalKey: string): Promise<TicketRef | undefined> {
    const res = await this.request(
      'find by externalid',
      'GET',
      `Ticket?searchText[externalid]=${encodeURIComponent(`^${externalKey}$`)}&sort=id&order=ASC&range=0-0`,
    );
    const row = Array.isArray(res.body) ? (res.body as TicketRow[])[0] : undefined;
    return row?.id !== undefined ? this.refFor(row.id) : undefined;
  }

  async create(view: TicketView, _campaign: CampaignSummary): Promise<TicketRef & { number?: string }> {
    const res = await this.request('create ticket', 'POST', 'Ticket', {
      input: {
        ...this.fields(view),
        externalid: view.externalKey,
        type: this.cfg.ticketType,
        ...(this.cfg.entity !== undefined ? { entities_id: this.cfg.entity } : {}),
        ...(this.cfg.category !== undefined ? { itilcategories_id: this.cfg.category } : {}),
        ...(view.slaDue ? { time_to_resolve: view.slaDue.replace('T', ' ').slice(0, 19) } : {}),
      },
    });
    const id = (res.body as { id?: unknown } | undefined)?.id;
    if (typeof id !== 'number')
      throw new Error(`glpi create ticket: the answer has no id (${glpiErrorMessage(res.body, '')})`);
    const ref = this.refFor(id);
    await this.linkAssets(ref, view);
    return { ...ref, number: String(id) };
  }

  async update(ref: TicketRef, view: TicketView, _campaign: CampaignSummary): Promise<void> {
    const res = await this.request('update ticket', 'PUT', `Ticket/${ref.key}`, { input: this.fields(view) });
    const results = Array.isArray(res.body) ? (res.body as Record<string, unknown>[]) : [];
    const failed = results.find((r) => r[ref.key] === false);
    if (failed) throw new Error(`glpi update ticket ${ref.key}: ${String(failed.message ?? 'refused')}`);
    await this.linkAssets(ref, view);
  }

  /**
   * Link the ticket to each of its assets GLPI knows by name (the full name, else the short host
   * name); assets GLPI does not know stay unlinked, and links already there are kept. Hundreds of
   * assets cost a few searches and one bulk add, not a request each.
   */
  private async linkAssets(ref: TicketRef, view: TicketView): Promise<void> {
    const itemtype = this.cfg.assetItemtype;
    const linked = new Set(
      (
        await this.listAll<{ itemtype?: string; items_id?: number }>(
          'read linked items',
          `Ticket/${ref.key}/Item_Ticket`,
          '',
        )
      )
        .filter((l) => l.itemtype === itemtype)
        .map((l) => l.items_id),
    );
    const ids = await this.assetIds(view.assets);
    const toLink = [...new Set(view.assets.map((a) => ids.get(a)))].filter(
      (id): id is number => id !== undefined && !linked.has(id),
    );
    for (let i = 0; i < toLink.length; i += 100) {
      const batch = toLink.slice(i, i + 100);
      const res = await this.request('link assets', 'POST', 'Item_Ticket', {
        input: batch.map((id) => ({ itemtype, items_id: id, tickets_id: Number(ref.key) })),
      });
      // A bulk add answers per item: [{id, message}], with id false where it was refused.
      const results = Array.isArray(res.body) ? (res.body as { id?: unknown; message?: unknown }[]) : [];
      const refused = results
        .map((r, k) => ({ r, id: batch[k] }))
        .filter(({ r }) => r.id === false || r.id === undefined);
      if (refused.length)
        throw ApplicationFailure.nonRetryable(
          `glpi link assets to ticket ${ref.key}: ${refused
            .map(({ r, id }) => `${itemtype} ${id}: ${String(r.message ?? 'refused')}`)
            .join('; ')}`,
          'TicketRequestRejected',
        );
    }
  }

  /**
   * The ids of the assets GLPI knows, by name: the search engine (search/<itemtype>) with one
   * "name is exactly …" criterion per name, OR'ed, a batch of names per request. Names are compared
   * as GLPI does (case-insensitively); with two items of one name, the older one.
   */
  private async assetIds(assets: string[]): Promise<Map<string, number>> {
    const candidates = new Map<string, string[]>();
    for (const asset of assets) {
      const name = asset.replace(/^host:/, '');
      candidates.set(asset, [...new Set([name, name.split('.')[0]!])]);
    }
    const names = [...new Set([...candidates.values()].flat())];
    const found = new Map<string, number>();
    for (let i = 0; i < names.length; i += this.namesPerSearch) {
      const batch = names.slice(i, i + this.namesPerSearch);
      for (const row of await this.searchByName(batch)) {
        const key = row.name.toLowerCase();
        const held = found.get(key);
        if (held === undefined || row.id < held) found.set(key, row.id);
      }
    }
    const ids = new Map<string, number>();
    for (const [asset, options] of candidates) {
      const id = options.map((n) => found.get(n.toLowerCase())).find((x) => x !== undefined);
      if (id !== undefined) ids.set(asset, id);
    }
    return ids;
  }

  /** Items of the asset type named exactly one of `names` (search option 1 is the name, 2 the id). */
  private async searchByName(names: string[]): Promise<{ name: string; id: number }[]> {
    const itemtype = this.cfg.assetItemtype;
    const params: [string, string][] = names.flatMap((name, i): [string, string][] => [
      ...(i > 0 ? [[`criteria[${i}][link]`, 'OR'] as [string, string]] : []),
      [`criteria[${i}][field]`, '1'],
      [`criteria[${i}][searchtype]`, 'contains'],
      [`criteria[${i}][value]`, `^${name}$`],
    ]);
    params.push(['forcedisplay[0]', '1'], ['forcedisplay[1]', '2']);
    const query = params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
    const rows: { name: string; id: number }[] = [];
    for (let start = 0; ; start += this.pageSize) {
      const res = await this.request(
        'find assets',
        'GET',
        `search/${itemtype}?${query}&range=${start}-${start + this.pageSize - 1}`,
      );
      const body = res.body as { totalcount?: number; data?: unknown } | undefined;
      // Rows come as a list, or keyed by item id (withindexes); each keyed by search option.
      const data = Array.isArray(body?.data) ? body.data : Object.values(body?.data ?? {});
      for (const row of data as Record<string, unknown>[]) {
        const id = Number(row['2']);
        if (Number.isInteger(id) && typeof row['1'] === 'string') rows.push({ name: row['1'], id });
      }
      const total = body?.totalcount ?? 0;
      if (data.length < this.pageSize || start + data.length >= total) return rows;
    }
  }

  async hasComment(ref: TicketRef, marker: string): Promise<boolean> {
    const followups = await this.listAll<{ content?: string }>(
      'read followups',
      `Ticket/${ref.key}/ITILFollowup`,
      '',
      (f) => (f.content ?? '').includes(marker),
    );
    return followups.some((f) => (f.content ?? '').includes(marker));
  }

  async addComment(ref: TicketRef, text: string, marker: string): Promise<void> {
    await this.request('add followup', 'POST', 'ITILFollowup', {
      input: {
        itemtype: 'Ticket',
        items_id: Number(ref.key),
        content: textToHtml(withMarker(text, marker)),
        is_private: 0,
      },
    });
  }

  categoryOfStatus(status: number | undefined): RemoteStatus['category'] {
    return this.cfg.statuses[String(status)] ?? 'open';
  }

  override landingCategory(to: 'done' | 'open'): RemoteStatus['category'] {
    return this.categoryOfStatus(to === 'done' ? this.cfg.closeStatus : this.cfg.reopenStatus);
  }

  async remoteStatus(ref: TicketRef): Promise<RemoteStatus> {
    const res = await this.request('read ticket', 'GET', `Ticket/${ref.key}`);
    const status = (res.body as TicketRow | undefined)?.status;
    return { category: this.categoryOfStatus(status), remote: String(status ?? 'unknown') };
  }

  async transition(ref: TicketRef, to: 'done' | 'open', note: string): Promise<void> {
    // The note first (idempotent by its marker), then the status: a crash in between repeats nothing.
    const marker = commentMarker(`glpi:${ref.key}:${to}:${note}`);
    if (!(await this.hasComment(ref, marker))) await this.addComment(ref, note, marker);
    const status = to === 'done' ? this.cfg.closeStatus : this.cfg.reopenStatus;
    const res = await this.request(
      to === 'done' ? 'close ticket' : 'reopen ticket',
      'PUT',
      `Ticket/${ref.key}`,
      {
        input: { status },
      },
    );
    const results = Array.isArray(res.body) ? (res.body as Record<string, unknown>[]) : [];
    const failed = results.find((r) => r[ref.key] === false);
    if (failed)
      throw new Error(`glpi set status of ticket ${ref.key}: ${String(failed.message ?? 'refused')}`);
  }

  /**
   * Our tickets modified at or after a position, newest first until older than it. The position is
   * GLPI's own date_mod text (server time, "YYYY-MM-DD HH:MM:SS"), so no clock or zone is assumed.
   */
  async changedSince(position: string | undefined): Promise<{ changes: RemoteChange[]; position: string }> {
    const rows = await this.listAll<TicketRow>(
      'poll tickets',
      'Ticket',
      // Every key of ours, old ("ctem-ru-") and new ("ctem-cmp-"); the ledger tells ours from others.
      `searchText[externalid]=${encodeURIComponent(`^${externalKeyPrefix}`)}&sort=date_mod&order=DESC`,
      (r) => position !== undefined && (r.date_mod ?? '') < position,
    );
    let next = position ?? '';
    const changes: RemoteChange[] = [];
    for (const r of rows) {
      const modifiedAt = r.date_mod ?? '';
      if (r.id === undefined || (position !== undefined && modifiedAt < position)) continue;
      if (modifiedAt > next) next = modifiedAt;
      changes.push({
        key: String(r.id),
        category: this.categoryOfStatus(r.status),
        remote: String(r.status),
        modifiedAt,
      });
    }
    return { changes, position: next };
  }
}
