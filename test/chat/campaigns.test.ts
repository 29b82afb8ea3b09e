// The chat layer speaking campaigns under the notification policy, on the real lifecycle (dispatch →
// campaign workflow on the real Temporal server) with the Slack and Teams notifiers:
// - only what is urgent under the owner's policy is sent at once (Slack and Teams); the rest waits
//   for the owner's daily "your queue" message, whose bulk actions decide for a whole campaign each
//   (one update of its workflow) and which is updated in place, as is the original message of an
//   urgent campaign decided from it;
// - reminders and escalations to the owner are replies in the thread of the campaign's original
//   message (Slack thread_ts, Teams reply chain); managers, the CISO and the scope channel get the
//   window's escalations gathered, one message per audience per window, without decision buttons;
// - a backlog import sends one summary, without decision buttons.
import { beforeAll, describe, expect, it } from 'vitest';
import { sendDailyQueues } from '../../lifecycle/queue.ts';
import { sendEscalationDigests } from '../../lifecycle/escalations.ts';
import { campaignOf, decisionsOf, eventTypes, view } from '../lifecycle/support.ts';
import {
  OLIVIA_AAD,
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

const OLIVIA_CHAT = 'a:1olivia-campaigns-chat';
const GATHER_CHANNEL = '19:gather@thread.tacv2';

let world: ChatWorld;
beforeAll(async () => {
  world = await chatWorld({
    extraScopesYaml: `
  - name: mixed
    internetFacing: true
    criticality: critical
    roles: { owner: [olivia], approver: [adam], securityLead: [lena], ciso: [cyrus] }
    notifications: { urgent: { priority: [Act], kev: true } }
  - name: queued
    roles: { owner: [olivia], approver: [adam], securityLead: [lena], ciso: [cyrus] }
    notifications: { urgent: { priority: [], kev: false }, dailyQueue: { time: '00:00' } }
  - name: gathered
    roles: { owner: [olivia], approver: [adam], securityLead: [lena], ciso: [cyrus] }
    channel: { slack: C0GATHER, teams: '${GATHER_CHANNEL}' }
    notifications: { urgent: { priority: [Act, Attend, Track*, Track] }, escalationWindow: 1h }
    lifecycle:
      sla: { act: 4s, attend: 4s, track*: 4s, track: 4s }
      ladder:
        - { at: 50%, notify: [owner] }
        - { at: 100%, notify: [owner, channel, manager] }
        - { after: 1s, notify: [ciso] }`,
  });
  const res = await postActivity(world, installActivity(world, OLIVIA_AAD, OLIVIA_CHAT), bearer(world));
  expect(res.status).toBe(200);
});

const text = (x: unknown) => JSON.stringify(x ?? null);

/** The last minute of today (UTC): every daily queue time has passed, whatever the hour the test runs. */
function lateToday(): number {
  const d = new Date();
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), 23, 59);
}

/** A digest block's position of the campaign whose text mentions `what`. */
function positionOf(blocks: unknown, what: string): number {
  const block = (blocks as { block_id?: string; text?: { text: string } }[]).find(
    (b) => b.block_id?.startsWith('ctem_q_campaign_') && b.text?.text.includes(what),
  );
  if (!block) throw new Error(`no campaign mentioning ${what} in ${text(blocks).slice(0, 300)}`);
  return Number(block.block_id!.slice('ctem_q_campaign_'.length));
}

/** The header block's text (what is asked, the priority, the action). */
function header(blocks: unknown): string {
  const b = (blocks as { type: string; text?: { text: string } }[]).find((x) => x.type === 'header');
  return b?.text?.text ?? '';
}

async function acceptedUpdates(exposureId: string): Promise<number> {
  const { workflowId } = await campaignOf(world.db.pool, exposureId);
  const history = await world.temporal.client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes).length;
}

