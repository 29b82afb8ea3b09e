// The chat tests' world: the real Temporal server and PostgreSQL of the run, a worker running the
// real campaign workflow, the project's HTTP server with the Slack and Teams bots mounted, a local
// Slack Web API and a local Bot Connector (with its token endpoint and signing keys), and helpers
// to send what Slack and Teams send: v0-signed interactivity payloads and JWT-signed activities.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll } from 'vitest';
import { pino } from 'pino';
import type { Worker } from '@temporalio/worker';
import type { Deps } from '../../runtime/deps.ts';
import { parseConfig, type Config } from '../../domain/config.ts';
import { HttpServer } from '../../bots/http.ts';
import { startChatBots, type ChatBots } from '../../bots/mount.ts';
import { slackSignature } from '../../bots/slack/verify.ts';
import { dispatchChanges } from '../../lifecycle/dispatch.ts';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { FakeSlackApi } from '../fakes/slack-api.ts';
import { FakeBotConnector } from '../fakes/bot-connector.ts';
import { seedExposures, untilState } from '../lifecycle/support.ts';
import { testComposition } from '../support/deps.ts';

export const APP_ID = '00000000-0000-4000-8000-00000000c7e3';
export const TENANT = '11111111-2222-4333-8444-555555555555';
export const OLIVIA_AAD = 'aaaaaaaa-0000-4000-8000-000000000001';
export const LENA_AAD = 'aaaaaaaa-0000-4000-8000-000000000002';
export const PAT_AAD = 'aaaaaaaa-0000-4000-8000-000000000003';
export const TEAMS_CHANNEL = '19:prodsec@thread.tacv2';

export interface ChatWorld {
  db: TestDatabase;
  temporal: TestTemporal;
  slack: FakeSlackApi;
  connector: FakeBotConnector;
  http: HttpServer;
  baseUrl: string;
  bots: ChatBots;
  config: Config;
  taskQueue: string;
  worker: Worker;
  signingSecret: string;
  /** The dependencies of the worker's activities (notifiers included), for the lifecycle's jobs. */
  deps: Deps;
  /**
   * Seed exposures and start their lifecycles (the decision request goes out, or waits for the
   * daily queue). Every host gets every weakness, all fixed by one package: one campaign. The
   * package is named after the first host unless given, so each call is a campaign of its own.
   */
  exposures(opts: {
    weaknesses: string[];
    exploited?: boolean;
    scope?: string;
    host?: string;
    hosts?: string[];
    package?: string;
    /** Leave the states to the test (a queued or baseline dispatch). */
    baseline?: boolean;
    waitFor?: string | false;
  }): Promise<string[]>;
}

export interface WorldOptions {
  /** Per-channel spacing of Slack sends (ms); small by default so tests run fast. */
  slackIntervalMs?: number;
  teamsAuthentication?: 'production' | 'development';
  extraScopeYaml?: string;
  /** More scopes, appended to the scopes list. */
  extraScopesYaml?: string;
  /** Slack over Socket Mode instead of HTTP. */
  slackMode?: 'http' | 'socket';
  /** scopes[prod].notifications; by default every campaign is urgent and escalations go at once. */
  prodNotifications?: string;
}

