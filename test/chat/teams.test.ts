// The Teams bot end to end, on the Teams AI library v2: activities signed like the Bot Framework
// signs them come in over HTTP; the bot answers Action.Execute invokes (for the whole campaign, or
// one exposure as an exception) with the refreshed card, and sends proactively through the local Bot
// Connector with a token from the local token endpoint (replies in the original card's reply chain).
import { generateKeyPairSync } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CampaignSummary, OwnerNotification } from '../../domain/ports.ts';
import { createTeamsNotifier } from '../../chat/teams/notifier.ts';
import type { ChatMessageModel } from '../../chat/messages.ts';
import { view } from '../lifecycle/support.ts';
import {
  LENA_AAD,
  OLIVIA_AAD,
  PAT_AAD,
  TEAMS_CHANNEL,
  TENANT,
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
} from './support.ts';

let world: ChatWorld;
const OLIVIA_CHAT = 'a:1olivia-personal-chat';
beforeAll(async () => {
  world = await chatWorld();
  // Olivia installed the app: Teams tells the bot, which keeps the conversation reference.
  const res = await postActivity(world, installActivity(world, OLIVIA_AAD, OLIVIA_CHAT), bearer(world));
  expect(res.status).toBe(200);
});

const DAY = 86_400_000;

/** A campaign as the lifecycle summarises it, with nothing listed. */
function campaign(id: string, action: string, priority: string): CampaignSummary {
  return {
    id,
    scope: 'prod',
    kind: 'package',
    subject: action.split(' ')[1]!,
    action,
    priority,
    totals: { exposures: 1, open: 1, assets: 1, states: { 'awaiting-decision': 1 } },
    exposures: [],
  };
}

interface InvokeAnswer {
  statusCode: number;
  type: string;
  value: unknown;
}

async function eventsOf(id: string): Promise<{ type: string; actor: string; reason: string | null }[]> {
  const { rows } = await world.db.pool.query<{ type: string; actor: string; reason: string | null }>(
    'select type, actor, reason from events where exposure_id = $1 order by id',
    [id],
  );
  return rows;
}

/** The card the bot posted to a conversation for a weakness, and its activity id. */
async function cardFor(conversationId: string, weakness: string) {
  const call = await until(
    `a card for ${weakness} in ${conversationId}`,
    () =>
      world.connector.calls.find(
        (c) =>
          c.method === 'POST' &&
          c.conversationId === conversationId &&
          JSON.stringify(c.activity).includes(weakness),
      ),
    (c) => c !== undefined,
  );
  const conversation = world.connector.activities.get(conversationId)!;
  const activityId = [...conversation].find(([, a]) => JSON.stringify(a).includes(weakness))![0];
  const attachments = call!.activity.attachments as {
    content: {
      actions?: { type: string; card?: { actions: { data: { key: string } }[] }; data?: { key: string } }[];
    };
  }[];
  const first = attachments[0]!.content.actions?.[0];
  const key = first ? (first.data?.key ?? first.card!.actions[0]!.data.key) : '';
  return { activityId, key, call: call! };
}

async function invoke(
  conversationId: string,
  aad: string,
  verb: string,
  data: Record<string, unknown>,
  replyToId?: string,
) {
  const res = await postActivity(
    world,
    cardAction({ world, conversationId, aadObjectId: aad, verb, data, ...(replyToId ? { replyToId } : {}) }),
    bearer(world),
  );
  expect(res.status).toBe(200);
  return res.body as InvokeAnswer;
}