/** The card the bot posted (and last wrote) in a Teams conversation, found by what it mentions. */
function teamsCards(conversationId: string, what: string) {
  return world.connector.calls.filter(
    (c) => c.conversationId === conversationId && text(c.activity).includes(what),
  );
}

describe('urgent at once, the rest in the daily queue', () => {
  it('sends at once only what is urgent under the owner’s policy, on Slack and Teams', async () => {
    // Scope mixed calls Act (and KEV) urgent: an Attend campaign waits, an Act one goes out at once.
    const [attend] = await world.exposures({
      scope: 'mixed',
      weaknesses: ['CVE-2099-8902'],
      host: 'mixed-attend',
    });
    const [act] = await world.exposures({
      scope: 'mixed',
      weaknesses: ['CVE-2099-8901'],
      exploited: true,
      host: 'mixed-act',
    });
    expect((await view(world.temporal.client, world.db.pool, attend!)).priority).toBe('Attend');
    expect((await view(world.temporal.client, world.db.pool, act!)).priority).toBe('Act');

    const urgent = await waitForSlackMessage(world, 'D0OLIVIA', 'mixed-act');
    expect(header(urgent.blocks)).toMatch(/^Decision needed · Act · Upgrade lib-mixed-act /);
    expect(text(urgent.blocks)).toContain('ctem_all_approve');
    await until(
      'the urgent card in Teams',
      () => teamsCards(OLIVIA_CHAT, 'mixed-act').find((c) => c.method === 'POST'),
      (c) => c !== undefined,
    );
    // The Attend campaign went to neither (it was filed first: anything sent for it would be there
    // by now), and its audit trail says it waits for the queue.
    expect(world.slack.calls.filter((c) => text(c.args).includes('mixed-attend'))).toEqual([]);
    expect(teamsCards(OLIVIA_CHAT, 'mixed-attend')).toEqual([]);
    expect(await eventTypes(world.db.pool, attend!)).toContain('queued');
    expect(await eventTypes(world.db.pool, attend!)).not.toContain('notified');
    expect(await eventTypes(world.db.pool, act!)).toContain('notified');
  });
});

