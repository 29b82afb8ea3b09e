// The abuse suite: every way in from outside, attacked. Forged, stale, future-dated, tampered and
// replayed Slack requests against the real Bolt endpoint; Teams activities without a valid Bot
// Framework JWT in production mode (the real @microsoft/teams.apps validation, keys served by the
// local connector); Jira webhooks with a bad HMAC and ServiceNow calls with a bad shared secret; and
// decisions by people without the role. Each attack must be refused, must leave an audit event, and
// must change nothing: the exposure's state in its campaign workflow (queried on the real Temporal server), its
// lifecycle events and the ticket ledger are compared before and after.
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { configSchema } from '../../domain/config.ts';
import { registerTicketWebhooks } from '../../bots/webhooks/index.ts';
import { slackSignature } from '../../bots/slack/verify.ts';
import { decisionsOf, view } from '../lifecycle/support.ts';
import {
  APP_ID,
  OLIVIA_AAD,
  PAT_AAD,
  bearer,
  blockAction,
  cardAction,
  chatWorld,
  installActivity,
  interactivityBody,
  postActivity,
  postToSlackEndpoint,
  until,
  waitForSlackMessage,
  type ChatWorld,
} from '../chat/support.ts';

const OLIVIA_CHAT = 'a:1olivia-abuse-chat';
const JIRA_KEY = 'SEC-666';
const SN_SYS_ID = 'abcdef0123456789abcdef0123456789';

let world: ChatWorld;
let target: string;
let jiraSecret: string;
let snSecret: string;
let refused = 0;
const refusedBy: Record<string, number> = {};

function envRef(value: string): `env:${string}` {
  const name = `CTEM_ABUSE_${randomBytes(4).toString('hex').toUpperCase()}`;
  process.env[name] = value;
  return `env:${name}`;
}

beforeAll(async () => {
  world = await chatWorld({ teamsAuthentication: 'production' });
  expect(
    (await postActivity(world, installActivity(world, OLIVIA_AAD, OLIVIA_CHAT), bearer(world))).status,
  ).toBe(200);
  // The ticket webhooks on the same server, with their secrets.
  jiraSecret = randomBytes(16).toString('hex');
  snSecret = randomBytes(16).toString('hex');
  const ticketConfig = configSchema.parse({
    version: 1,
    integrations: {
      jira: {
        url: 'http://127.0.0.1:9/jira',
        auth: { email: 'ctem@example.com', apiToken: envRef('unused-token') },
        project: 'SEC',
        webhookSecret: envRef(jiraSecret),
      },
      servicenow: {
        url: 'http://127.0.0.1:9/sn',
        auth: { username: 'ctem', password: envRef('unused-password') },
        inboundSecret: envRef(snSecret),
      },
    },
  });
  const routes = registerTicketWebhooks(world.http, ticketConfig, {
    pool: world.db.pool,
    client: world.temporal.client,
    // Refusals are logged at warn; the tests read the audit log instead.
    log: pino({ level: process.env.CTEM_TEST_LOG ?? 'silent' }),
    baseDir: process.cwd(),
  });
  expect(routes).toEqual(['/webhooks/jira', '/webhooks/servicenow']);

  target = (await world.exposures({ weaknesses: ['CVE-2099-6601'], host: 'abuse-target' }))[0]!;
  // The exposure has an open ticket in each queue: a forged "Done" would signal its workflow.
  for (const [system, key] of [
    ['jira', JIRA_KEY],
    ['servicenow', SN_SYS_ID],
  ] as const)
    await world.db.pool.query(
      `insert into tickets (system, group_key, external_key, ticket_key, exposure_ids, last_status, remote_status)
       values ($1, $2, $3, $4, $5, 'open', 'open')`,
      [system, `abuse-unit-${system}`, `ctem-ru-abuse-${system}`, key, [target]],
    );
});

afterAll(() => {
  const line = { attacksRefused: refused, by: refusedBy };
  console.log(`abuse suite: ${JSON.stringify(line)}`);
});

