// Jira Cloud through jira.js 6 (its cloud client, REST v3): ADF descriptions, the enhanced
// /rest/api/3/search/jql search (the old /search answers 410 Gone), basic (email + API token) or
// OAuth 2.0 access-token auth. The campaign's external key is a label on the issue ("ctem-cmp-…";
// issues of earlier releases carry "ctem-ru-…", and the ledger says which).
import { createCloudClient, type CloudClient } from 'jira.js';
import type { Client, SendRequestOptions } from 'jira.js/core';
import { ApplicationFailure } from '@temporalio/activity';
import { durationMs } from '../../domain/config.ts';
import type { TicketRef } from '../../domain/ports.ts';
import type { JiraConfig } from './config.ts';
import type { TicketSystemDeps } from '../module.ts';
import {
  adfText,
  commentMarker,
  contentHash,
  renderAdf,
  textToAdf,
  type AdfNode,
  type TicketView,
} from '../content.ts';
import { RemoteTicketSystemBase, withMarker, type FindOptions, type RemoteStatus } from '../remote.ts';
import {
  basicAuth,
  HttpStatusError,
  parseRetryAfter,
  pause,
  transportPolicy,
  withRateLimit,
  type TransportPolicy,
} from '../transport.ts';

/** The message of a Jira error body: {"errorMessages": [...], "errors": {"field": "msg"}}. */
export function jiraErrorMessage(data: unknown): string {
  if (!data || typeof data !== 'object') return typeof data === 'string' ? data : '';
  const d = data as { errorMessages?: unknown; errors?: unknown; message?: unknown };
  const parts: string[] = [];
  if (Array.isArray(d.errorMessages)) parts.push(...d.errorMessages.map(String));
  if (d.errors && typeof d.errors === 'object')
    parts.push(...Object.entries(d.errors).map(([field, msg]) => `${field}: ${String(msg)}`));
  if (typeof d.message === 'string') parts.push(d.message);
  return parts.join('; ');
}

/**
 * The transport under jira.js's cloud client, which accepts any `Client`: ours aborts each request
 * on its signal (the request timeout and the activity's cancellation; the library's own transport
 * takes no signal) and fails with our HttpStatusError, Retry-After included. Query parameters are
 * written as jira.js writes them: arrays repeated, objects as JSON.
 */
export function jiraTransport(host: string, authorization: string, signal: AbortSignal): Client {
  const base = host.replace(/\/+$/, '');
  return {
    async sendRequest<T>(req: SendRequestOptions<T>): Promise<T> {
      const url = new URL(`${base}${req.url.startsWith('/') ? '' : '/'}${req.url}`);
      for (const [key, value] of Object.entries(req.searchParams ?? {})) {
        if (value === undefined || value === null) continue;
        if (Array.isArray(value)) for (const v of value) url.searchParams.append(key, String(v));
        else url.searchParams.set(key, typeof value === 'object' ? JSON.stringify(value) : String(value));
      }
      const hasBody = req.body !== undefined && req.body !== null;
      const res = await fetch(url, {
        method: req.method ?? 'GET',
        headers: {
          accept: 'application/json',
          authorization,
          ...(hasBody ? { 'content-type': 'application/json' } : {}),
          ...req.headers,
        },
        body: hasBody ? JSON.stringify(req.body) : undefined,
        signal,
      });
      const text = await res.text();
      let data: unknown = undefined;
      if (text)
        try {
          data = JSON.parse(text);
        } catch {
          data = undefined;
        }
      if (!res.ok)
        throw new HttpStatusError(
          res.status,
          (jiraErrorMessage(data) || text).slice(0, 500) || res.statusText,
          parseRetryAfter(res.headers.get('retry-after')),
        );
      // The body as Jira sent it: the fields read here are checked where they are used.
      return data as T;
    },
  };
}

interface JiraIssueStatus {
  name?: string;
  statusCategory?: { key?: string };
}

export class JiraTicketSystem extends RemoteTicketSystemBase {
  readonly name = 'jira';
  protected readonly dashboardUrl: string | undefined;
  readonly textLimit: number;
  private readonly policy: TransportPolicy;

