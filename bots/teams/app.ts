// The Teams bot, on the Teams AI library v2 (@microsoft/teams.apps 2.0.x).
//
// Library choice: v2 rather than @microsoft/teams-ai 1.7, because everything it talks to can be
// pointed at a local server, so the tests drive the real library over HTTP:
// - inbound: the App takes a custom IHttpServerAdapter, so its messaging endpoint is a route on our
//   one HTTP server; JWT validation (ServiceTokenValidator) reads the signing keys from the cloud
//   environment's openIdMetadataUrl and checks the issuer from tokenIssuer, both overridable with
//   withOverrides() — tests serve keys on 127.0.0.1 and sign real RS256 service tokens;
// - outbound: the Bot Connector base is the activity's (or the stored reference's) serviceUrl, and
//   the bot token comes from the App's `token` callback, for which we run the OAuth client
//   credentials request ourselves (bots/teams/token.ts) because MSAL refuses non-https authorities.
// Authentication is off only with integrations.teams.authentication: development (explicit), which
// maps to the library's dangerouslyAllowUnauthenticatedRequests; production validates every JWT.
//
// Decisions are Action.Execute verbs on the card (adaptiveCard/action invokes): on a campaign's card
// for the whole campaign (target "all") or one listed exposure as an exception; on a daily queue for
// the campaign at data.campaign. The answer is the card re-rendered with what is left and who acted
// (Teams swaps it in for the clicker), while every stored card showing the campaign is updated
// through the Bot Connector (PUT …/activities/{id}) via the outbox. A refusal is answered with a
// message the client shows on the card; it is recorded.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { App, type IHttpServerAdapter } from '@microsoft/teams.apps';
import { PUBLIC, withOverrides } from '@microsoft/teams.api';
import { z } from 'zod';
import type { Logger } from 'pino';
import type { DecisionKind } from '../../domain/exposure.ts';
import type { DecisionApi, DecisionInput } from '../../chat/decisions.ts';
import { decideFromChat, type DecisionTarget } from '../../chat/acting.ts';
import type { StoredMessage } from '../../chat/delivery.ts';
import { readBody, sendJson, type HttpServer } from '../http.ts';
import { RefusalAudit } from '../audit.ts';
import {
  isDigest,
  patchRolloutOf,
  resolveRef,
  type ChatMessageModel,
  type DigestModel,
  type PatchDecisionKind,
} from '../../chat/messages.ts';
import type { ChatRuntime, TeamsSide } from '../../chat/runtime.ts';

export interface TeamsBotDeps {
  runtime: ChatRuntime;
  decisions: DecisionApi;
  log: Logger;
  now?: () => number;
}

type RouteHandler = Parameters<IHttpServerAdapter['registerRoute']>[2];

/** Hands the library's messaging route to our HTTP server instead of a server of its own. */
class SharedServerAdapter implements IHttpServerAdapter {
  readonly routes: { method: string; path: string; handler: RouteHandler }[] = [];

  registerRoute(method: 'POST', path: string, handler: RouteHandler): void {
    this.routes.push({ method, path, handler });
  }

  mount(http: HttpServer, audit: RefusalAudit): void {
    for (const r of this.routes)
      http.route(r.method, r.path, async (req: IncomingMessage, res: ServerResponse) => {
        let raw: Buffer;
        let body: unknown;
        try {
          raw = await readBody(req, 1024 * 1024);
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          return sendJson(res, 400, { error: 'the body must be a JSON activity' });
        }
        const headers: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = v;
        const answer = await r.handler({ body, headers });
        if (answer.body === undefined) {
          res.writeHead(answer.status, { 'content-length': '0' });
          res.end();
        } else sendJson(res, answer.status, answer.body);
        // The library answers 401 when the Bot Framework JWT is missing or does not validate.
        if (answer.status === 401 || answer.status === 403)
          await audit.record({
            channel: 'teams',
            route: r.path,
            status: answer.status,
            reason: headers.authorization
              ? 'Bot Framework token did not validate'
              : 'no Bot Framework token (Authorization header missing)',
            remote: req.socket.remoteAddress,
            body: raw,
          });
      });
  }
}

