// Start the chat bots configured in ctem.yaml (integrations.slack, integrations.teams) on the
// process's one HTTP server: their routes are registered on it, nothing else listens.
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Config } from '../domain/config.ts';
import { DecisionApi } from '../chat/decisions.ts';
import type { HttpServer } from './http.ts';
import type { ChatRuntime } from '../chat/runtime.ts';
import { SlackBot } from './slack/app.ts';
import { TeamsBot } from './teams/app.ts';
import { ScopeAlerts } from '../chat/alerts.ts';
import { describeDecision } from '../chat/messages.ts';

export interface ChatBots {
  runtime: ChatRuntime;
  decisions: DecisionApi;
  slack?: SlackBot;
  teams?: TeamsBot;
  alerts?: ScopeAlerts;
  stop(): Promise<void>;
}

export interface ChatBotsDeps {
  http: HttpServer;
  config: Config;
  /** The process's chat runtime (app/compose.ts); no bot runs without one. */
  chat: ChatRuntime | undefined;
  /** Temporal client the decisions are sent with. */
  client: Client;
  log: Logger;
  baseDir: string;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  /** Run the scope alert dispatcher in this process (default true). */
  alerts?: boolean;
}

/** Undefined when neither Slack nor Teams is configured. */
export async function startChatBots(deps: ChatBotsDeps): Promise<ChatBots | undefined> {
  const { config, chat: runtime } = deps;
  if (!runtime) return undefined;
  const log = deps.log.child({ part: 'chat' });
  const decisions = new DecisionApi({
    client: deps.client,
    pool: runtime.pool,
    config,
    log,
    ...(deps.now ? { now: deps.now } : {}),
  });
  // Decisions taken outside chat through this API (the dashboard) update the messages showing their
  // campaigns too; the bots update them for their own (chat/acting.ts), and answer the clicker.
  decisions.onDecided((actor, input, outcomes) => {
    if (actor.via === 'slack' || actor.via === 'teams') return;
    const accepted = outcomes.filter((o) => o.ok).map((o) => o.exposureId);
    if (accepted.length === 0) return;
    const person = decisions.people.person(actor.personId);
    runtime.delivery
      .recordDecisionOn(
        {
          personId: actor.personId,
          name: person?.name ?? actor.personId,
          kind: input.kind,
          exposureIds: accepted,
          at: new Date((deps.now ?? Date.now)()).toISOString(),
          detail: describeDecision(input, (id) => decisions.people.person(id)?.name ?? id),
          via: actor.via === 'dashboard' ? 'the dashboard' : actor.via,
        },
        accepted,
      )
      .catch((err: unknown) => log.warn({ err }, 'could not show a decision on its chat messages'));
  });
  decisions.onPatchDecided((actor, kind, outcome, exposureIds, rolloutId) => {
    if (actor.via === 'slack' || actor.via === 'teams' || !outcome.ok) return;
    const person = decisions.people.person(actor.personId);
    runtime.delivery
      .recordPatchDecisionOn(rolloutId, {
        personId: actor.personId,
        name: person?.name ?? actor.personId,
        kind,
        exposureIds,
        at: new Date((deps.now ?? Date.now)()).toISOString(),
        detail: '',
        via: actor.via === 'dashboard' ? 'the dashboard' : actor.via,
      })
      .catch((err: unknown) => log.warn({ err }, 'could not show a patch decision on its chat messages'));
  });
  const common = { runtime, decisions, log, ...(deps.now ? { now: deps.now } : {}) };
  const slack = runtime.slack
    ? await SlackBot.create({
        ...common,
        pool: runtime.pool,
        baseDir: deps.baseDir,
        ...(deps.env ? { env: deps.env } : {}),
      })
    : undefined;
  const teams = runtime.teams ? await TeamsBot.create(common) : undefined;
  slack?.mount(deps.http);
  teams?.mount(deps.http);
  await slack?.start();
  const alerts =
    deps.alerts === false ? undefined : new ScopeAlerts({ config, pool: runtime.pool, runtime, log });
  alerts?.start();
  return {
    runtime,
    decisions,
    ...(slack ? { slack } : {}),
    ...(teams ? { teams } : {}),
    ...(alerts ? { alerts } : {}),
    // The chat runtime is the process's (its composition stops it): the bots only stop their own parts.
    stop: async () => {
      alerts?.stop();
      await slack?.stop();
    },
  };
}