  constructor(
    private readonly cfg: JiraConfig,
    private readonly deps: TicketSystemDeps,
  ) {
    super();
    this.dashboardUrl = cfg.dashboardUrl;
    this.textLimit = cfg.textLimit;
    this.policy = transportPolicy('jira', cfg);
  }

  private client(signal: AbortSignal): CloudClient {
    const auth = this.cfg.auth;
    const authorization =
      'email' in auth
        ? basicAuth(auth.email, this.deps.readSecret(auth.apiToken))
        : `Bearer ${this.deps.readSecret(auth.accessToken)}`;
    // A fresh client per request: the abort signal (timeout + activity cancellation) is per request.
    return createCloudClient(jiraTransport(this.cfg.url, authorization, signal));
  }

  /** One Jira call with timeout, 429 handling and failure classification. */
  private async call<T>(op: string, fn: (client: CloudClient) => Promise<T>): Promise<T> {
    return await withRateLimit(this.policy, op, async (signal) => await fn(this.client(signal)));
  }

  private refFor(key: string): TicketRef {
    return { system: this.name, key, url: `${this.cfg.url.replace(/\/$/, '')}/browse/${key}` };
  }

  /** The ADF description; Jira counts its JSON against the field's 32,767 characters. */
  protected describe(view: TicketView): AdfNode {
    return renderAdf({ kind: 'jira.adf', file: this.cfg.template, baseDir: this.deps.baseDir }, view);
  }

  protected override commentSize(text: string, marker: string): number {
    return JSON.stringify(textToAdf(withMarker(text, marker))).length;
  }

  private fields(view: TicketView): Record<string, unknown> {
    const priority = this.cfg.priorities[view.priority];
    return {
      summary: view.summary,
      description: this.describe(view),
      ...(priority ? { priority: { name: priority } } : {}),
      ...(view.slaDueDate ? { duedate: view.slaDueDate } : {}),
    };
  }

  contentHash(view: TicketView): string {
    return contentHash(this.fields(view));
  }

  /**
   * By the campaign's label. Jira's search is eventually consistent, so right after a create it may not
   * list the new issue: when an earlier create's answer was lost, a miss is searched again with
   * growing pauses (250 ms, doubling) until `searchLagWait` is used up. The number of searches
   * follows from the setting alone, not from how long each one took.
   */
  async find(externalKey: string, opts: FindOptions = {}): Promise<TicketRef | undefined> {
    const pauses: number[] = [];
    if (opts.afterUnrecordedCreate)
      for (let left = durationMs(this.cfg.searchLagWait), next = 250; left > 0; next *= 2) {
        pauses.push(Math.min(next, left));
        left -= next;
      }
    for (let i = 0; ; i++) {
      const found = await this.searchLabel(externalKey);
      if (found || i >= pauses.length) return found;
      await pause(pauses[i]!);
    }
  }

  private async searchLabel(externalKey: string): Promise<TicketRef | undefined> {
    // Labels are exact-match in JQL; the key is hex, so quoting is enough.
    const page = await this.call('search', (c) =>
      c.issueSearch.searchAndReconsileIssuesUsingJql({
        jql: `labels = "${externalKey}" ORDER BY created ASC`,
        fields: ['key'],
        maxResults: 5,
      }),
    );
    const first = page.issues?.[0];
    if (!first) return undefined;
    if (first.key) return this.refFor(first.key);
    // /search/jql returns only ids unless asked otherwise; read the key from the issue itself.
    const issue = await this.call('read issue', (c) =>
      c.issues.getIssue({ issueIdOrKey: first.id!, fields: ['status'] }),
    );
    if (!issue.key) throw new HttpStatusError(502, `issue ${first.id} was read without its key`);
    return this.refFor(issue.key);
  }

  async create(view: TicketView): Promise<TicketRef & { number?: string }> {
    const created = await this.call('create issue', (c) =>
      c.issues.createIssue({
        fields: {
          project: { key: this.cfg.project },
          issuetype: { name: this.cfg.issueType },
          labels: [...new Set([...this.cfg.labels, view.externalKey])],
          ...this.fields(view),
        } as Parameters<CloudClient['issues']['createIssue']>[0]['fields'],
        properties: [{ key: 'ctem', value: { campaignId: view.campaignId, externalKey: view.externalKey } }],
      }),
    );
    return { ...this.refFor(created.key), number: created.key };
  }