/** Everything an attack could change, read from Temporal and PostgreSQL. */
async function snapshot(id: string) {
  const v = await view(world.temporal.client, world.db.pool, id);
  const lifecycle = await world.db.pool.query<{ type: string; actor: string }>(
    `select type, actor from events where exposure_id = $1 and type <> 'decision-refused' order by id`,
    [id],
  );
  const tickets = await world.db.pool.query(
    `select system, ticket_key, last_status, remote_status, status_changed_at from tickets order by system`,
  );
  const row = await world.db.pool.query(
    `select state, owner, priority, sla_due from exposures where id = $1`,
    [id],
  );
  return {
    state: v.state,
    owner: v.owner,
    decisions: await decisionsOf(world.db.pool, id),
    lifecycle: lifecycle.rows,
    tickets: tickets.rows,
    exposure: row.rows,
  };
}

async function lastEventId(): Promise<number> {
  const { rows } = await world.db.pool.query<{ id: number | null }>('select max(id) as id from events');
  return rows[0]!.id ?? 0;
}

async function auditRowsSince(mark: number, type: string, where = 'true', params: unknown[] = []) {
  const { rows } = await world.db.pool.query<{
    actor: string;
    reason: string;
    data: Record<string, unknown>;
  }>(`select actor, reason, data from events where id > $1 and type = $2 and (${where}) order by id`, [
    mark,
    type,
    ...params,
  ]);
  return rows;
}

/**
 * Run one attack: it must be answered with one of the refusing statuses, leave exactly one audit
 * row of the expected kind, and change nothing.
 */
async function attack(
  label: string,
  send: () => Promise<number>,
  expectStatus: number[],
  audit: { type: 'request-refused' | 'decision-refused'; channel: string; reason: RegExp },
): Promise<void> {
  const before = await snapshot(target);
  const mark = await lastEventId();
  const status = await send();
  expect(expectStatus, `${label}: HTTP status`).toContain(status);
  const rows = await until(
    `the audit row for "${label}"`,
    () =>
      audit.type === 'request-refused'
        ? auditRowsSince(mark, 'request-refused', `data->>'channel' = $3`, [audit.channel])
        : auditRowsSince(mark, 'decision-refused', 'exposure_id = $3', [target]),
    (r) => r.length >= 1,
  );
  expect(rows, label).toHaveLength(1);
  expect(rows[0]!.reason, label).toMatch(audit.reason);
  // Give anything an accepted request would have set off the time to happen, then compare.
  await new Promise((r) => setTimeout(r, 200));
  expect(await snapshot(target), `${label}: state unchanged`).toEqual(before);
  refused++;
  refusedBy[audit.channel] = (refusedBy[audit.channel] ?? 0) + 1;
}

const now = () => Math.floor(Date.now() / 1000);