describe('the daily queue', () => {
  it('waits for the queue, lists the campaigns with bulk actions, and one click decides a whole campaign', async () => {
    const a = await world.exposures({
      scope: 'queued',
      weaknesses: ['CVE-2099-9001', 'CVE-2099-9002'],
      hosts: ['queue-a1', 'queue-a2'],
      package: 'libqa',
    });
    const [b] = await world.exposures({ scope: 'queued', weaknesses: ['CVE-2099-9101'], host: 'queue-b' });
    // An urgent campaign of Olivia's, sent at once: the queue lists it as well.
    const [u] = await world.exposures({
      scope: 'mixed',
      weaknesses: ['CVE-2099-9401'],
      exploited: true,
      host: 'queue-urgent',
    });
    const urgentOriginal = await waitForSlackMessage(world, 'D0OLIVIA', 'queue-urgent');
    const urgentCard = await until(
      'the urgent campaign’s card',
      () => teamsCards(OLIVIA_CHAT, 'queue-urgent').find((c) => c.method === 'POST'),
      (c) => c !== undefined,
    );
    // Not urgent under the scope's policy: nothing was sent at once, on either.
    expect(world.slack.calls.filter((c) => text(c.args).includes('queue-a1'))).toEqual([]);
    expect(teamsCards(OLIVIA_CHAT, 'queue-a1')).toEqual([]);

    const run = await sendDailyQueues(world.deps, lateToday());
    expect(run.sent).toEqual(['olivia']);
    const queue = await waitForSlackMessage(world, 'D0OLIVIA', 'Your queue for');
    // One message for everything that waits for her, whatever the scope.
    expect(
      world.slack.callsTo('chat.postMessage').filter((c) => text(c.args).includes('Your queue for')),
    ).toHaveLength(1);
    const first = text(queue.blocks);
    expect(first).toContain('Upgrade libqa to 3.0.8 or later on 2 assets');
    expect(first).toContain('Upgrade lib-queue-b to 3.0.8 or later on queue-b');
    expect(first).toContain('4 of 4 open exposures on 2 assets wait for a decision');
    const ia = positionOf(queue.blocks, 'libqa');
    const ib = positionOf(queue.blocks, 'lib-queue-b');
    expect(first).toContain(`ctem_q_approve_${ia}`);
    expect(first).toContain('Approve fix for all 4');
    expect(first).toContain(`ctem_q_snooze_${ib}`);
    // The same queue reached Olivia's Teams chat as one card.
    const card = await until(
      'the queue card in Teams',
      () => teamsCards(OLIVIA_CHAT, 'Your queue for').find((c) => c.method === 'POST'),
      (c) => c !== undefined,
    );
    const cardId = [...world.connector.activities.get(OLIVIA_CHAT)!].find(([, x]) =>
      text(x).includes('Your queue for'),
    )![0];
    expect(teamsCards(OLIVIA_CHAT, 'Your queue for').filter((c) => c.method === 'POST')).toHaveLength(1);
    const iu = positionOf(queue.blocks, 'lib-queue-urgent');
    expect(first).toMatch(/Urgent \(Act[^)]*\): sent to you at once on \d{4}-\d{2}-\d{2}/);

    // Approve the whole of campaign A from Slack: every exposure on both assets, one update.
    const res = await postToSlackEndpoint(
      world,
      interactivityBody(
        blockAction({
          user: 'U0OLIVIA',
          channel: queue.channel,
          ts: queue.ts,
          actionId: `ctem_q_approve_${ia}`,
          value: String(ia),
        }),
      ),
    );
    expect(res.status).toBe(200);
    for (const id of a)
      await until(
        `${id} approved`,
        () => view(world.temporal.client, world.db.pool, id),
        (v) => v.state === 'remediating',
      );
    await until(
      'the queue updated in place',
      () => text(queue.blocks),
      (t) => t.includes('Olivia Owner approved the fix for 4 exposures'),
    );
    expect(await acceptedUpdates(a[0]!)).toBe(1);
    for (const id of a)
      expect(await decisionsOf(world.db.pool, id)).toEqual([{ kind: 'approve', by: 'olivia' }]);
    expect((await view(world.temporal.client, world.db.pool, b!)).state).toBe('awaiting-decision');
    const after = text(queue.blocks);
    expect(after).not.toContain(`ctem_q_approve_${ia}`);
    expect(after).toContain(`ctem_q_approve_${ib}`);
    expect(after).toContain('No decision pending on 2 assets: 4 fix approved, remediating');
    // The Teams copy of the queue was updated in place too.
    await until(
      'the Teams queue updated',
      () =>
        world.connector.calls.find(
          (c) =>
            c.method === 'PUT' &&
            c.activityId === cardId &&
            text(c.activity).includes('approved the fix for 4'),
        ),
      (c) => c !== undefined,
    );

    // Snooze campaign B from the Teams card: its own form, its own position.
    const key = /"verb":"snooze","data":\{"key":"([^"]+)"/.exec(text(card!.activity))![1]!;
    const answer = await postActivity(
      world,
      cardAction({
        world,
        conversationId: OLIVIA_CHAT,
        aadObjectId: OLIVIA_AAD,
        verb: 'snooze',
        data: { key, campaign: String(ib), [`snoozeDays_${ib}`]: '7' },
      }),
      bearer(world),
    );
    expect(answer.status).toBe(200);
    const body = answer.body as { type: string; value: unknown };
    expect(body.type).toBe('application/vnd.microsoft.card.adaptive');
    expect(text(body.value)).toContain('Olivia Owner snoozed (until');
    expect(text(body.value)).toContain('Olivia Owner approved the fix for 4 exposures');
    expect((await view(world.temporal.client, world.db.pool, b!)).state).toBe('snoozed');
    await until(
      'the Slack queue shows the snooze',
      () => text(queue.blocks),
      (t) => t.includes('Olivia Owner snoozed (until'),
    );

    // Approving the urgent campaign from the queue updates its original message in place too, on
    // Slack and on Teams: decided, nothing left to approve.
    const urgentCardId = [...world.connector.activities.get(OLIVIA_CHAT)!].find(
      ([, x]) => text(x).includes('queue-urgent') && !text(x).includes('Your queue for'),
    )![0];
    expect(text(urgentCard!.activity)).toContain('"verb":"approve"');
    const approveUrgent = await postToSlackEndpoint(
      world,
      interactivityBody(
        blockAction({
          user: 'U0OLIVIA',
          channel: queue.channel,
          ts: queue.ts,
          actionId: `ctem_q_approve_${iu}`,
          value: String(iu),
        }),
      ),
    );
    expect(approveUrgent.status).toBe(200);
    await until(
      'the urgent campaign approved',
      () => view(world.temporal.client, world.db.pool, u!),
      (v) => v.state === 'remediating',
    );
    await until(
      'its original updated in place',
      () => header(urgentOriginal.blocks),
      (h) => /^Decided · Act · /.test(h),
    );
    expect(text(urgentOriginal.blocks)).toContain('Olivia Owner approved the fix');
    expect(text(urgentOriginal.blocks)).not.toContain('ctem_all_');
    const put = await until(
      'its card updated in place',
      () =>
        world.connector.calls.find(
          (c) =>
            c.method === 'PUT' &&
            c.activityId === urgentCardId &&
            text(c.activity).includes('approved the fix'),
        ),
      (c) => c !== undefined,
    );
    expect(text(put!.activity)).toMatch(/"text":"Decided · Act · /);
    expect(text(put!.activity)).not.toContain('"verb":"approve"');
    expect(text(put!.activity)).not.toContain('"verb":"snooze"');

    // Sent once a day, whatever the retries.
    expect((await sendDailyQueues(world.deps, lateToday())).sent).toEqual([]);
  });

  it('a backlog import files silently and sends one summary, without decision buttons', async () => {
    await world.exposures({
      scope: 'queued',
      weaknesses: ['CVE-2099-9201', 'CVE-2099-9202'],
      host: 'backlog-1',
      baseline: true,
    });
    const summary = await waitForSlackMessage(world, 'D0OLIVIA', 'Backlog imported');
    expect(text(summary.blocks)).toContain('Upgrade lib-backlog-1 to 3.0.8 or later on backlog-1');
    expect(text(summary.blocks)).not.toContain('ctem_q_approve');
    expect(text(summary.blocks)).not.toContain('ctem_q_snooze');
    expect(world.slack.calls.filter((c) => text(c.args).includes('backlog-1'))).toHaveLength(1);
  });
});