describe('Teams: requests are authenticated', () => {
  it('rejects activities without a valid Bot Framework token, accepts a valid one', async () => {
    const activity = installActivity(world, PAT_AAD, 'a:1pat-chat');
    expect((await postActivity(world, activity, undefined)).status).toBe(401);
    const { privateKey: otherKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect((await postActivity(world, activity, bearer(world, { signWith: otherKey }))).status).toBe(401);
    expect((await postActivity(world, activity, bearer(world, { expiresInSeconds: -900 }))).status).toBe(401);
    expect((await postActivity(world, activity, bearer(world, { aud: 'some-other-bot' }))).status).toBe(401);
    expect((await postActivity(world, activity, bearer(world, { iss: 'https://evil.example' }))).status).toBe(
      401,
    );
    expect(
      (await postActivity(world, activity, bearer(world, { serviceurl: 'https://elsewhere.example/teams/' })))
        .status,
    ).toBe(401);
    const { rows: none } = await world.db.pool.query(
      `select 1 from teams_conversations where subject = 'person:pat'`,
    );
    expect(none).toHaveLength(0);
    expect((await postActivity(world, activity, bearer(world))).status).toBe(200);
    const { rows } = await world.db.pool.query<{
      conversation_id: string;
      service_url: string;
      tenant_id: string;
    }>(
      `select conversation_id, service_url, tenant_id from teams_conversations where subject = 'person:pat'`,
    );
    expect(rows).toEqual([
      { conversation_id: 'a:1pat-chat', service_url: world.connector.serviceUrl, tenant_id: TENANT },
    ]);
  });
});

describe('Teams: only the configured tenant', () => {
  it('stops an activity from another tenant before anything handles it: no conversation bound, the refusal audited', async () => {
    const OTHER = '99999999-8888-4777-8666-555555555555';
    const foreign = (activity: Record<string, unknown>) => ({
      ...activity,
      conversation: { ...(activity.conversation as object), tenantId: OTHER },
      channelData: { tenant: { id: OTHER } },
    });
    const bound = async () =>
      (
        await world.db.pool.query<{ conversation_id: string }>(
          `select conversation_id from teams_conversations where subject = 'person:olivia'`,
        )
      ).rows;
    const before = await bound();
    // An installation in the attacker's tenant, from a user carrying olivia's AAD object id.
    await postActivity(world, foreign(installActivity(world, OLIVIA_AAD, 'a:1attacker-chat')), bearer(world));
    expect(await bound()).toEqual(before);
    const { rows: seen } = await world.db.pool.query(
      `select 1 from teams_conversations where conversation_id = 'a:1attacker-chat'`,
    );
    expect(seen).toHaveLength(0);
    const { rows: audited } = await world.db.pool.query<{ reason: string }>(
      `select reason from events where type = 'request-refused' and reason like '%tenant ${OTHER}%'`,
    );
    expect(audited.map((r) => r.reason)).toEqual([
      `activity installationUpdate from tenant ${OTHER}, not the configured tenant: ignored`,
    ]);
  });
});

describe('Teams: the owner decides on the card', () => {
  it('sends the decision request proactively, approves from Action.Execute, answers with the refreshed card', async () => {
    const ids = await world.exposures({
      weaknesses: ['CVE-2099-5001', 'CVE-2099-5002'],
      host: 'teams-approve',
    });
    const { activityId, key, call } = await cardFor(OLIVIA_CHAT, 'CVE-2099-5001');
    // Sent with a bot token from the token endpoint (client credentials for our app and tenant).
    expect(call.authorization).toMatch(/^Bearer ey/);
    expect(world.connector.tokenRequests.at(-1)).toMatchObject({
      grant_type: 'client_credentials',
      client_id:
        world.config.integrations.teams && (world.config.integrations.teams as { appId: string }).appId,
      scope: 'https://api.botframework.com/.default',
      tenant: TENANT,
    });
    expect(JSON.stringify(call.activity)).toContain('All 2 exposures waiting for a decision');
    expect(JSON.stringify(call.activity)).toMatch(
      /"text":"Decision needed · \S+ · Upgrade lib-teams-approve/,
    );
    const answer = await invoke(OLIVIA_CHAT, OLIVIA_AAD, 'approve', { key, target: 'all' }, activityId);
    expect(answer.type).toBe('application/vnd.microsoft.card.adaptive');
    expect(JSON.stringify(answer.value)).toContain('Olivia Owner approved the fix for 2 exposures');
    // The card answered with has nothing left to approve or snooze: no stale actions.
    expect(JSON.stringify(answer.value)).toContain(
      'No decision pending on 1 asset: 2 fix approved, remediating',
    );
    expect(JSON.stringify(answer.value)).not.toContain('"verb":"approve"');
    expect(JSON.stringify(answer.value)).not.toContain('"verb":"snooze"');
    for (const id of ids) {
      expect((await view(world.temporal.client, world.db.pool, id)).state).not.toBe('awaiting-decision');
      expect((await eventsOf(id)).find((e) => e.type === 'approve')).toMatchObject({ actor: 'olivia' });
    }
    // The unit's patch plan asks the approvers (the Teams answer to it is in patch-approval.test.ts);
    // Adam approves it from Slack, the patch runs, and the exposures wait for a re-scan.
    const patchRequest = await waitForSlackMessage(world, 'D0ADAM', 'teams-approve', 150_000);
    const approvePatch = await postToSlackEndpoint(
      world,
      interactivityBody(
        blockAction({
          user: 'U0ADAM',
          channel: patchRequest.channel,
          ts: patchRequest.ts,
          actionId: 'ctem_patch_approve',
          value: 'approve',
        }),
      ),
    );
    expect(approvePatch.status).toBe(200);
    for (const id of ids)
      await until(
        `${id} verifying`,
        () => view(world.temporal.client, world.db.pool, id),
        (v) => v.state === 'verifying',
        60_000,
      );
    for (const id of ids)
      expect((await eventsOf(id)).find((e) => e.type === 'patch-approved')).toMatchObject({ actor: 'adam' });
    // Every copy of the card is updated in place through the Bot Connector as well.
    const put = await until(
      'the card updated in place',
      () => world.connector.calls.find((c) => c.method === 'PUT' && c.activityId === activityId),
      (c) => c !== undefined,
    );
    const updated = JSON.stringify(put!.activity);
    expect(updated).toContain('Olivia Owner approved the fix for 2 exposures');
    // Its first line says it is decided; nothing is left to approve or snooze on it.
    expect(updated).toMatch(
      /"text":"Decided · \S+ · Upgrade lib-teams-approve to 3\.0\.8 or later on teams-approve"/,
    );
    expect(updated).not.toContain('"verb":"approve"');
    expect(updated).not.toContain('"verb":"snooze"');
  }, 180_000);

  it('snoozes, marks a false positive and reassigns one exposure at a time from the card', async () => {
    const [a, b, c] = await world.exposures({
      weaknesses: ['CVE-2099-5101', 'CVE-2099-5102', 'CVE-2099-5103'],
      host: 'teams-three',
    });
    const { key } = await cardFor(OLIVIA_CHAT, 'CVE-2099-5101');
    const snooze = await invoke(OLIVIA_CHAT, OLIVIA_AAD, 'snooze', {
      key,
      target: a,
      snoozeDays: '14',
      reason: 'change freeze',
    });
    expect(snooze.type).toBe('application/vnd.microsoft.card.adaptive');
    const snoozed = await view(world.temporal.client, world.db.pool, a!);
    expect(snoozed.state).toBe('snoozed');
    expect(Date.parse(snoozed.snoozedUntil!) - Date.now()).toBeGreaterThan(13.9 * DAY);

    const fp = await invoke(OLIVIA_CHAT, OLIVIA_AAD, 'markFalsePositive', {
      key,
      target: b,
      reason: 'backported fix in 1.0-3ubuntu2',
    });
    expect(JSON.stringify(fp.value)).toContain('marked as false positive');
    expect((await view(world.temporal.client, world.db.pool, b!)).state).toBe('false-positive');

    const re = await invoke(OLIVIA_CHAT, OLIVIA_AAD, 'reassign', { key, target: c, person: 'lena' });
    expect(JSON.stringify(re.value)).toContain('reassigned (to Lena Lead)');
    // The exposure moves to Lena's campaign for that fix (its lifecycle goes on there).
    await until(
      'reassigned to lena',
      () => view(world.temporal.client, world.db.pool, c!),
      (v) => v.owner === 'lena',
    );
    expect((await eventsOf(a!)).find((e) => e.type === 'snooze')).toMatchObject({ actor: 'olivia' });
    expect((await eventsOf(b!)).find((e) => e.type === 'markFalsePositive')).toMatchObject({
      actor: 'olivia',
    });
  });

  it('the security lead accepts the risk of an Act exposure on the channel copy; both copies update', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-5201'], exploited: true, host: 'teams-act' });
    const { key, activityId } = await cardFor(OLIVIA_CHAT, 'CVE-2099-5201');
    // The same notification goes to the scope's Teams channel (as an escalation would).
    const { rows } = await world.db.pool.query<{ model: ChatMessageModel }>(
      `select model from chat_messages where transport = 'teams' and notification_key = $1`,
      [key],
    );
    const n: OwnerNotification = {
      ...rows[0]!.model.notification,
      to: [],
      channels: { teams: TEAMS_CHANNEL },
    };
    const receipt = await createTeamsNotifier(world.bots.runtime).notify(n);
    expect(receipt.delivered[0]!.ref).toMatch(/^\d+$/);
    await cardFor(TEAMS_CHANNEL, 'CVE-2099-5201');

    // The owner may not accept the risk of an Act exposure: the card says why, nothing changes.
    const refused = await invoke(TEAMS_CHANNEL, OLIVIA_AAD, 'acceptRisk', {
      key,
      target: 'all',
      justification: 'we have compensating controls',
      expires: new Date(Date.now() + 30 * DAY).toISOString().slice(0, 10),
    });
    expect(refused.type).toBe('application/vnd.microsoft.activity.message');
    expect(String(refused.value)).toMatch(
      /accepting the risk of an Act exposure needs a security lead or the CISO/,
    );
    expect((await view(world.temporal.client, world.db.pool, id!)).state).toBe('awaiting-decision');

    const expires = new Date(Date.now() + 60 * DAY).toISOString().slice(0, 10);
    const accepted = await invoke(TEAMS_CHANNEL, LENA_AAD, 'acceptRisk', {
      key,
      target: 'all',
      justification: 'isolated by network policy np-17 until the vendor ships 3.1',
      expires,
    });
    expect(accepted.type).toBe('application/vnd.microsoft.card.adaptive');
    expect(JSON.stringify(accepted.value)).toContain('Lena Lead accepted the risk');
    const v = await view(world.temporal.client, world.db.pool, id!);
    expect(v.state).toBe('risk-accepted');
    expect(v.riskAccepted?.until.slice(0, 10)).toBe(expires);
    const events = await eventsOf(id!);
    expect(events.filter((e) => e.type === 'decision-refused')).toEqual([
      expect.objectContaining({ actor: 'olivia' }),
    ]);
    expect(events.find((e) => e.type === 'acceptRisk')).toMatchObject({ actor: 'lena' });
    // Olivia's own card shows it too.
    await until(
      "Olivia's card updated",
      () =>
        world.connector.calls.find(
          (c) =>
            c.method === 'PUT' &&
            c.activityId === activityId &&
            JSON.stringify(c.activity).includes('accepted the risk'),
        ),
      (c) => c !== undefined,
    );
  });

  it('refuses an expiry beyond the scope maximum and a decision the state does not allow, and records both', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-5401'], host: 'teams-limits' });
    const { key } = await cardFor(OLIVIA_CHAT, 'CVE-2099-5401');
    // Lena decides on the scope channel's copy of the request.
    const { rows } = await world.db.pool.query<{ model: ChatMessageModel }>(
      `select model from chat_messages where transport = 'teams' and notification_key = $1`,
      [key],
    );
    await createTeamsNotifier(world.bots.runtime).notify({
      ...rows[0]!.model.notification,
      to: [],
      channels: { teams: TEAMS_CHANNEL },
    });
    await cardFor(TEAMS_CHANNEL, 'CVE-2099-5401');
    // prod allows risk acceptance for 90 days at most: the workflow's validator says so.
    const tooFar = await invoke(TEAMS_CHANNEL, LENA_AAD, 'acceptRisk', {
      key,
      target: 'all',
      justification: 'vendor fix expected next year',
      expires: new Date(Date.now() + 120 * DAY).toISOString().slice(0, 10),
    });
    expect(tooFar.type).toBe('application/vnd.microsoft.activity.message');
    expect(String(tooFar.value)).toMatch(/beyond the scope's maximum risk acceptance of 90 days/);
    expect((await view(world.temporal.client, world.db.pool, id!)).state).toBe('awaiting-decision');

    const ok = await invoke(TEAMS_CHANNEL, LENA_AAD, 'acceptRisk', {
      key,
      target: 'all',
      justification: 'vendor fix expected next quarter',
      expires: new Date(Date.now() + 60 * DAY).toISOString().slice(0, 10),
    });
    expect(JSON.stringify(ok.value)).toContain('Lena Lead accepted the risk');
    // A snooze on the now risk-accepted exposure (picked by id, as a stale card would): refused.
    const snooze = await invoke(OLIVIA_CHAT, OLIVIA_AAD, 'snooze', { key, target: id, snoozeDays: '7' });
    expect(snooze.type).toBe('application/vnd.microsoft.activity.message');
    expect(String(snooze.value)).toMatch(/the exposure is risk-accepted; snooze is allowed only when it is/);
    expect((await view(world.temporal.client, world.db.pool, id!)).state).toBe('risk-accepted');
    const refused = (await eventsOf(id!)).filter((e) => e.type === 'decision-refused');
    expect(refused.map((e) => e.actor)).toEqual(['lena', 'olivia']);
    expect(refused[0]!.reason).toMatch(/beyond the scope's maximum risk acceptance/);
  });

  it('refuses people without a role and accounts not in ctem.yaml, and records both', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-5301'], host: 'teams-refuse' });
    const { key } = await cardFor(OLIVIA_CHAT, 'CVE-2099-5301');
    const pat = await invoke(OLIVIA_CHAT, PAT_AAD, 'approve', { key, target: 'all' });
    expect(pat).toEqual({
      statusCode: 200,
      type: 'application/vnd.microsoft.activity.message',
      value: expect.stringMatching(/pat holds no role in scope prod; approving a fix needs an owner/),
    });
    const stranger = await invoke(OLIVIA_CHAT, 'ffffffff-0000-4000-8000-00000000dead', 'approve', {
      key,
      target: 'all',
    });
    expect(String(stranger.value)).toMatch(
      /Teams account \(ffffffff-0000-4000-8000-00000000dead\) is not linked to a person in ctem.yaml/,
    );
    const incomplete = await invoke(OLIVIA_CHAT, OLIVIA_AAD, 'markFalsePositive', {
      key,
      target: 'all',
      reason: '',
    });
    expect(String(incomplete.value)).toMatch(
      /marking a false positive needs a reason; say why the finding is wrong/,
    );
    expect((await eventsOf(id!)).filter((e) => e.type === 'decision-refused').map((e) => e.actor)).toEqual([
      'pat',
      'teams:ffffffff-0000-4000-8000-00000000dead',
      'olivia',
    ]);
    expect((await view(world.temporal.client, world.db.pool, id!)).state).toBe('awaiting-decision');
  });
});

