// The web dashboard on the process's HTTP server (/dashboard): the exposure queue with filters, an
// exposure's timeline with its evidence and reasons, the weekly digest with its charts, and the
// same decisions as the chat bots, sent through the one decision API (bots/decisions.ts), whose
// workflow validator authorizes them. Server-rendered (templates/dashboard/*.hbs, every value
// escaped), no script and no external resource; a strict Content-Security-Policy says so.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import Handlebars from 'handlebars';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Pool } from '../../runtime/pool.ts';
import type { Config, Person } from '../../domain/config.ts';
import { exposureStates, type Actor } from '../../domain/exposure.ts';
import { priorities, priorityLabels, type PriorityKey } from '../../domain/health.ts';
import { projectRoot } from '../../runtime/paths.ts';
import { digestSettings } from '../../reporting/config.ts';
import { renderDigestPage } from '../../reporting/render.ts';
import { buildDigest } from '../../reporting/report.ts';
import { parseWeek, previousWeek, weekContaining } from '../../reporting/week.ts';
import { DecisionApi, type DecisionInput } from '../../chat/decisions.ts';
import type { HttpServer } from '../http.ts';
import { cookies, DashboardAuth, type Session } from './auth.ts';
import { postgresSessionStore } from './sessions.ts';
import { dashboardSettings } from './config.ts';
import { cleanFilter, exposureDetail, owners, queue, slaStatuses } from './queries.ts';

const LOGIN_COOKIE = 'ctem_login';
const BODY_LIMIT = 64 * 1024;
const CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export interface DashboardDeps {
  http: HttpServer;
  config: Config;
  pool: Pool;
  client: Client;
  log: Logger;
  baseDir: string;
  env?: NodeJS.ProcessEnv;
  /** The chat bots' decision API when they run, so dashboard decisions show on chat messages too. */
  decisions?: DecisionApi;
  now?: () => number;
}

type Templates = Record<'login' | 'queue' | 'exposure' | 'message', HandlebarsTemplateDelegate>;

function loadTemplates(): Templates {
  const dir = path.join(projectRoot, 'templates', 'dashboard');
  const hb = Handlebars.create();
  hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hb.registerPartial('head', readFileSync(path.join(dir, '_layout_head.hbs'), 'utf8'));
  hb.registerPartial('foot', readFileSync(path.join(dir, '_layout_foot.hbs'), 'utf8'));
  const t = (name: string) =>
    hb.compile(readFileSync(path.join(dir, `${name}.hbs`), 'utf8'), { strict: false });
  return { login: t('login'), queue: t('queue'), exposure: t('exposure'), message: t('message') };
}