function teamsLogger(
  log: Logger,
): ConstructorParameters<typeof App>[0] extends infer O
  ? O extends { logger?: infer L }
    ? NonNullable<L>
    : never
  : never {
  const text = (msg: unknown[]) =>
    msg
      .map((m) => (typeof m === 'string' ? m : m instanceof Error ? m.message : JSON.stringify(m)))
      .join(' ');
  const make = (l: Logger): ReturnType<typeof teamsLogger> => ({
    error: (...m: unknown[]) => l.error(text(m)),
    warn: (...m: unknown[]) => l.warn(text(m)),
    info: (...m: unknown[]) => l.debug(text(m)),
    debug: (...m: unknown[]) => l.trace(text(m)),
    trace: (...m: unknown[]) => l.trace(text(m)),
    log: (level: 'error' | 'warn' | 'info' | 'debug' | 'trace', ...m: unknown[]) =>
      level === 'error' ? l.error(text(m)) : level === 'warn' ? l.warn(text(m)) : l.debug(text(m)),
    child: (name: string) => make(l.child({ lib: name })),
  });
  return make(log);
}

const invokeValue = z.object({
  action: z.object({
    type: z.string().optional(),
    verb: z.string(),
    data: z.record(z.string(), z.unknown()).default({}),
  }),
});

const decisionVerbs = new Set<string>(['approve', 'snooze', 'acceptRisk', 'markFalsePositive', 'reassign']);

type CardAnswer =
  | { statusCode: 200; type: 'application/vnd.microsoft.card.adaptive'; value: unknown }
  | { statusCode: 200; type: 'application/vnd.microsoft.activity.message'; value: string }
  | {
      statusCode: 400 | 500;
      type: 'application/vnd.microsoft.error';
      value: { code: string; message: string };
    };

const message = (value: string): CardAnswer => ({
  statusCode: 200,
  type: 'application/vnd.microsoft.activity.message',
  value,
});

export class TeamsBot {
  readonly app: App;
  private readonly adapter = new SharedServerAdapter();
  private readonly side: TeamsSide;
  private readonly now: () => number;
  private readonly audit: RefusalAudit;

  private constructor(private readonly deps: TeamsBotDeps) {
    const side = deps.runtime.teams;
    if (!side) throw new Error('integrations.teams is not configured');
    this.side = side;
    this.now = deps.now ?? Date.now;
    this.audit = new RefusalAudit(deps.runtime.pool, deps.log.child({ part: 'teams' }));
    const cfg = side.config;
    const cloud = withOverrides(PUBLIC, {
      ...(cfg.endpoints.login ? { loginEndpoint: cfg.endpoints.login.replace(/\/+$/, '') } : {}),
      ...(cfg.endpoints.openIdMetadata ? { openIdMetadataUrl: cfg.endpoints.openIdMetadata } : {}),
      ...(cfg.endpoints.tokenIssuer ? { tokenIssuer: cfg.endpoints.tokenIssuer } : {}),
      ...(cfg.endpoints.botScope ? { botScope: cfg.endpoints.botScope } : {}),
    });
    this.app = new App({
      clientId: cfg.appId,
      tenantId: cfg.tenantId,
      token: () => side.tokens.token(),
      cloud,
      serviceUrl: cfg.serviceUrl,
      httpServerAdapter: this.adapter,
      messagingEndpoint: cfg.path as `/${string}`,
      dangerouslyAllowUnauthenticatedRequests: cfg.authentication === 'development',
      logger: teamsLogger(deps.log.child({ part: 'teams' })),
    });
    if (cfg.authentication === 'development')
      deps.log.warn(
        'integrations.teams.authentication is development: Teams requests are accepted WITHOUT JWT validation',
      );
    this.listen();
  }

  static async create(deps: TeamsBotDeps): Promise<TeamsBot> {
    const bot = new TeamsBot(deps);
    await bot.app.initialize();
    return bot;
  }

  mount(http: HttpServer): void {
    this.adapter.mount(http, this.audit);
  }