describe('Teams: conversation', () => {
  it('answers a message in the personal chat with what the bot does', async () => {
    const before = world.connector.calls.length;
    const res = await postActivity(
      world,
      {
        ...installActivity(world, OLIVIA_AAD, OLIVIA_CHAT),
        type: 'message',
        text: 'help',
      },
      bearer(world),
    );
    expect(res.status).toBe(200);
    const reply = await until(
      'the reply',
      () =>
        world.connector.calls
          .slice(before)
          .find((c) => c.method === 'POST' && c.conversationId === OLIVIA_CHAT),
      (c) => c !== undefined,
    );
    expect(String(reply!.activity.text)).toMatch(/decision requests and SLA escalations/);
    expect(reply!.authorization).toMatch(/^Bearer ey/);
  });
});

describe('Teams: proactive sends', () => {
  it('opens a personal chat with someone the bot has not heard from, and says who it cannot reach', async () => {
    world.connector.installedFor.add(LENA_AAD);
    const n: OwnerNotification = {
      key: 'cmp:prod:lena:test9:escalation:2',
      kind: 'escalation',
      level: 2,
      to: ['lena', 'mona', 'cyrus'],
      text: 'SLA breached and past its grace period',
      campaign: campaign('cmp:prod:lena:test9', 'Upgrade zlib on db-9', 'Act'),
    };
    const receipt = await createTeamsNotifier(world.bots.runtime).notify(n);
    expect(receipt.delivered).toEqual([{ via: 'teams', ref: expect.stringMatching(/^\d+$/) }]);
    expect(world.connector.createdConversations.at(-1)).toEqual({ member: LENA_AAD, tenantId: TENANT });
    await cardFor(`a:personal-${LENA_AAD}`, 'Upgrade zlib on db-9');
    // mona and cyrus have no Teams account in ctem.yaml: the receipt would say so if nobody was reached.
    const nobody = await createTeamsNotifier(world.bots.runtime).notify({
      ...n,
      key: `${n.key}:x`,
      to: ['mona'],
    });
    expect(nobody).toEqual({
      delivered: [],
      skipped: 'mona has no Teams account in ctem.yaml (people[].teams)',
    });
  });

  it('posts a notification naming a thread as a reply to the original card (ReplyToActivity), on its own where there is none', async () => {
    const notifier = createTeamsNotifier(world.bots.runtime);
    const original: OwnerNotification = {
      key: 'campaign:cmp:prod:olivia:test11',
      kind: 'decision-request',
      to: ['olivia'],
      text: 'Attend: Upgrade libpng on db-11',
      campaign: campaign('cmp:prod:olivia:test11', 'Upgrade libpng on db-11', 'Attend'),
    };
    const posted = await notifier.notify(original);
    const originalId = posted.delivered[0]!.ref;
    const reminder: OwnerNotification = {
      ...original,
      key: `${original.key}:reminder:1`,
      kind: 'reminder',
      text: 'Reminder: libpng still waits for your decision',
      thread: original.key,
      channels: { teams: TEAMS_CHANNEL },
    };
    const receipt = await notifier.notify(reminder);
    expect(receipt.delivered).toHaveLength(2);
    const calls = world.connector.calls.filter((c) =>
      JSON.stringify(c.activity).includes('libpng still waits'),
    );
    // In Olivia's chat, a reply to the original's activity: POST …/activities/{original id}.
    const mine = calls.find((c) => c.conversationId === OLIVIA_CHAT)!;
    expect(mine).toMatchObject({ method: 'POST', activityId: originalId, replyToId: originalId });
    expect(mine.activity.replyToId).toBe(originalId);
    expect(JSON.stringify(mine.activity)).not.toContain('"verb":"approve"');
    expect(JSON.stringify(mine.activity)).toContain("decide on the campaign's card above");
    // The channel never had the original: a card of its own there, with the campaign's decisions.
    const channel = calls.find((c) => c.conversationId === TEAMS_CHANNEL)!;
    expect(channel.replyToId).toBeUndefined();
    expect(channel.activityId).toBeUndefined();
    expect(JSON.stringify(channel.activity)).toContain('"verb":"approve"');
  });

  it('waits out a 429 from the Bot Connector for its Retry-After', async () => {
    world.connector.failNext({ status: 429, retryAfterSeconds: 1 });
    const n: OwnerNotification = {
      key: 'cmp:prod:olivia:test10:reminder:1',
      kind: 'reminder',
      to: ['olivia'],
      text: 'Reminder',
      campaign: campaign('cmp:prod:olivia:test10', 'Upgrade libxml2 on db-10', 'Attend'),
    };
    const receipt = await createTeamsNotifier(world.bots.runtime, { waitMs: 5_000 }).notify(n);
    expect(receipt.delivered).toHaveLength(1);
    const attempts = world.connector.calls.filter((c) => JSON.stringify(c.activity).includes('libxml2'));
    expect(attempts).toHaveLength(2);
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(990);
  });
});
