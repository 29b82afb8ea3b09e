// The weekly digest on its Temporal Schedule, end to end on the real server: the schedule's calendar
// follows digest.weekday/time/timezone; a run renders the digest and sends it through every
// configured channel — an HTML e-mail to a local SMTP server (with AUTH), a Block Kit summary
// through the Slack Web API, an Adaptive Card through the Bot Connector — each once per week.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { Worker } from '@temporalio/worker';
import { parseConfig, type Config } from '../../domain/config.ts';
import { digestSpec } from '../../lifecycle/schedules.ts';
import { deliverDigest } from '../../reporting/delivery.ts';
import { buildDigest } from '../../reporting/report.ts';
import { parseWeek, previousWeek } from '../../reporting/week.ts';
import { testComposition } from '../support/deps.ts';
import type { Composition } from '../../app/compose.ts';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { FakeSlackApi } from '../fakes/slack-api.ts';
import { FakeBotConnector } from '../fakes/bot-connector.ts';
import { FakeSmtpServer, mailHeader, mimePart } from '../fakes/smtp.ts';
import { eventually } from '../lifecycle/support.ts';
import { seedEstate } from './seed.ts';

const APP_ID = '00000000-0000-4000-8000-00000000d16e';
const TENANT = '11111111-2222-4333-8444-55555555d16e';
const suffix = randomBytes(4).toString('hex');
const SMTP_PASSWORD = `smtp-${suffix}`;

let db: TestDatabase;
let temporal: TestTemporal;
let smtp: FakeSmtpServer;
let slack: FakeSlackApi;
let connector: FakeBotConnector;
let config: Config;
let composition: Composition;
let worker: Worker;
let running: Promise<void>;
const scheduleId = `digest-test-${suffix}`;

beforeAll(async () => {
  db = await testDatabase();
  temporal = await testTemporal();
  await seedEstate(db.pool);
  smtp = await new FakeSmtpServer({ user: 'ctem', password: SMTP_PASSWORD }).start();
  const token = `xoxb-digest-${suffix}`;
  const teamsSecret = randomBytes(12).toString('base64url');
  slack = await new FakeSlackApi({ token }).start();
  connector = await new FakeBotConnector({ appId: APP_ID, appSecret: teamsSecret, tenantId: TENANT }).start();
  // The job resolves secrets from the worker's environment, as in production.
  process.env[`DIGEST_T_SMTP_${suffix}`] = SMTP_PASSWORD;
  process.env[`DIGEST_T_SLACK_${suffix}`] = token;
  process.env[`DIGEST_T_SIGN_${suffix}`] = 'sign-secret';
  process.env[`DIGEST_T_TEAMS_${suffix}`] = teamsSecret;
  config = parseConfig(`
version: 1
people:
  - { id: olivia, name: Olivia Owner }
  - { id: cyrus, name: Cyrus Ciso }
integrations:
  slack:
    botToken: env:DIGEST_T_SLACK_${suffix}
    signingSecret: env:DIGEST_T_SIGN_${suffix}
    apiUrl: ${slack.url}
    perChannelIntervalMs: 0
  teams:
    appId: ${APP_ID}
    tenantId: ${TENANT}
    clientSecret: env:DIGEST_T_TEAMS_${suffix}
    serviceUrl: ${connector.serviceUrl}
    endpoints:
      login: ${connector.loginEndpoint}
      openIdMetadata: ${connector.openIdMetadataUrl}
      tokenIssuer: ${connector.issuer}
scopes:
  - name: prod
    cadence: 7d
    roles: { owner: [olivia], ciso: [cyrus] }
  - name: dev
    cadence: 1d
    roles: { owner: [olivia], ciso: [cyrus] }
digest:
  weekday: fri
  time: "17:30"
  timezone: Europe/Paris
  dashboardUrl: https://ctem.example.org/dashboard
  email:
    from: ctem@example.org
    to: [ciso@example.org, deputy@example.org]
    smtp: { host: 127.0.0.1, port: ${smtp.port}, user: ctem, password: env:DIGEST_T_SMTP_${suffix}, requireTls: false }
  slack: { channel: C0CISO }
  teams: { conversation: '19:ciso@thread.tacv2' }
`);
  const taskQueue = temporal.taskQueue('digest');
  composition = testComposition({ pool: db.pool, config });
  worker = await temporal.worker({ taskQueue, pool: db.pool, deps: composition.deps });
  running = worker.run();
  await temporal.client.schedule.create({
    scheduleId,
    spec: digestSpec(config),
    action: { type: 'startWorkflow', workflowType: 'scheduledDigest', args: [], taskQueue },
  });
});

