// Requests to the Slack endpoint that must not be acted on: forged, stale, dated in the future,
// replayed, retried. Each is sent over HTTP to the real Bolt app on the project's server.
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { slackSignature, verifySlackSignature } from '../../bots/slack/verify.ts';
import { decisionsOf, view } from '../lifecycle/support.ts';
import {
  blockAction,
  chatWorld,
  interactivityBody,
  postToSlackEndpoint,
  until,
  waitForSlackMessage,
  type ChatWorld,
} from './support.ts';

let world: ChatWorld;
beforeAll(async () => {
  world = await chatWorld();
});

const now = () => Math.floor(Date.now() / 1000);

async function decisionEvents(id: string): Promise<number> {
  const { rows } = await world.db.pool.query<{ n: number }>(
    `select count(*)::int as n from events where exposure_id = $1 and type in ('approve', 'snooze', 'decision-refused')`,
    [id],
  );
  return rows[0]!.n;
}

describe('Slack request signatures', () => {
  it('accepts exactly the v0 HMAC within five minutes either way, and nothing else', () => {
    const secret = 'shh';
    const body = Buffer.from('payload=%7B%7D');
    const at = 1_900_000_000;
    const check = (timestamp: number, signature = slackSignature(secret, String(timestamp), body)) =>
      verifySlackSignature({
        signingSecret: secret,
        timestamp: String(timestamp),
        signature,
        rawBody: body,
        nowMs: at * 1000,
      });
    expect(check(at).ok).toBe(true);
    expect(check(at - 300).ok).toBe(true);
    expect(check(at + 300).ok).toBe(true);
    expect(check(at - 301)).toEqual({ ok: false, reason: 'request timestamp is 301 s old (limit 300 s)' });
    expect(check(at + 301)).toEqual({
      ok: false,
      reason: 'request timestamp is 301 s in the future (limit 300 s)',
    });
    expect(check(at, slackSignature('other', String(at), body))).toEqual({
      ok: false,
      reason: 'signature mismatch',
    });
    expect(check(at, slackSignature(secret, String(at), 'payload=%7B%22x%22%7D'))).toEqual({
      ok: false,
      reason: 'signature mismatch',
    });
    expect(check(at, 'v1=abc').ok).toBe(false);
    expect(
      verifySlackSignature({
        signingSecret: secret,
        timestamp: undefined,
        signature: 'x',
        rawBody: body,
        nowMs: at * 1000,
      }).ok,
    ).toBe(false);
  });
});

describe('the Slack endpoint', () => {
  it('rejects forged, stale and future-dated clicks with 401 and does nothing', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-3001'], host: 'sec-forged' });
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-3001');
    const body = () =>
      interactivityBody(
        blockAction({
          user: 'U0OLIVIA',
          channel: message.channel,
          ts: message.ts,
          actionId: 'ctem_all_approve',
          value: 'all',
        }),
      );
    expect((await postToSlackEndpoint(world, body(), { secret: 'not-the-signing-secret' })).status).toBe(401);
    expect((await postToSlackEndpoint(world, body(), { signature: `v0=${'0'.repeat(64)}` })).status).toBe(
      401,
    );
    expect((await postToSlackEndpoint(world, body(), { timestamp: now() - 6 * 60 })).status).toBe(401);
    // Bolt's own check would let this one through: it only rejects timestamps in the past.
    expect((await postToSlackEndpoint(world, body(), { timestamp: now() + 6 * 60 })).status).toBe(401);
    // A body changed after signing.
    const signedFor = body();
    const ts = now();
    const res = await fetch(`${world.baseUrl}/slack/events`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': String(ts),
        'x-slack-signature': slackSignature(world.signingSecret, String(ts), signedFor),
      },
      body: signedFor.replace('U0OLIVIA', 'U0CYRUS'),
    });
    expect(res.status).toBe(401);
    await new Promise((r) => setTimeout(r, 300));
    expect((await view(world.temporal.client, world.db.pool, id!)).state).toBe('awaiting-decision');
    expect(await decisionEvents(id!)).toBe(0);
  });

  it('acts once on a replayed click (same signed request again, also as a Slack retry), acking every copy', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-3101'], host: 'sec-replay' });
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-3101');
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
    const first = await postToSlackEndpoint(world, raw, { timestamp: ts });
    expect(first.status).toBe(200);
    const replay = await postToSlackEndpoint(world, raw, { timestamp: ts });
    expect(replay.status).toBe(200);
    const retry = await postToSlackEndpoint(world, raw, { timestamp: ts, retryNum: 1 });
    expect(retry.status).toBe(200);
    await until(
      'snoozed',
      () => view(world.temporal.client, world.db.pool, id!),
      (v) => v.state === 'snoozed',
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(await decisionsOf(world.db.pool, id!)).toEqual([{ kind: 'snooze', by: 'olivia' }]);
    expect(await decisionEvents(id!)).toBe(1);
  });

  it('answers an Events API retry of an event it already handled without handling it again', async () => {
    const eventId = `Ev${randomUUID().replace(/-/g, '').slice(0, 10)}`;
    const event = JSON.stringify({
      token: 'x',
      team_id: 'T0CTEM',
      api_app_id: 'A0CTEM',
      type: 'event_callback',
      event_id: eventId,
      event_time: now(),
      event: {
        type: 'app_mention',
        user: 'U0OLIVIA',
        text: '<@U0CTEMBOT> help',
        ts: `${now()}.000100`,
        channel: 'C0PROD',
        event_ts: `${now()}.000100`,
      },
      authorizations: [{ team_id: 'T0CTEM', user_id: 'U0CTEMBOT', is_bot: true }],
    });
    const ephemerals = world.slack.callsTo('chat.postEphemeral').length;
    const first = await postToSlackEndpoint(world, event, { contentType: 'application/json' });
    expect(first.status).toBe(200);
    await world.slack.waitForCalls('chat.postEphemeral', ephemerals + 1);
    // Slack re-sends the same event (new timestamp, new signature) when it missed the ack.
    const again = await postToSlackEndpoint(world, event, { contentType: 'application/json', retryNum: 1 });
    expect(again.status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect(world.slack.callsTo('chat.postEphemeral')).toHaveLength(ephemerals + 1);
  });

  it('answers the URL verification challenge and the SSL check, and refuses oversized bodies', async () => {
    const challenge = await postToSlackEndpoint(
      world,
      JSON.stringify({ type: 'url_verification', challenge: 'c-123', token: 'x' }),
      {
        contentType: 'application/json',
      },
    );
    expect(challenge.status).toBe(200);
    expect(JSON.parse(challenge.text)).toEqual({ challenge: 'c-123' });
    const unsigned = await fetch(`${world.baseUrl}/slack/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'ssl_check=1&token=x',
    });
    expect(unsigned.status).toBe(200);
    const big = await postToSlackEndpoint(world, `payload=${'x'.repeat(600 * 1024)}`);
    expect(big.status).toBe(413);
  });
});