function when(d: Date | string | null | undefined): string {
  if (!d) return '';
  const iso = typeof d === 'string' ? d : d.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > BODY_LIMIT) return undefined;
    chunks.push(c as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

interface Viewer {
  person: Person;
  session?: Session;
  /** Scopes the person holds a role in: all they may see. */
  scopes: string[];
}

export class Dashboard {
  private readonly templates = loadTemplates();
  readonly decisions: DecisionApi;

  private constructor(
    private readonly deps: DashboardDeps,
    readonly auth: DashboardAuth,
  ) {
    this.decisions =
      deps.decisions ??
      new DecisionApi({
        client: deps.client,
        pool: deps.pool,
        config: deps.config,
        log: deps.log,
        ...(deps.now ? { now: deps.now } : {}),
      });
  }

  /** Mount on the HTTP server; undefined (and nothing mounted) when no account or token is configured. */
  static mount(deps: DashboardDeps): Dashboard | undefined {
    const settings = dashboardSettings(deps.config);
    if (!settings) return undefined;
    const auth = new DashboardAuth(
      settings,
      { env: deps.env, baseDir: deps.baseDir },
      deps.now,
      postgresSessionStore(deps.pool),
    );
    if (!auth.enabled) {
      deps.log.warn(
        'dashboard: no account or token configured (dashboard.accounts / dashboard.tokens); not mounted',
      );
      return undefined;
    }
    const d = new Dashboard(deps, auth);
    const wrap =
      (fn: (req: IncomingMessage, res: ServerResponse) => Promise<void>) =>
      async (req: IncomingMessage, res: ServerResponse) => {
        res.setHeader('content-security-policy', CSP);
        res.setHeader('x-content-type-options', 'nosniff');
        res.setHeader('referrer-policy', 'same-origin');
        res.setHeader('cache-control', 'no-store');
        await auth.ready();
        await fn(req, res);
      };
    deps.http
      .route(
        'GET',
        '/dashboard',
        wrap((q, s) => d.queuePage(q, s)),
      )
      .route(
        'GET',
        '/dashboard/login',
        wrap((q, s) => d.loginPage(q, s)),
      )
      .route(
        'POST',
        '/dashboard/login',
        wrap((q, s) => d.login(q, s)),
      )
      .route(
        'POST',
        '/dashboard/logout',
        wrap((q, s) => d.logout(q, s)),
      )
      .route(
        'GET',
        '/dashboard/exposure',
        wrap((q, s) => d.exposurePage(q, s)),
      )
      .route(
        'POST',
        '/dashboard/decide',
        wrap((q, s) => d.decide(q, s)),
      )
      .route(
        'GET',
        '/dashboard/digest',
        wrap((q, s) => d.digestPage(q, s)),
      );
    return d;
  }

  private html(
    res: ServerResponse,
    status: number,
    body: string,
    headers: Record<string, string | string[]> = {},
  ) {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', ...headers });
    res.end(body);
  }

  private message(res: ServerResponse, status: number, heading: string, message: string, viewer?: Viewer) {
    this.html(
      res,
      status,
      this.templates.message({
        title: heading,
        heading,
        message,
        ...(viewer
          ? {
              person: viewer.person,
              csrf: viewer.session ? this.auth.csrfToken(viewer.session) : '',
              digest: this.scopesWithoutDigest(viewer.person.id).length === 0,
            }
          : {}),
      }),
    );
  }

  /** The signed-in person (session cookie or API token), or a response sent (login redirect, 403). */
  private async viewer(req: IncomingMessage, res: ServerResponse): Promise<Viewer | undefined> {
    const session = await this.auth.session(req);
    const personId = session?.personId ?? this.auth.bearer(req);
    if (!personId) {
      if (req.headers.authorization) this.message(res, 401, 'Not signed in', 'The API token is not valid.');
      else {
        res.writeHead(303, { location: '/dashboard/login' });
        res.end();
      }
      return undefined;
    }
    const person = this.decisions.people.person(personId);
    const scopes = this.deps.config.scopes
      .filter((s) => this.decisions.people.rolesIn(personId, s.name).length > 0)
      .map((s) => s.name);
    if (!person || scopes.length === 0) {
      this.deps.log.warn({ personId }, 'dashboard: a signed-in person holds no role in any scope');
      this.message(
        res,
        403,
        'Not authorized',
        `${person?.name ?? personId} holds no role in any scope (scopes[].roles in ctem.yaml), so there is nothing to show.`,
        person ? { person, scopes, ...(session ? { session } : {}) } : undefined,
      );
      return undefined;
    }
    return { person, scopes, ...(session ? { session } : {}) };
  }

  private async loginPage(
    _req: IncomingMessage,
    res: ServerResponse,
    error?: string,
    user?: string,
    status = 200,
  ) {
    const token = randomBytes(18).toString('base64url');
    const secure = this.auth.cookie('', 0).includes('Secure') ? '; Secure' : '';
    this.html(res, status, this.templates.login({ title: 'Sign in', csrf: token, error, user }), {
      'set-cookie': `${LOGIN_COOKIE}=${token}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=1800${secure}`,
    });
  }

  private async login(req: IncomingMessage, res: ServerResponse) {
    const form = await readForm(req);
    const expected = cookies(req)[LOGIN_COOKIE];
    if (!form || !expected || form.get('_csrf') !== expected) {
      this.message(
        res,
        403,
        'Refused',
        'The sign-in form expired or did not come from this site (CSRF check failed). Reload the page and try again.',
      );
      return;
    }
    const user = (form.get('user') ?? '').trim();
    const result = await this.auth.login(user, form.get('password') ?? '');
    if (!result.ok) {
      this.deps.log.warn({ user }, 'dashboard: sign-in refused');
      await this.loginPage(req, res, result.reason, user, 401);
      return;
    }
    const { cookie } = this.auth.issue(result.personId);
    this.deps.log.info({ personId: result.personId }, 'dashboard: signed in');
    res.writeHead(303, { location: '/dashboard', 'set-cookie': cookie });
    res.end();
  }

  private async logout(req: IncomingMessage, res: ServerResponse) {
    const session = await this.auth.session(req);
    const form = await readForm(req);
    if (session && form && this.auth.checkCsrf(session, form.get('_csrf'))) await this.auth.revoke(session);
    res.writeHead(303, { location: '/dashboard/login', 'set-cookie': this.auth.clearCookie() });
    res.end();
  }

  private common(v: Viewer, page: string, title: string) {
    return {
      person: v.person,
      csrf: v.session ? this.auth.csrfToken(v.session) : '',
      digest: this.scopesWithoutDigest(v.person.id).length === 0,
      page,
      title,
    };
  }

  private async queuePage(req: IncomingMessage, res: ServerResponse) {
    const v = await this.viewer(req, res);
    if (!v) return;
    const url = new URL(req.url ?? '/', 'http://localhost');
    const filter = cleanFilter(url.searchParams, v.scopes);
    const [{ rows, total }, ownerList] = await Promise.all([
      queue(this.deps.pool, v.scopes, filter, new Date((this.deps.now ?? Date.now)())),
      owners(this.deps.pool, v.scopes),
    ]);
    this.html(
      res,
      200,
      this.templates.queue({
        ...this.common(v, 'queue', 'Exposure queue'),
        filter,
        scopes: v.scopes,
        priorities: priorities.map((key) => ({ key, label: priorityLabels[key] })),
        states: exposureStates,
        slaStatuses,
        owners: ownerList,
        total,
        shown: rows.length,
        truncated: total > rows.length,
        rows: rows.map((r) => ({
          ...r,
          priorityLabel: r.priority ? (priorityLabels[r.priority as PriorityKey] ?? r.priority) : '—',
          slaDue: when(r.slaDue),
        })),
      }),
    );
  }

  private async exposurePage(
    req: IncomingMessage,
    res: ServerResponse,
    viewer?: Viewer,
    id?: string,
    extra: { result?: { tone: 'ok' | 'refused'; text: string }; problems?: string[] } = {},
    status = 200,
  ) {
    const v = viewer ?? (await this.viewer(req, res));
    if (!v) return;
    const exposureId = id ?? new URL(req.url ?? '/', 'http://localhost').searchParams.get('id') ?? '';
    const x = await exposureDetail(this.deps.pool, exposureId);
    if (!x || !x.scope || !v.scopes.includes(x.scope)) {
      this.message(res, 404, 'Not found', `No exposure ${exposureId} in the scopes you hold a role in.`, v);
      return;
    }
    const scope = x.scope;
    const priorityKey =
      (priorities as readonly string[]).find((p) => priorityLabels[p as PriorityKey] === x.priority) ??
      'track';
    this.html(
      res,
      status,
      this.templates.exposure({
        ...this.common(v, 'exposure', `${x.weakness} on ${x.asset}`),
        ...extra,
        x: {
          ...x,
          priorityKey,
          slaDue: when(x.slaDue),
          slaBreachedAt: when(x.slaBreachedAt),
          firstSeen: when(x.firstSeen),
          lastSeen: when(x.lastSeen),
          snoozedUntil: when(x.snoozedUntil),
          riskAccepted: x.riskAccepted ? { ...x.riskAccepted, until: when(x.riskAccepted.until) } : null,
          evidence: x.evidence.map((e) => ({
            ...e,
            firstSeen: when(e.firstSeen),
            lastSeen: when(e.lastSeen),
          })),
          timeline: x.timeline.map((t) => ({ ...t, at: when(t.at) })),
        },
        snoozeChoices: this.decisions.snoozeChoices(scope),
        assignable: this.decisions.people.assignable(scope),
      }),
    );
  }

  private async decide(req: IncomingMessage, res: ServerResponse) {
    const v = await this.viewer(req, res);
    if (!v) return;
    const form = await readForm(req);
    if (!form) {
      this.message(
        res,
        400,
        'Refused',
        'Send the decision as a form (application/x-www-form-urlencoded, at most 64 KiB).',
        v,
      );
      return;
    }
    // A cookie is sent by the browser on its own, so a cookie session must prove the form is ours.
    if (v.session && !this.auth.checkCsrf(v.session, form.get('_csrf'))) {
      this.deps.log.warn({ personId: v.person.id }, 'dashboard: decision without a valid CSRF token refused');
      this.message(
        res,
        403,
        'Refused',
        'This form did not come from the dashboard (CSRF check failed). Reload the page and try again.',
        v,
      );
      return;
    }
    const id = form.get('id') ?? '';
    const x = await exposureDetail(this.deps.pool, id);
    if (!x || !x.scope || !v.scopes.includes(x.scope)) {
      this.message(res, 404, 'Not found', `No exposure ${id} in the scopes you hold a role in.`, v);
      return;
    }
    const scope = x.scope;
    const text = (k: string) => (form.get(k) ?? '').trim();
    let input: DecisionInput | undefined;
    switch (form.get('kind')) {
      case 'approve':
        input = { kind: 'approve', ...(text('comment') ? { comment: text('comment') } : {}) };
        break;
      case 'snooze': {
        const days = Number(text('days'));
        input = {
          kind: 'snooze',
          until: Number.isInteger(days) && days > 0 ? this.decisions.snoozeUntil(scope, days) : '',
          ...(text('reason') ? { reason: text('reason') } : {}),
        };
        break;
      }
      case 'acceptRisk':
        input = {
          kind: 'acceptRisk',
          justification: text('justification'),
          expires: this.decisions.expiryFromDate(scope, text('expires')) ?? '',
        };
        break;
      case 'markFalsePositive':
        input = { kind: 'markFalsePositive', reason: text('reason') };
        break;
      case 'reassign':
        input = { kind: 'reassign', to: text('to'), ...(text('reason') ? { reason: text('reason') } : {}) };
        break;
    }
    if (!input) {
      await this.exposurePage(req, res, v, id, { problems: ['Unknown decision.'] }, 400);
      return;
    }
    const problems = Object.values(this.decisions.formProblems(scope, input));
    if (problems.length) {
      await this.exposurePage(req, res, v, id, { problems }, 400);
      return;
    }
    const actor: Actor = { personId: v.person.id, via: 'dashboard' };
    const [outcome] = await this.decisions.decide(actor, [id], input);
    const result = outcome?.ok
      ? { tone: 'ok' as const, text: `Done: the exposure is now ${outcome.state}.` }
      : { tone: 'refused' as const, text: `Refused: ${outcome?.reason ?? 'no answer'}` };
    await this.exposurePage(req, res, v, id, { result }, outcome?.ok ? 200 : 403);
  }

  /**
   * The scopes in which a person is neither the CISO nor a security lead. The digest is the whole
   * estate's report (every scope's figures, top assets, acceptances), so only a person for whom
   * this list is empty reads it here.
   */
  private scopesWithoutDigest(personId: string): string[] {
    return this.deps.config.scopes
      .filter(
        (s) =>
          !this.decisions.people.rolesIn(personId, s.name).some((r) => r === 'ciso' || r === 'securityLead'),
      )
      .map((s) => s.name);
  }

  private async digestPage(req: IncomingMessage, res: ServerResponse) {
    const v = await this.viewer(req, res);
    if (!v) return;
    const outside = this.scopesWithoutDigest(v.person.id);
    if (outside.length > 0) {
      this.deps.log.warn({ personId: v.person.id, scopes: outside }, 'dashboard: digest refused');
      this.message(
        res,
        403,
        'Not authorized',
        `The weekly digest covers every scope, so it is for people who are the CISO or a security lead in each of them (scopes[].roles in ctem.yaml). ${v.person.name} is neither in ${outside.join(', ')}.`,
        v,
      );
      return;
    }
    const settings = digestSettings(this.deps.config);
    const now = new Date((this.deps.now ?? Date.now)());
    const asked = new URL(req.url ?? '/', 'http://localhost').searchParams.get('week');
    const week = !asked
      ? previousWeek(now, settings.timezone)
      : asked === 'current'
        ? weekContaining(now, settings.timezone)
        : parseWeek(asked, settings.timezone);
    if (!week || week.start.getTime() > now.getTime()) {
      this.message(
        res,
        400,
        'No such week',
        `week=${asked ?? ''} is not a past ISO week; write it as YYYY-Www, e.g. 2026-W47.`,
        v,
      );
      return;
    }
    const report = await buildDigest(this.deps.pool, this.deps.config, week, { now });
    this.html(res, 200, renderDigestPage(report));
  }
}

export function mountDashboard(deps: DashboardDeps): Dashboard | undefined {
  return Dashboard.mount(deps);
}