  private listen(): void {
    // Every activity tells us where we may write later (installation, messages, card actions).
    this.app.use(async (ctx) => {
      const a = ctx.activity;
      // A valid Bot Framework token says the activity came through the Bot Connector, not from which
      // organisation: only the configured tenant may bind a conversation or decide.
      const tenant = a.conversation?.tenantId ?? a.channelData?.tenant?.id;
      if (tenant !== this.side.config.tenantId) {
        await this.audit.record({
          channel: 'teams',
          route: this.side.config.path,
          status: 403,
          reason: `activity ${a.type} from tenant ${tenant ?? '(none)'}, not the configured tenant: ignored`,
        });
        return undefined as never;
      }
      const person = this.deps.decisions.people.resolve({
        transport: 'teams',
        userIds: [a.from?.aadObjectId, a.from?.id].filter((x): x is string => !!x),
      });
      await this.side.conversations
        .remember(a, person?.id)
        .catch((err: unknown) =>
          this.deps.log.warn({ err }, 'could not store the Teams conversation reference'),
        );
      return await ctx.next();
    });

    this.app.on('card.action', async (ctx) => {
      try {
        return (await this.decide(ctx.activity)) as never;
      } catch (err) {
        this.deps.log.error({ err }, 'teams decision failed');
        return {
          statusCode: 500,
          type: 'application/vnd.microsoft.error',
          value: {
            code: 'InternalError',
            message: `ctem could not record your decision: ${(err as Error).message}`,
          },
        } as never;
      }
    });

    this.app.on('message', async (ctx) => {
      await ctx.send(
        'I post CTEM decision requests and SLA escalations here. Decide with the buttons on those cards; every decision is checked against ctem.yaml and recorded.',
      );
    });
  }

  private async decide(activity: {
    value?: unknown;
    conversation: { id: string };
    from: { id: string; aadObjectId?: string };
  }): Promise<CardAnswer> {
    const parsed = invokeValue.safeParse(activity.value);
    if (
      parsed.success &&
      (parsed.data.action.verb === 'approvePatch' || parsed.data.action.verb === 'rejectPatch')
    )
      return await this.answerPatch(activity, parsed.data.action.verb, parsed.data.action.data);
    if (!parsed.success || !decisionVerbs.has(parsed.data.action.verb))
      return {
        statusCode: 400,
        type: 'application/vnd.microsoft.error',
        value: { code: 'BadRequest', message: 'unknown card action' },
      };
    const verb = parsed.data.action.verb as DecisionKind;
    const data = parsed.data.action.data;
    const str = (k: string) => (typeof data[k] === 'string' ? (data[k] as string).trim() : '');
    const stored = await this.deps.runtime.delivery.byKey('teams', activity.conversation.id, str('key'));
    if (!stored) return message('This card is not one ctem is tracking any more; decide from the dashboard.');
    const what = this.target(stored.model, verb, str('target') || 'all', str('campaign'));
    const decisions = this.deps.decisions;
    const person = decisions.people.resolve({
      transport: 'teams',
      userIds: [activity.from.aadObjectId, activity.from.id].filter((x): x is string => !!x),
    });
    if (!person) {
      const ids = what
        ? (what.target.exposureIds ?? (await decisions.openExposuresOf(what.target.campaignId)))
        : [];
      const reason = await decisions.refuseUnknownAccount(
        'teams',
        activity.from.aadObjectId ?? activity.from.id,
        ids,
        verb,
      );
      return message(`Not done: ${reason}.`);
    }
    if (!what) return message('Nothing on this card is open to that decision any more.');
    const input = this.input(verb, what.scope, (k) => str(`${k}_${str('campaign')}`) || str(k));
    // No check of our own here: the card's required inputs are checked by Teams, and whatever comes
    // through is judged (and a refusal recorded) by the workflow's validator.
    const r = await decideFromChat(
      { decisions, delivery: this.deps.runtime.delivery, now: this.now },
      { person, via: 'teams' },
      what.target,
      input,
      { withModels: true },
    );
    if (r.applied.length === 0)
      return message(
        `Not done: ${r.reason ?? ([...new Set(r.refused.map((f) => f.reason))].join('; ') || 'nothing to decide')}.`,
      );
    const mine =
      r.updated.find(
        (m) => m.transport === 'teams' && m.conversation === activity.conversation.id && m.key === stored.key,
      )?.model ?? stored.model;
    return {
      statusCode: 200,
      type: 'application/vnd.microsoft.card.adaptive',
      value: this.side.renderer.card(mine, { inThread: stored.threadRef !== undefined }),
    };
  }