describe('Slack: forged, stale, future-dated and tampered requests', () => {
  async function click(user = 'U0OLIVIA', actionId = 'ctem_all_approve') {
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-6601');
    return interactivityBody(
      blockAction({ user, channel: message.channel, ts: message.ts, actionId, value: 'all' }),
    );
  }
  const slack = (reason: RegExp) => ({ type: 'request-refused' as const, channel: 'slack', reason });

  it('refuses each one with 401, audits it and leaves the exposure as it was', async () => {
    const body = await click();
    const post = (raw: string, o: Parameters<typeof postToSlackEndpoint>[2]) => async () =>
      (await postToSlackEndpoint(world, raw, o)).status;
    await attack(
      'signed with another secret',
      post(body, { secret: 'not-the-signing-secret' }),
      [401],
      slack(/signature mismatch/),
    );
    await attack(
      'a made-up signature',
      post(body, { signature: `v0=${'0'.repeat(64)}` }),
      [401],
      slack(/signature mismatch/),
    );
    await attack(
      'a v1 signature',
      post(body, { signature: `v1=${'a'.repeat(64)}` }),
      [401],
      slack(/malformed X-Slack-Signature/),
    );
    await attack('no signature', post(body, { signature: '' }), [401], slack(/malformed X-Slack-Signature/));
    await attack(
      'stale (6 minutes old)',
      post(body, { timestamp: now() - 360 }),
      [401],
      slack(/s old \(limit 300 s\)/),
    );
    await attack(
      'future-dated (6 minutes ahead)',
      post(body, { timestamp: now() + 360 }),
      [401],
      slack(/in the future/),
    );
    await attack(
      'signed long ago with a valid signature for that time',
      post(body, { timestamp: now() - 86_400 * 30 }),
      [401],
      slack(/s old/),
    );
    await attack(
      'body changed after signing (the clicker swapped for the CISO)',
      async () => {
        const ts = String(now());
        const res = await fetch(`${world.baseUrl}/slack/events`, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            'x-slack-request-timestamp': ts,
            'x-slack-signature': slackSignature(world.signingSecret, ts, body),
          },
          body: body.replace('U0OLIVIA', 'U0CYRUS'),
        });
        return res.status;
      },
      [401],
      slack(/signature mismatch/),
    );
    await attack(
      'no timestamp header',
      async () =>
        (
          await fetch(`${world.baseUrl}/slack/events`, {
            method: 'POST',
            headers: {
              'content-type': 'application/x-www-form-urlencoded',
              'x-slack-signature': slackSignature(world.signingSecret, '', body),
            },
            body,
          })
        ).status,
      [401],
      slack(/X-Slack-Request-Timestamp/),
    );
  });

  it('acts once on a replayed click and audits every replay', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-6602'], host: 'abuse-replay' });
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-6602');
    const raw = interactivityBody(
      blockAction({
        user: 'U0OLIVIA',
        channel: message.channel,
        ts: message.ts,
        actionId: 'ctem_all_snooze',
        selected: '3',
      }),
    );
    const ts = now();
    // The genuine click: it is acted on (the control that shows the endpoint works).
    expect((await postToSlackEndpoint(world, raw, { timestamp: ts })).status).toBe(200);
    await until(
      'snoozed',
      () => view(world.temporal.client, world.db.pool, id!),
      (v) => v.state === 'snoozed',
    );
    await until(
      'the snooze recorded',
      () => world.db.pool.query(`select 1 from events where exposure_id = $1 and type = 'snooze'`, [id]),
      (r) => r.rowCount === 1,
    );
    for (const [label, retryNum] of [
      ['the same signed click again', undefined],
      ['the same click as a Slack retry', 1],
    ] as const) {
      const before = await snapshot(id!);
      const mark = await lastEventId();
      const res = await postToSlackEndpoint(world, raw, { timestamp: ts, ...(retryNum ? { retryNum } : {}) });
      // Acknowledged (Slack would retry otherwise) but not acted on, and recorded.
      expect(res.status).toBe(200);
      const rows = await until(
        `the replay audit row (${label})`,
        () => auditRowsSince(mark, 'request-refused', `data->>'channel' = 'slack'`),
        (r) => r.length >= 1,
      );
      expect(rows).toHaveLength(1);
      expect(rows[0]!.reason).toMatch(/replayed interaction .* not acted on/);
      await new Promise((r) => setTimeout(r, 200));
      expect(await snapshot(id!)).toEqual(before);
      refused++;
      refusedBy.slack = (refusedBy.slack ?? 0) + 1;
    }
    expect(await decisionsOf(world.db.pool, id!)).toHaveLength(1);
  });
});