/** Build the whole world for one test file; everything is stopped after the file's tests. */
export async function chatWorld(opts: WorldOptions = {}): Promise<ChatWorld> {
  const db = await testDatabase();
  const temporal = await testTemporal();
  // testDatabase() starts asset ids at a random offset: workflow ids never collide across files.
  const suffix = randomBytes(4).toString('hex');
  const token = `xoxb-test-${suffix}`;
  const signingSecret = randomBytes(16).toString('hex');
  const teamsSecret = randomBytes(12).toString('base64url');
  const appToken = `xapp-test-${suffix}`;
  const env = {
    ...process.env,
    [`CHAT_T_SLACK_${suffix}`]: token,
    [`CHAT_T_SIGN_${suffix}`]: signingSecret,
    [`CHAT_T_TEAMS_${suffix}`]: teamsSecret,
    [`CHAT_T_APP_${suffix}`]: appToken,
  };
  const slack = await new FakeSlackApi({ token, appToken }).start();
  const connector = await new FakeBotConnector({
    appId: APP_ID,
    appSecret: teamsSecret,
    tenantId: TENANT,
  }).start();
  const config = parseConfig(`
version: 1
people:
  - { id: olivia, name: Olivia Owner, slack: U0OLIVIA, teams: ${OLIVIA_AAD}, manager: mona }
  - { id: mona, name: Mona Manager, slack: U0MONA }
  - { id: adam, name: Adam Approver, slack: U0ADAM }
  - { id: lena, name: Lena Lead, slack: U0LENA, teams: ${LENA_AAD} }
  - { id: cyrus, name: Cyrus Ciso, slack: U0CYRUS }
  - { id: pat, name: Pat Passerby, slack: U0PAT, teams: ${PAT_AAD} }
integrations:
  slack:
    mode: ${opts.slackMode ?? 'http'}
    botToken: env:CHAT_T_SLACK_${suffix}
    signingSecret: env:CHAT_T_SIGN_${suffix}
    appToken: env:CHAT_T_APP_${suffix}
    apiUrl: ${slack.url}
    perChannelIntervalMs: ${opts.slackIntervalMs ?? 20}
  teams:
    appId: ${APP_ID}
    tenantId: ${TENANT}
    clientSecret: env:CHAT_T_TEAMS_${suffix}
    authentication: ${opts.teamsAuthentication ?? 'production'}
    serviceUrl: ${connector.serviceUrl}
    perConversationIntervalMs: 20
    endpoints:
      login: ${connector.loginEndpoint}
      openIdMetadata: ${connector.openIdMetadataUrl}
      tokenIssuer: ${connector.issuer}
scopes:
  - name: prod
    internetFacing: true
    criticality: critical
    roles: { owner: [olivia], approver: [adam], securityLead: [lena], ciso: [cyrus] }
    channel: { slack: C0PROD, teams: '${TEAMS_CHANNEL}' }
    patch: { executor: demo }
    notifications: ${opts.prodNotifications ?? '{ urgent: { priority: [Act, Attend, Track*, Track] }, escalationWindow: 0s }'}
    lifecycle:
      maxSnooze: 30d
      maxRiskAcceptance: 90d
${opts.extraScopeYaml ?? ''}
${opts.extraScopesYaml ?? ''}
`);
  const taskQueue = temporal.taskQueue('chat');
  // One composition, as in `ctem up`: the worker's notifiers and the bots share its chat runtime.
  const composition = testComposition({ pool: db.pool, config, env });
  const worker = await temporal.worker({ taskQueue, pool: db.pool, deps: composition.deps });
  const running = worker.run();
  const log = pino({ level: process.env.CTEM_TEST_LOG ?? 'silent' });
  const http = new HttpServer(log);
  const bots = await startChatBots({
    http,
    config,
    chat: composition.chat,
    client: temporal.client,
    log,
    baseDir: process.cwd(),
    env,
    alerts: false,
  });
  if (!bots) throw new Error('chat bots did not start');
  const port = await http.listen(0, '127.0.0.1');
  afterAll(async () => {
    await bots.stop();
    await http.close();
    worker.shutdown();
    await running;
    await slack.stop();
    await connector.stop();
  });

  return {
    db,
    temporal,
    slack,
    connector,
    http,
    baseUrl: `http://127.0.0.1:${port}`,
    bots,
    config,
    taskQueue,
    worker,
    signingSecret,
    deps: composition.deps,
    async exposures({ weaknesses, exploited, scope, host, hosts, package: pkg, baseline, waitFor }) {
      const names = hosts ?? [host ?? `chat-${randomBytes(3).toString('hex')}`];
      const seeded = [];
      for (const h of names)
        seeded.push(
          await seedExposures(db.pool, {
            scope: scope ?? 'prod',
            weaknesses,
            exploited: exploited ?? false,
            package: { name: pkg ?? `lib-${names[0]}`, fixedVersion: '3.0.8' },
            host: h,
          }),
        );
      await dispatchChanges(
        composition.deps,
        temporal.client,
        seeded.flatMap((s) =>
          s.ids.map((id) => ({ exposureId: id, change: 'new' as const, scanId: s.scanId, at: s.at })),
        ),
        { taskQueue, ...(baseline ? { baseline: true } : {}) },
      );
      const ids = seeded.flatMap((s) => s.ids);
      const state = waitFor ?? 'awaiting-decision';
      if (state) for (const id of ids) await untilState(temporal.client, db.pool, id, state);
      return ids;
    },
  };
}

// ---- what Slack sends -------------------------------------------------------------------------

export interface SignedRequestOptions {
  /** Seconds; defaults to now. */
  timestamp?: number;
  secret?: string;
  retryNum?: number;
  /** Replace the signature (forgery). */
  signature?: string;
  contentType?: string;
}

export async function postToSlackEndpoint(
  world: ChatWorld,
  rawBody: string,
  o: SignedRequestOptions = {},
): Promise<{ status: number; ms: number; headers: Headers; text: string }> {
  const ts = String(o.timestamp ?? Math.floor(Date.now() / 1000));
  const headers: Record<string, string> = {
    'content-type': o.contentType ?? 'application/x-www-form-urlencoded',
    'x-slack-request-timestamp': ts,
    'x-slack-signature': o.signature ?? slackSignature(o.secret ?? world.signingSecret, ts, rawBody),
  };
  if (o.retryNum !== undefined) {
    headers['x-slack-retry-num'] = String(o.retryNum);
    headers['x-slack-retry-reason'] = 'http_timeout';
  }
  const started = performance.now();
  const res = await fetch(`${world.baseUrl}/slack/events`, { method: 'POST', headers, body: rawBody });
  const text = await res.text();
  return { status: res.status, ms: performance.now() - started, headers: res.headers, text };
}

export function interactivityBody(payload: unknown): string {
  return `payload=${encodeURIComponent(JSON.stringify(payload))}`;
}

