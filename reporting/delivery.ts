// Sending the digest through each configured channel: e-mail over SMTP (nodemailer), a Slack
// channel (Block Kit, posted by the Slack bot through the Web API, or an incoming webhook) and a
// Teams conversation (Adaptive Card, posted by the Teams bot through the Bot Connector, or a
// webhook). Each channel is sent once per
// week: a row in `notifications` keyed "digest:<week>:<channel>" is written after it went out, so a
// retried activity sends only what failed. A failing channel does not stop the others; the job
// fails afterwards so Temporal retries it.
import nodemailer from 'nodemailer';
import type { Logger } from 'pino';
import type { Pool } from '../runtime/pool.ts';
import type { Config } from '../domain/config.ts';
import { resolveSecret } from '../runtime/config.ts';
import type { ChatPosting } from '../domain/ports.ts';
import { digestSlackMessage, digestTeamsCard } from './chat.ts';
import { digestSettings, type DigestSettings } from './config.ts';
import { digestView, renderDigestEmail } from './render.ts';
import type { DigestReport } from './report.ts';

export type DigestChannel = 'email' | 'slack' | 'teams';

export interface ChannelOutcome {
  channel: DigestChannel;
  status: 'sent' | 'already-sent' | 'failed';
  detail: string;
}

export interface DeliveryDeps {
  pool: Pool;
  config: Config;
  baseDir: string;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** The chat bots' transports (digest.slack.channel, digest.teams.conversation need them). */
  chat?: ChatPosting;
}

export function configuredChannels(settings: DigestSettings): DigestChannel[] {
  return (['email', 'slack', 'teams'] as const).filter((c) => settings[c] !== undefined);
}

async function sendEmail(
  settings: NonNullable<DigestSettings['email']>,
  report: DigestReport,
  deps: DeliveryDeps,
): Promise<string> {
  const { smtp } = settings;
  const password = smtp.password ? resolveSecret(smtp.password, deps.env, deps.baseDir) : undefined;
  const transport = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    requireTLS: smtp.requireTls && !smtp.secure,
    ...(smtp.user ? { auth: { user: smtp.user, pass: password ?? '' } } : {}),
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    socketTimeout: 30_000,
  });
  try {
    const mail = renderDigestEmail(report);
    const info = await transport.sendMail({
      from: settings.from,
      to: settings.to,
      subject: `${settings.subjectPrefix} ${mail.subject}`.trim(),
      html: mail.html,
      text: mail.text,
      headers: { 'X-CTEM-Digest-Week': report.metrics.week.label },
    });
    return `e-mailed to ${settings.to.join(', ')} (message ${info.messageId})`;
  } finally {
    transport.close();
  }
}

async function postWebhook(url: string, body: unknown, what: string): Promise<string> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${what} webhook answered ${res.status}: ${text.slice(0, 200)}`);
  return `posted to the ${what} webhook (${res.status})`;
}

async function sendOne(
  channel: DigestChannel,
  settings: DigestSettings,
  report: DigestReport,
  deps: DeliveryDeps,
): Promise<string> {
  const secret = (ref: string) => resolveSecret(ref, deps.env, deps.baseDir);
  switch (channel) {
    case 'email':
      return await sendEmail(settings.email!, report, deps);
    case 'slack': {
      const message = digestSlackMessage(digestView(report));
      const target = settings.slack!;
      if ('webhook' in target) return await postWebhook(secret(target.webhook), message, 'Slack');
      const slack = deps.chat?.slack;
      if (!slack)
        throw new Error(
          'digest.slack.channel needs the Slack bot configured under integrations.slack (or use digest.slack.webhook)',
        );
      const ref = await slack.post(target.channel, message);
      return `posted to Slack channel ${target.channel} (${ref})`;
    }
    case 'teams': {
      const card = digestTeamsCard(digestView(report));
      const activity = {
        type: 'message' as const,
        summary: `CTEM weekly digest ${report.metrics.week.label}`,
        attachments: [
          { contentType: 'application/vnd.microsoft.card.adaptive', contentUrl: null, content: card },
        ],
      };
      const target = settings.teams!;
      if ('webhook' in target) return await postWebhook(secret(target.webhook), activity, 'Teams');
      const teams = deps.chat?.teams;
      if (!teams)
        throw new Error(
          'digest.teams.conversation needs the Teams bot configured under integrations.teams (or use digest.teams.webhook)',
        );
      const id = await teams.post(target.conversation, activity);
      return `posted to Teams conversation ${target.conversation} (activity ${id})`;
    }
  }
}

/** Send the digest through every configured channel not already sent for this week. */
export async function deliverDigest(deps: DeliveryDeps, report: DigestReport): Promise<ChannelOutcome[]> {
  const settings = digestSettings(deps.config);
  const outcomes: ChannelOutcome[] = [];
  for (const channel of configuredChannels(settings)) {
    const key = `digest:${report.metrics.week.label}:${channel}`;
    const held = await deps.pool.query<{ receipt: { detail?: string } }>(
      'select receipt from notifications where key = $1',
      [key],
    );
    if (held.rows[0]) {
      outcomes.push({
        channel,
        status: 'already-sent',
        detail: held.rows[0].receipt.detail ?? 'sent before',
      });
      continue;
    }
    try {
      const detail = await sendOne(channel, settings, report, deps);
      await deps.pool.query(
        `insert into notifications (key, kind, recipients, receipt) values ($1, 'digest', $2, $3) on conflict (key) do nothing`,
        [
          key,
          channel === 'email' ? settings.email!.to : [channel],
          JSON.stringify({ channel, detail, week: report.metrics.week.label }),
        ],
      );
      outcomes.push({ channel, status: 'sent', detail });
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      deps.log.warn({ channel, week: report.metrics.week.label, err: detail }, 'digest delivery failed');
      outcomes.push({ channel, status: 'failed', detail });
    }
  }
  return outcomes;
}