describe('threads and gathered escalations', () => {
  it('reminds the owner in the original’s thread (Slack and Teams) and gathers escalations into one message per audience', async () => {
    const [g1] = await world.exposures({
      scope: 'gathered',
      weaknesses: ['CVE-2099-9301'],
      host: 'gather-1',
    });
    const [g2] = await world.exposures({
      scope: 'gathered',
      weaknesses: ['CVE-2099-9302'],
      host: 'gather-2',
    });
    const original = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-9301');
    const originalCard = await until(
      'the original card',
      () => teamsCards(OLIVIA_CHAT, 'CVE-2099-9301').find((c) => c.method === 'POST' && !c.replyToId),
      (c) => c !== undefined,
    );
    const cardId = [...world.connector.activities.get(OLIVIA_CHAT)!].find(
      ([, x]) => text(x).includes('CVE-2099-9301') && x.replyToId === undefined,
    )![0];
    expect(originalCard).toBeDefined();

    // Half-way to the deadline the owner is reminded, at the deadline escalated: both in the thread.
    const replies = await until(
      'the reminder and the escalation in the thread',
      () => world.slack.repliesTo(original.channel, original.ts),
      (r) => r.length >= 2,
      20_000,
    );
    expect(text(replies[0]!.blocks)).toContain('Reminder');
    expect(text(replies[1]!.blocks)).toContain('Escalation (level 1)');
    for (const r of replies) expect(text(r.blocks)).not.toContain('ctem_all_');
    expect(
      world.slack.callsTo('chat.postMessage').filter((c) => c.args.thread_ts === original.ts),
    ).toHaveLength(2);
    const teamsReplies = await until(
      'the replies in Teams',
      () => world.connector.calls.filter((c) => c.conversationId === OLIVIA_CHAT && c.replyToId === cardId),
      (r) => r.length >= 2,
    );
    expect(teamsReplies.map((c) => c.activityId)).toEqual([cardId, cardId]);

    // The manager, the CISO (a second past the deadline) and the channel: nothing yet, the
    // escalations wait for the window.
    const gathered = async (audience: string) =>
      (
        await world.db.pool.query<{ n: number }>(
          `select count(distinct campaign_id)::int as n from escalation_items where audience = $1 and sent_key is null`,
          [audience],
        )
      ).rows[0]!.n;
    await until(
      'both campaigns gathered for the manager',
      () => gathered('person:mona'),
      (n) => n === 2,
    );
    await until(
      'both campaigns gathered for the CISO',
      () => gathered('person:cyrus'),
      (n) => n === 2,
    );
    for (const person of ['U0MONA', 'U0CYRUS'])
      expect(world.slack.callsTo('chat.postMessage').filter((c) => c.args.channel === person)).toEqual([]);
    const run = await sendEscalationDigests(world.deps, Date.now() + 2 * 3_600_000);
    // One message per audience: Mona, Cyrus, the scope's Slack channel and its Teams channel.
    expect(run.messages).toBe(4);
    const monas = world.slack.callsTo('chat.postMessage').filter((c) => c.args.channel === 'U0MONA');
    expect(monas).toHaveLength(1);
    const digest = text(monas[0]!.args.blocks);
    expect(digest).toContain('Escalated: 2 campaigns');
    expect(digest).toContain('gather-1');
    expect(digest).toContain('gather-2');
    expect(digest).toContain('Escalation level 1');
    expect(digest).not.toContain('ctem_q_approve');
    expect(digest).not.toContain('ctem_all_');
    const cyrus = world.slack.callsTo('chat.postMessage').filter((c) => c.args.channel === 'U0CYRUS');
    expect(cyrus).toHaveLength(1);
    const cisoDigest = text(cyrus[0]!.args.blocks);
    expect(cisoDigest).toContain('Escalated: 2 campaigns past or near their deadline (CISO level)');
    expect(cisoDigest).toContain('gather-1');
    expect(cisoDigest).toContain('gather-2');
    expect(cisoDigest).toContain('Escalation level 2');
    expect(cisoDigest).not.toContain('ctem_q_approve');
    expect(world.slack.callsTo('chat.postMessage').filter((c) => c.args.channel === 'C0GATHER')).toHaveLength(
      1,
    );
    const channelCards = world.connector.calls.filter(
      (c) => c.conversationId === GATHER_CHANNEL && text(c.activity).includes('Escalated: 2 campaigns'),
    );
    expect(channelCards).toHaveLength(1);
    expect(text(channelCards[0]!.activity)).not.toContain('Action.Execute');
    // The window's escalations are sent: running again in it sends nothing more.
    expect((await sendEscalationDigests(world.deps, Date.now() + 2 * 3_600_000)).messages).toBe(0);
    expect(world.slack.callsTo('chat.postMessage').filter((c) => c.args.channel === 'U0MONA')).toHaveLength(
      1,
    );
    expect((await view(world.temporal.client, world.db.pool, g1!)).state).toBe('awaiting-decision');
    expect((await view(world.temporal.client, world.db.pool, g2!)).state).toBe('awaiting-decision');
  }, 60_000);
});
