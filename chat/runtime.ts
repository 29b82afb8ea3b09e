// The chat side of one process: the outbox with a transport per configured platform, and the
// stored message models. Built once per process by the composition root (app/compose.ts) and
// shared by the notifiers (called from lifecycle activities) and the bots (on the HTTP server), so
// one process paces all its sends through one queue. Tokens are resolved from secret references
// here and nowhere else.
import type { Logger } from 'pino';
import type { Config } from '../domain/config.ts';
import { createPool, type Pool } from '../runtime/pool.ts';
import { resolveSecret } from '../runtime/config.ts';
import { ChatDelivery } from './delivery.ts';
import { PeopleDirectory } from './identity.ts';
import type { StoredModel } from './messages.ts';
import { Outbox, type OutboxOptions } from './outbox.ts';
import { slackConfigOf, type SlackConfig } from './slack/config.ts';
import { SlackRenderer } from './slack/render.ts';
import { createSlackWebClient, type SlackWebClient } from './slack/client.ts';
import { SlackTransport } from './slack/transport.ts';
import { teamsConfigOf, type TeamsConfig } from './teams/config.ts';
import { TeamsRenderer } from './teams/render.ts';
import { BotTokenProvider } from './teams/token.ts';
import { TeamsTransport } from './teams/transport.ts';
import { TeamsConversations } from './teams/conversations.ts';

export interface ChatRuntimeDeps {
  config: Config;
  pool: Pool;
  log: Logger;
  baseDir: string;
  env?: NodeJS.ProcessEnv;
  outbox?: OutboxOptions;
  /** Connections of the chat side's own pool (default 10). */
  poolSize?: number;
}

export interface SlackSide {
  config: SlackConfig;
  token: string;
  client: SlackWebClient;
  renderer: SlackRenderer;
  transport: SlackTransport;
}

export interface TeamsSide {
  config: TeamsConfig;
  tokens: BotTokenProvider;
  renderer: TeamsRenderer;
  transport: TeamsTransport;
  conversations: TeamsConversations;
}

export class ChatRuntime {
  /**
   * The chat side's own connections. Notifiers are called inside the lifecycle's notification
   * transaction, and a burst of decision requests can hold every connection of the worker's pool
   * while they wait for the notifier: with its own pool the outbox and the Slack endpoint never
   * wait behind them.
   */
  readonly pool: Pool;
  private readonly ownPool: boolean;
  private stopped = false;
  readonly people: PeopleDirectory;
  readonly outbox: Outbox;
  readonly delivery: ChatDelivery;
  readonly slack?: SlackSide;
  readonly teams?: TeamsSide;

  constructor(readonly deps: ChatRuntimeDeps) {
    const { config, log } = deps;
    const url = deps.pool.options.connectionString;
    this.ownPool = typeof url === 'string' && url !== '';
    this.pool = this.ownPool ? createPool(url!, deps.poolSize ?? 10) : deps.pool;
    const pool = this.pool;
    const env = deps.env ?? process.env;
    this.people = new PeopleDirectory(config);
    const slackConfig = slackConfigOf(config.integrations);
    const teamsConfig = teamsConfigOf(config.integrations);
    this.outbox = new Outbox(pool, log.child({ part: 'chat-outbox' }), {
      ...deps.outbox,
      intervalMs: {
        ...(slackConfig ? { slack: slackConfig.perChannelIntervalMs } : {}),
        ...(teamsConfig ? { teams: teamsConfig.perConversationIntervalMs } : {}),
        ...deps.outbox?.intervalMs,
      },
    });
    this.delivery = new ChatDelivery(pool, this.outbox, log.child({ part: 'chat' }));

    if (slackConfig) {
      const token = resolveSecret(slackConfig.botToken, env, deps.baseDir);
      const client = createSlackWebClient(token, slackConfig, log.child({ part: 'slack-web-api' }));
      const renderer = new SlackRenderer(config, this.people);
      const transport = new SlackTransport(client, (m, ctx) => renderer.render(m as StoredModel, ctx));
      this.outbox.register(transport);
      this.slack = { config: slackConfig, token, client, renderer, transport };
    }
    if (teamsConfig) {
      const secret = resolveSecret(teamsConfig.clientSecret, env, deps.baseDir);
      const tokens = new BotTokenProvider(teamsConfig, secret);
      const renderer = new TeamsRenderer(config, this.people);
      const conversations = new TeamsConversations(pool, teamsConfig);
      const transport = new TeamsTransport(tokens, conversations, (m, ctx) =>
        renderer.activity(m as StoredModel, ctx),
      );
      this.outbox.register(transport);
      this.teams = { config: teamsConfig, tokens, renderer, transport, conversations };
    }
  }

  start(): void {
    this.outbox.startSweeper();
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.outbox.stop();
    if (this.ownPool) this.pool.end().catch(() => undefined);
  }
}