  async update(ref: TicketRef, view: TicketView): Promise<void> {
    await this.call('update issue', (c) =>
      c.issues.editIssue({
        issueIdOrKey: ref.key,
        fields: this.fields(view),
        update: { labels: [{ add: view.externalKey }] },
      }),
    );
  }

  async hasComment(ref: TicketRef, marker: string): Promise<boolean> {
    for (let startAt = 0; ;) {
      const page = await this.call('read comments', (c) =>
        c.issueComments.getComments({ issueIdOrKey: ref.key, startAt, maxResults: 100, orderBy: '-created' }),
      );
      const comments = page.comments ?? [];
      if (comments.some((cm) => adfText(cm.body).includes(marker))) return true;
      startAt += comments.length;
      if (comments.length === 0 || startAt >= (page.total ?? 0)) return false;
    }
  }

  async addComment(ref: TicketRef, text: string, marker: string): Promise<void> {
    await this.call('add comment', (c) =>
      c.issueComments.addComment({
        issueIdOrKey: ref.key,
        body: textToAdf(withMarker(text, marker)) as unknown as Parameters<
          CloudClient['issueComments']['addComment']
        >[0]['body'],
      }),
    );
  }

  private categoryOf(status: JiraIssueStatus | undefined): RemoteStatus {
    const key = status?.statusCategory?.key;
    const category =
      key === 'new' || key === 'indeterminate' || key === 'done' ? this.cfg.statusCategories[key] : 'open';
    return { category, remote: status?.name ?? key ?? 'unknown' };
  }

  async remoteStatus(ref: TicketRef): Promise<RemoteStatus> {
    const issue = await this.call('read issue', (c) =>
      c.issues.getIssue({ issueIdOrKey: ref.key, fields: ['status'] }),
    );
    return this.categoryOf(issue.fields?.status as JiraIssueStatus | undefined);
  }

  /** Category of a Jira webhook's issue status, with this site's mapping. */
  categoryOfStatus(status: JiraIssueStatus | undefined): RemoteStatus {
    return this.categoryOf(status);
  }

  async transition(ref: TicketRef, to: 'done' | 'open', note: string): Promise<void> {
    // The note first, so a crash after the transition still leaves it on the ticket exactly once.
    const marker = commentMarker(`jira:${ref.key}:${to}:${note}`);
    if (!(await this.hasComment(ref, marker))) await this.addComment(ref, note, marker);

    const { transitions = [] } = await this.call('read transitions', (c) =>
      c.issues.getTransitions({ issueIdOrKey: ref.key, expand: 'transitions.fields' }),
    );
    const preferred = to === 'done' ? this.cfg.transitions.close : this.cfg.transitions.reopen;
    const target = to === 'done' ? 'done' : 'open';
    const chosen =
      (preferred ? transitions.find((t) => t.name === preferred) : undefined) ??
      transitions.find((t) => this.categoryOf(t.to as JiraIssueStatus | undefined).category === target);
    if (!chosen?.id)
      throw ApplicationFailure.nonRetryable(
        `jira: no transition of ${ref.key} leads to a ${target} status (available: ${
          transitions.map((t) => t.name).join(', ') || 'none'
        }); set integrations.jira.transitions.${to === 'done' ? 'close' : 'reopen'}`,
        'TicketRequestRejected',
      );
    const resolutionField = (chosen.fields as Record<string, unknown> | undefined)?.resolution as
      { required?: boolean; allowedValues?: { name?: string }[] } | undefined;
    const resolution =
      to === 'done' && resolutionField
        ? (this.cfg.resolution ??
          (resolutionField.required ? resolutionField.allowedValues?.[0]?.name : undefined))
        : undefined;
    await this.call('transition issue', (c) =>
      c.issues.doTransition({
        issueIdOrKey: ref.key,
        transition: { id: chosen.id },
        ...(resolution ? { fields: { resolution: { name: resolution } } } : {}),
      }),
    );
  }
}