  /** The decision a card's form describes (the verb and its inputs). */
  private input(verb: DecisionKind, scope: string, str: (k: string) => string): DecisionInput {
    const decisions = this.deps.decisions;
    switch (verb) {
      case 'approve':
        return { kind: 'approve' };
      case 'snooze': {
        const days = Number(str('snoozeDays'));
        return {
          kind: 'snooze',
          until: decisions.snoozeUntil(scope, Number.isInteger(days) && days > 0 ? days : 0),
          ...(str('reason') ? { reason: str('reason') } : {}),
        };
      }
      case 'acceptRisk':
        return {
          kind: 'acceptRisk',
          justification: str('justification'),
          expires: decisions.expiryFromDate(scope, str('expires')) ?? '',
        };
      case 'markFalsePositive':
        return { kind: 'markFalsePositive', reason: str('reason') };
      case 'reassign':
        return { kind: 'reassign', to: str('person'), ...(str('reason') ? { reason: str('reason') } : {}) };
    }
  }

  /** Approve patch / Reject patch on a patch approval card: the rollout's update, the card refreshed. */
  private async answerPatch(
    activity: { conversation: { id: string }; from: { id: string; aadObjectId?: string } },
    kind: PatchDecisionKind,
    data: Record<string, unknown>,
  ): Promise<CardAnswer> {
    const str = (k: string) => (typeof data[k] === 'string' ? (data[k] as string).trim() : '');
    const found = await this.deps.runtime.delivery.byKey('teams', activity.conversation.id, str('key'));
    const stored = found && !isDigest(found.model) ? (found as StoredMessage<ChatMessageModel>) : undefined;
    const rolloutId = stored ? patchRolloutOf(stored.model.notification) : undefined;
    if (!stored || !rolloutId)
      return message(
        'This card is not a patch approval ctem is tracking any more; decide from the dashboard.',
      );
    const exposureIds = stored.model.notification.campaign.exposures.map((e) => e.id);
    const person = this.deps.decisions.people.resolve({
      transport: 'teams',
      userIds: [activity.from.aadObjectId, activity.from.id].filter((x): x is string => !!x),
    });
    if (!person) {
      const reason = await this.deps.decisions.refuseUnknownAccount(
        'teams',
        activity.from.aadObjectId ?? activity.from.id,
        exposureIds,
        kind,
        rolloutId,
      );
      return message(`Not done: ${reason}.`);
    }
    const comment = str('comment');
    // Teams checks the card's required comment; a forged invoke without one is refused here too.
    if (kind === 'rejectPatch' && comment === '') return message('Not done: say why the plan is rejected.');
    const outcome = await this.deps.decisions.decidePatch(
      { personId: person.id, via: 'teams' },
      rolloutId,
      { approved: kind === 'approvePatch', ...(comment ? { comment } : {}) },
      exposureIds,
    );
    if (!outcome.ok) return message(`Not done: ${outcome.reason}.`);
    const updated = await this.deps.runtime.delivery.recordDecision(
      stored.key,
      {
        personId: person.id,
        name: person.name,
        kind,
        exposureIds,
        at: new Date(this.now()).toISOString(),
        detail: comment.length > 200 ? `${comment.slice(0, 199)}…` : comment,
        via: 'Teams',
      },
      [],
      true,
    );
    const mine =
      updated.find((m) => m.transport === 'teams' && m.conversation === activity.conversation.id)?.model ??
      stored.model;
    return {
      statusCode: 200,
      type: 'application/vnd.microsoft.card.adaptive',
      value: this.side.renderer.card(mine, { inThread: stored.threadRef !== undefined }),
    };
  }

  /**
   * What an invoke decides on: on a campaign's card, the whole campaign ("all") or one listed
   * exposure; on a daily queue, the campaign at the given position. Undefined: nothing (a patch
   * request, an exposure the card no longer lists, a digest without decisions).
   */
  private target(
    model: ChatMessageModel | DigestModel,
    kind: DecisionKind,
    ref: string,
    position: string,
  ): { target: DecisionTarget; scope: string } | undefined {
    if (isDigest(model)) {
      const entry = model.digest.kind === 'queue' ? model.digest.campaigns[Number(position)] : undefined;
      if (!entry || !/^\d+$/.test(position) || (kind !== 'approve' && kind !== 'snooze')) return undefined;
      return { target: { campaignId: entry.campaign.id }, scope: entry.campaign.scope };
    }
    if (patchRolloutOf(model.notification)) return undefined;
    const c = model.notification.campaign;
    if (ref === 'all') return { target: { campaignId: c.id }, scope: c.scope };
    const id = resolveRef(model, ref);
    return id ? { target: { campaignId: c.id, exposureIds: [id] }, scope: c.scope } : undefined;
  }
}