afterAll(async () => {
  await temporal.client.schedule
    .getHandle(scheduleId)
    .delete()
    .catch(() => undefined);
  worker.shutdown();
  await running;
  await smtp.stop();
  await slack.stop();
  await connector.stop();
});

async function digestRuns(): Promise<{ type: string; reason: string }[]> {
  const { rows } = await db.pool.query<{ type: string; reason: string }>(
    `select type, reason from events where actor = 'schedule' and data->'job'->>'kind' = 'digest' order by id`,
  );
  return rows;
}

describe('weekly digest schedule', () => {
  it('fires on the configured weekday, hour and time zone', async () => {
    const d = await temporal.client.schedule.getHandle(scheduleId).describe();
    expect(d.spec.timezone).toBe('Europe/Paris');
    expect(d.spec.calendars?.[0]).toMatchObject({
      dayOfWeek: [{ start: 'FRIDAY', end: 'FRIDAY', step: 1 }],
      hour: [{ start: 17, end: 17, step: 1 }],
      minute: [{ start: 30, end: 30, step: 1 }],
    });
  });

  it('sends the last complete week through e-mail, Slack and Teams, each once', async () => {
    const week = previousWeek(new Date(), 'Europe/Paris').label;
    const firstTriggerMs = Date.now();
    await temporal.client.schedule.getHandle(scheduleId).trigger();
    const runs = await eventually('the digest run recorded', digestRuns, (r) => r.length === 1, 120_000);
    expect(runs[0]).toEqual({
      type: 'schedule-ran',
      reason: expect.stringMatching(
        new RegExp(`^weekly digest ${week} \\(health \\d+\\): email sent, slack sent, teams sent$`),
      ) as unknown as string,
    });

    // E-mail: authenticated with the secret, to every recipient, HTML with inline styles only.
    expect(smtp.mails).toHaveLength(1);
    const mail = smtp.mails[0]!;
    expect(mail.user).toBe('ctem');
    expect(mail.to).toEqual(['ciso@example.org', 'deputy@example.org']);
    expect(mailHeader(mail.raw, 'Subject')).toMatch(
      new RegExp(`^\\[CTEM\\] CTEM weekly digest ${week}: health \\d+ \\(`),
    );
    expect(mailHeader(mail.raw, 'X-CTEM-Digest-Week')).toBe(week);
    const html = mimePart(mail.raw, 'text/html')!;
    expect(html).toContain('<table');
    expect(html).toContain('prod');
    expect(html).toContain('https://ctem.example.org/dashboard');
    expect(html).not.toMatch(/<script|<link|src="http/i);
    expect(mimePart(mail.raw, 'text/plain')).toMatch(/Health/);

    // Slack: a Block Kit message in the configured channel, through chat.postMessage.
    const posts = slack.callsTo('chat.postMessage');
    expect(posts).toHaveLength(1);
    expect(posts[0]!.args.channel).toBe('C0CISO');
    const blocks = posts[0]!.args.blocks as { type: string; text?: { text: string } }[];
    expect(blocks[0]).toEqual({
      type: 'header',
      text: { type: 'plain_text', text: `CTEM weekly digest ${week}` },
    });
    expect(blocks.map((b) => b.type)).toContain('actions');
    expect(JSON.stringify(blocks)).toMatch(/Exposure health \d+\/100/);

    // Teams: an Adaptive Card posted to the conversation with the bot's token.
    const sent = connector.calls.filter((c) => c.method === 'POST');
    expect(sent).toHaveLength(1);
    expect(sent[0]!.conversationId).toBe('19:ciso@thread.tacv2');
    expect(sent[0]!.authorization).toMatch(/^Bearer /);
    const attachment = (
      sent[0]!.activity.attachments as {
        contentType: string;
        content: { type: string; version: string; body: { text?: string }[] };
      }[]
    )[0]!;
    expect(attachment.contentType).toBe('application/vnd.microsoft.card.adaptive');
    expect(attachment.content.type).toBe('AdaptiveCard');
    expect(attachment.content.body[0]!.text).toBe(`CTEM weekly digest ${week}`);

    // A second run the same week (a retry, a manual trigger) sends nothing again. The schedule
    // skips a trigger while its previous run is still open (the event above is written by the
    // activity, before the workflow completes), so wait for that run to close first; and it names
    // (and de-duplicates) the runs it starts by their time in whole seconds, so a second trigger in
    // the same second as the first would start nothing.
    const schedule = temporal.client.schedule.getHandle(scheduleId);
    await eventually(
      'the first run closed',
      async () => (await schedule.describe()).info.runningActions,
      (r) => r.length === 0,
      60_000,
    );
    await new Promise((r) => setTimeout(r, Math.max(0, firstTriggerMs + 1_100 - Date.now())));
    await schedule.trigger();
    const again = await eventually('the second run recorded', digestRuns, (r) => r.length === 2, 120_000);
    expect(again[1]!.reason).toMatch(/email already-sent, slack already-sent, teams already-sent$/);
    expect(smtp.mails).toHaveLength(1);
    expect(slack.callsTo('chat.postMessage')).toHaveLength(1);
    expect(connector.calls.filter((c) => c.method === 'POST')).toHaveLength(1);
  }, 300_000);

  it('keeps sending the other channels when one fails, and sends only the failed one on retry', async () => {
    const week = parseWeek('2026-W46')!;
    const report = await buildDigest(db.pool, config, week, { now: new Date('2026-11-23T12:00:00Z') });
    const deps = {
      pool: db.pool,
      config,
      baseDir: process.cwd(),
      log: pino({ level: 'silent' }),
      chat: composition.deps.integrations.chat!,
    };
    slack.failNext('chat.postMessage', { error: 'channel_not_found' });
    const first = await deliverDigest(deps, report);
    expect(first.map((o) => [o.channel, o.status])).toEqual([
      ['email', 'sent'],
      ['slack', 'failed'],
      ['teams', 'sent'],
    ]);
    expect(first[1]!.detail).toMatch(/channel_not_found/);
    const retry = await deliverDigest(deps, report);
    expect(retry.map((o) => [o.channel, o.status])).toEqual([
      ['email', 'already-sent'],
      ['slack', 'sent'],
      ['teams', 'already-sent'],
    ]);
    expect(smtp.mails.filter((m) => mailHeader(m.raw, 'X-CTEM-Digest-Week') === '2026-W46')).toHaveLength(1);
  });

  it('refuses to log in with a wrong SMTP password, and says which channel failed', async () => {
    const wrong = { ...config, digest: { ...config.digest } } as Config;
    process.env[`DIGEST_T_BAD_${suffix}`] = 'not-the-password';
    wrong.digest = {
      email: {
        from: 'ctem@example.org',
        to: ['ciso@example.org'],
        smtp: {
          host: '127.0.0.1',
          port: smtp.port,
          user: 'ctem',
          password: `env:DIGEST_T_BAD_${suffix}`,
          requireTls: false,
        },
      },
    };
    const report = await buildDigest(db.pool, wrong, parseWeek('2026-W45')!, {
      now: new Date('2026-11-23T12:00:00Z'),
    });
    const out = await deliverDigest(
      { pool: db.pool, config: wrong, baseDir: process.cwd(), log: pino({ level: 'silent' }) },
      report,
    );
    expect(out).toEqual([
      {
        channel: 'email',
        status: 'failed',
        detail: expect.stringMatching(/Invalid login|535|Invalid username/) as unknown as string,
      },
    ]);
    expect(smtp.authFailures).toContain('ctem');
    expect(JSON.stringify(out)).not.toContain('not-the-password');
  });
});
