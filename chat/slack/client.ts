// The Slack Web API client as the bots use it: pointed at integrations.slack.apiUrl when set (a proxy,
// or a local server in tests), rate-limited calls rejected instead of retried inside the client (the
// outbox waits Retry-After and resends), and its logs routed into our structured log.
import { LogLevel, webApi, type Logger as SlackLogger } from '@slack/bolt';
import type { Logger } from 'pino';
import type { SlackConfig } from './config.ts';

export type SlackWebClient = webApi.WebClient;

/** Slack's logger interface over pino; debug chatter stays at debug. */
export function slackLogger(log: Logger): SlackLogger {
  let level: LogLevel = LogLevel.INFO;
  const text = (msg: unknown[]) => msg.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join(' ');
  return {
    debug: (...msg: unknown[]) => log.debug(text(msg)),
    info: (...msg: unknown[]) => log.info(text(msg)),
    warn: (...msg: unknown[]) => log.warn(text(msg)),
    error: (...msg: unknown[]) => log.error(text(msg)),
    setLevel: (l: LogLevel) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => undefined,
  };
}

export function slackClientOptions(config: SlackConfig, log: Logger): webApi.WebClientOptions {
  return {
    ...(config.apiUrl ? { slackApiUrl: config.apiUrl } : {}),
    rejectRateLimitedCalls: true,
    retryConfig: { retries: 0 },
    timeout: 10_000,
    logger: slackLogger(log),
  };
}

export function createSlackWebClient(token: string, config: SlackConfig, log: Logger): SlackWebClient {
  return new webApi.WebClient(token, slackClientOptions(config, log));
}