describe('Teams: activities without a valid Bot Framework token (production mode)', () => {
  async function approveCard(aad = OLIVIA_AAD): Promise<Record<string, unknown>> {
    const call = await until(
      'the Teams card for the target',
      () =>
        world.connector.calls.find(
          (c) => c.conversationId === OLIVIA_CHAT && JSON.stringify(c.activity).includes('CVE-2099-6601'),
        ),
      (c) => c !== undefined,
    );
    const key = /"key":"([^"]+)"/.exec(JSON.stringify(call!.activity))![1]!;
    return cardAction({
      world,
      conversationId: OLIVIA_CHAT,
      aadObjectId: aad,
      verb: 'approve',
      data: { key, target: 'all' },
    });
  }
  const teams = (reason: RegExp) => ({ type: 'request-refused' as const, channel: 'teams', reason });

  it('refuses each one with 401, audits it and leaves the exposure as it was', async () => {
    const activity = await approveCard();
    const send = (auth: string | undefined) => async () => (await postActivity(world, activity, auth)).status;
    const { privateKey: otherKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const t = now();
    const unsigned = `${enc({ alg: 'none', typ: 'JWT' })}.${enc({
      iss: world.connector.issuer,
      aud: APP_ID,
      serviceurl: world.connector.serviceUrl,
      nbf: t - 60,
      exp: t + 3600,
    })}.`;
    const hs256Input = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc({ iss: world.connector.issuer, aud: APP_ID, exp: t + 3600 })}`;
    const hs256 = `${hs256Input}.${createHmac('sha256', APP_ID).update(hs256Input).digest('base64url')}`;
    await attack('no Authorization header', send(undefined), [401], teams(/Authorization header missing/));
    await attack(
      'a token signed with another key',
      send(bearer(world, { signWith: otherKey })),
      [401],
      teams(/did not validate/),
    );
    await attack(
      'an expired token',
      send(bearer(world, { expiresInSeconds: -900 })),
      [401],
      teams(/did not validate/),
    );
    await attack(
      'a token for another bot',
      send(bearer(world, { aud: 'some-other-bot' })),
      [401],
      teams(/did not validate/),
    );
    await attack(
      'a token from another issuer',
      send(bearer(world, { iss: 'https://evil.example' })),
      [401],
      teams(/did not validate/),
    );
    await attack(
      'a token for another service URL',
      send(bearer(world, { serviceurl: 'https://elsewhere.example/teams/' })),
      [401],
      teams(/did not validate/),
    );
    await attack(
      'an unsigned token (alg none)',
      send(`Bearer ${unsigned}`),
      [401],
      teams(/did not validate/),
    );
    await attack(
      'an HS256 token keyed with the app id',
      send(`Bearer ${hs256}`),
      [401],
      teams(/did not validate/),
    );
    await attack('a bearer of garbage', send('Bearer not.a.jwt'), [401], teams(/did not validate/));
    await attack(
      'basic auth instead of a bearer',
      send(`Basic ${Buffer.from(`${APP_ID}:x`).toString('base64')}`),
      [401],
      teams(/did not validate/),
    );
  });
});

describe('ticket webhooks with a bad secret', () => {
  const jiraBody = (status: string) =>
    JSON.stringify({
      webhookEvent: 'jira:issue_updated',
      user: { displayName: 'Mallory' },
      issue: { key: JIRA_KEY, fields: { status: { name: status, statusCategory: { key: 'done' } } } },
    });
  const postJira = (body: string, signature?: string) => async () =>
    (
      await fetch(`${world.baseUrl}/webhooks/jira`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(signature ? { 'x-hub-signature': signature } : {}),
        },
        body,
      })
    ).status;
  const hub = (secret: string, body: string) =>
    `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  const jira = (reason: RegExp) => ({ type: 'request-refused' as const, channel: 'jira', reason });

  it('Jira: a missing, wrong or misplaced HMAC is refused with 401, audited, and signals nothing', async () => {
    const body = jiraBody('Done');
    await attack('Jira without a signature', postJira(body), [401], jira(/X-Hub-Signature/));
    await attack(
      'Jira signed with another secret',
      postJira(body, hub('guessed', body)),
      [401],
      jira(/X-Hub-Signature/),
    );
    await attack(
      'Jira with a signature of another body',
      postJira(body, hub(jiraSecret, jiraBody('To Do'))),
      [401],
      jira(/X-Hub-Signature/),
    );
    await attack(
      'Jira with a SHA-1 signature',
      postJira(body, `sha1=${createHmac('sha1', jiraSecret).update(body).digest('hex')}`),
      [401],
      jira(/X-Hub-Signature/),
    );
    await attack(
      'Jira with the secret itself as the signature',
      postJira(body, jiraSecret),
      [401],
      jira(/X-Hub-Signature/),
    );
  });

  it('Jira: the same event correctly signed does get through (the control)', async () => {
    const body = JSON.stringify({
      webhookEvent: 'jira:issue_updated',
      issue: { key: 'SEC-404', fields: { status: { name: 'Done', statusCategory: { key: 'done' } } } },
    });
    const res = await fetch(`${world.baseUrl}/webhooks/jira`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hub-signature': hub(jiraSecret, body) },
      body,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ outcome: 'unknown-ticket' });
  });

  const snBody = JSON.stringify({
    sys_id: SN_SYS_ID,
    number: 'INC0010001',
    state: '6',
    sys_updated_by: 'mallory',
  });
  const postSn =
    (headers: Record<string, string>, body = snBody) =>
    async () =>
      (
        await fetch(`${world.baseUrl}/webhooks/servicenow`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body,
        })
      ).status;
  const sn = (reason: RegExp) => ({ type: 'request-refused' as const, channel: 'servicenow', reason });

  it('ServiceNow: a missing or wrong shared secret is refused with 401, audited, and signals nothing', async () => {
    await attack('ServiceNow without the secret', postSn({}), [401], sn(/shared secret/));
    await attack(
      'ServiceNow with a wrong secret',
      postSn({ 'x-ctem-secret': 'guessed' }),
      [401],
      sn(/shared secret/),
    );
    await attack(
      'ServiceNow with the secret plus one character',
      postSn({ 'x-ctem-secret': `${snSecret}x` }),
      [401],
      sn(/shared secret/),
    );
    await attack(
      'ServiceNow with the secret in another header',
      postSn({ authorization: `Bearer ${snSecret}` }),
      [401],
      sn(/shared secret/),
    );
    await attack(
      'ServiceNow with an empty secret',
      postSn({ 'x-ctem-secret': '' }),
      [401],
      sn(/shared secret/),
    );
  });

  it('ServiceNow: the right secret gets through (the control)', async () => {
    const body = JSON.stringify({ sys_id: 'f'.repeat(32), state: '6' });
    const res = await fetch(`${world.baseUrl}/webhooks/servicenow`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-ctem-secret': snSecret },
      body,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ outcome: 'unknown-ticket' });
  });
});