/** A block_actions payload as Slack sends it for a click on one of our messages. */
export function blockAction(opts: {
  user: string;
  channel: string;
  ts: string;
  actionId: string;
  value?: string;
  selected?: string;
  triggerId?: string;
}): Record<string, unknown> {
  const action: Record<string, unknown> = {
    action_id: opts.actionId,
    block_id: opts.actionId.startsWith('ctem_all') ? 'ctem_all' : 'ctem_exposure_0',
    type: opts.selected !== undefined ? 'static_select' : 'button',
    action_ts: `${(Date.now() / 1000).toFixed(6)}`,
  };
  if (opts.value !== undefined) action.value = opts.value;
  if (opts.selected !== undefined)
    action.selected_option = { text: { type: 'plain_text', text: opts.selected }, value: opts.selected };
  return {
    type: 'block_actions',
    team: { id: 'T0CTEM', domain: 'ctem-test' },
    user: { id: opts.user, username: opts.user.toLowerCase(), team_id: 'T0CTEM' },
    api_app_id: 'A0CTEM',
    token: 'deprecated-verification-token',
    container: { type: 'message', message_ts: opts.ts, channel_id: opts.channel, is_ephemeral: false },
    trigger_id: opts.triggerId ?? `${Date.now()}.${randomUUID()}`,
    channel: { id: opts.channel, name: 'directmessage' },
    message: { type: 'message', ts: opts.ts, text: 'ctem' },
    response_url: 'https://hooks.slack.invalid/actions/T0CTEM/1/x',
    actions: [action],
  };
}

/** A view_submission payload for our decision modal, with the values typed in it. */
export function viewSubmission(opts: {
  user: string;
  privateMetadata: string;
  values: Record<string, Record<string, unknown>>;
  /** The modal's callback id: ctem_decision (default) or ctem_patch_reject. */
  callbackId?: string;
}): Record<string, unknown> {
  return {
    type: 'view_submission',
    team: { id: 'T0CTEM', domain: 'ctem-test' },
    user: { id: opts.user, username: opts.user.toLowerCase(), team_id: 'T0CTEM' },
    api_app_id: 'A0CTEM',
    trigger_id: `${Date.now()}.${randomUUID()}`,
    view: {
      id: `V${randomBytes(4).toString('hex')}`,
      type: 'modal',
      callback_id: opts.callbackId ?? 'ctem_decision',
      private_metadata: opts.privateMetadata,
      hash: randomBytes(6).toString('hex'),
      state: {
        values: Object.fromEntries(Object.entries(opts.values).map(([block, v]) => [block, { value: v }])),
      },
    },
  };
}

/** The Slack DM message the bot posted for a unit (waits for it). */
export async function waitForSlackMessage(
  world: ChatWorld,
  channel: string,
  contains: string,
  timeoutMs = 20_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = [...world.slack.messages.values()].find(
      (x) => x.channel === channel && JSON.stringify(x.blocks ?? '').includes(contains),
    );
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`no Slack message in ${channel} mentioning ${contains}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function until<T>(
  what: string,
  read: () => Promise<T> | T,
  check: (v: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await read();
    if (check(last)) return last;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)?.slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// ---- what Teams sends -------------------------------------------------------------------------

export async function postActivity(
  world: ChatWorld,
  activity: Record<string, unknown>,
  auth: string | undefined,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${world.baseUrl}/api/teams/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
    body: JSON.stringify(activity),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

export function cardAction(opts: {
  world: ChatWorld;
  conversationId: string;
  replyToId?: string;
  aadObjectId: string;
  verb: string;
  data: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    type: 'invoke',
    name: 'adaptiveCard/action',
    id: randomUUID(),
    timestamp: new Date().toISOString(),
    channelId: 'msteams',
    serviceUrl: opts.world.connector.serviceUrl,
    from: { id: `29:${opts.aadObjectId}`, aadObjectId: opts.aadObjectId, name: 'someone' },
    recipient: { id: `28:${APP_ID}`, name: 'ctem' },
    conversation: {
      id: opts.conversationId,
      conversationType: opts.conversationId.startsWith('19:') ? 'channel' : 'personal',
      tenantId: TENANT,
    },
    channelData: { tenant: { id: TENANT } },
    ...(opts.replyToId ? { replyToId: opts.replyToId } : {}),
    value: { action: { type: 'Action.Execute', verb: opts.verb, data: opts.data }, trigger: 'manual' },
  };
}

export function installActivity(
  world: ChatWorld,
  aadObjectId: string,
  conversationId: string,
): Record<string, unknown> {
  return {
    type: 'installationUpdate',
    action: 'add',
    id: randomUUID(),
    timestamp: new Date().toISOString(),
    channelId: 'msteams',
    serviceUrl: world.connector.serviceUrl,
    from: { id: `29:${aadObjectId}`, aadObjectId, name: 'someone' },
    recipient: { id: `28:${APP_ID}`, name: 'ctem' },
    conversation: { id: conversationId, conversationType: 'personal', tenantId: TENANT },
    channelData: { tenant: { id: TENANT } },
  };
}

export function bearer(
  world: ChatWorld,
  overrides: Parameters<FakeBotConnector['serviceToken']>[1] = {},
): string {
  return `Bearer ${world.connector.serviceToken(world.connector.serviceUrl, overrides)}`;
}