describe('decisions by people without the role', () => {
  const decision = (reason: RegExp) => ({ type: 'decision-refused' as const, channel: 'role', reason });

  it('are refused by the workflow validator, recorded, and change nothing — from Slack, Teams and the API', async () => {
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-6601');
    const slackClick = (user: string, actionId: string) => async () =>
      (
        await postToSlackEndpoint(
          world,
          interactivityBody(
            blockAction({ user, channel: message.channel, ts: message.ts, actionId, value: 'all' }),
          ),
        )
      ).status;
    await attack(
      'Slack: Pat (no role) approves',
      slackClick('U0PAT', 'ctem_all_approve'),
      [200],
      decision(/pat holds no role in scope prod/),
    );
    await attack(
      'Slack: an account that is nobody in ctem.yaml approves',
      slackClick('U0MALLORY', 'ctem_all_approve'),
      [200],
      decision(/not linked to a person in ctem.yaml/),
    );
    await attack(
      'Slack: Olivia (owner) accepts the risk of her own exposure',
      slackClick('U0OLIVIA', 'ctem_all_acceptRisk'),
      [200],
      decision(/olivia holds owner in scope prod; accepting .* needs/),
    );
    const call = world.connector.calls.find(
      (c) => c.conversationId === OLIVIA_CHAT && JSON.stringify(c.activity).includes('CVE-2099-6601'),
    )!;
    const key = /"key":"([^"]+)"/.exec(JSON.stringify(call.activity))![1]!;
    await attack(
      'Teams: Pat (no role) approves with a valid token',
      async () =>
        (
          await postActivity(
            world,
            cardAction({
              world,
              conversationId: OLIVIA_CHAT,
              aadObjectId: PAT_AAD,
              verb: 'approve',
              data: { key, target: 'all' },
            }),
            bearer(world),
          )
        ).status,
      [200],
      decision(/pat holds no role in scope prod/),
    );
    await attack(
      'API: Pat accepts the risk',
      async () => {
        const [o] = await world.bots.decisions.decide({ personId: 'pat', via: 'dashboard' }, [target], {
          kind: 'acceptRisk',
          justification: 'trust me',
          expires: new Date(Date.now() + 86_400_000).toISOString(),
        });
        return o!.ok ? 200 : 403;
      },
      [403],
      decision(/pat holds no role/),
    );
    await attack(
      'API: someone not in ctem.yaml approves',
      async () => {
        const [o] = await world.bots.decisions.decide({ personId: 'mallory', via: 'dashboard' }, [target], {
          kind: 'approve',
        });
        return o!.ok ? 200 : 403;
      },
      [403],
      decision(/.+/),
    );
  });

  it('the target is still awaiting its decision after every attack', async () => {
    const v = await view(world.temporal.client, world.db.pool, target);
    expect(v.state).toBe('awaiting-decision');
    expect(await decisionsOf(world.db.pool, target)).toHaveLength(0);
    expect(refused).toBeGreaterThanOrEqual(35);
  });
});
