// The Slack notifier and the outbox under it: one message per notification key, updated in place
// when the key comes again; a notification naming a thread is a reply to the original in the same
// conversation (on its own where that conversation has none); escalations reach each person and the
// scope channel; 429 answers are waited out for Retry-After; permanent errors are reported, not
// retried forever; sends to one channel are paced; a burst of changes to one message becomes few
// edits showing the last state.
import { beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { OwnerNotification } from '../../domain/ports.ts';
import { createSlackNotifier } from '../../chat/slack/notifier.ts';
import { ChatDelivery } from '../../chat/delivery.ts';
import { Outbox } from '../../chat/outbox.ts';
import { chatWorld, until, type ChatWorld } from './support.ts';

let world: ChatWorld;
beforeAll(async () => {
  world = await chatWorld();
});

let seq = 0;
function notification(over: Partial<OwnerNotification> = {}): OwnerNotification {
  const n = ++seq;
  return {
    key: `campaign:cmp:prod:olivia:test${n}`,
    kind: 'decision-request',
    to: ['olivia'],
    text: `Act: CVE-2099-40${n} on asset 1 needs a decision`,
    campaign: {
      id: `cmp:prod:olivia:test${n}`,
      scope: 'prod',
      owner: 'olivia',
      kind: 'package',
      subject: `libfoo${n}`,
      action: `Upgrade libfoo${n} to 1.2.3 or later on db-${n}`,
      priority: 'Act',
      slaDue: new Date(Date.now() + 3 * 86_400_000).toISOString(),
      totals: { exposures: 1, open: 1, assets: 1, states: { 'awaiting-decision': 1 } },
      exposures: [
        {
          id: `1:CVE-2099-40${n}`,
          weaknessKey: `CVE-2099-40${n}`,
          title: 'Heap overflow in libfoo <script>',
          asset: `db-${n}`,
          state: 'awaiting-decision',
          priority: 'Act',
          reasons: ['In CISA KEV since 2099-01-01.', 'Contextual CVSS 9.8 (Critical).'],
          package: { name: `libfoo${n}`, version: '1.0', fixedVersion: '1.2.3' },
        },
      ],
    },
    ...over,
  };
}

const postsTo = (channel: string) =>
  world.slack.callsTo('chat.postMessage').filter((c) => c.args.channel === channel);

describe('the Slack notifier', () => {
  it('posts once per key and updates the same message when the key comes again', async () => {
    const notifier = createSlackNotifier(world.bots.runtime);
    const n = notification();
    const first = await notifier.notify(n);
    expect(first.delivered).toHaveLength(1);
    expect(first.delivered[0]!.ref).toMatch(/^D0OLIVIA\/\d+\.\d+$/);
    const again = await notifier.notify({ ...n, text: 'Reminder: still open', kind: 'reminder' });
    expect(again.delivered[0]!.ref).toBe(first.delivered[0]!.ref);
    const mine = world.slack.calls.filter((c) => JSON.stringify(c.args).includes(n.campaign.action));
    expect(mine.map((c) => c.method)).toEqual(['chat.postMessage', 'chat.update']);
    const update = mine[1]!.args as { blocks: unknown[]; text: string };
    expect(JSON.stringify(update.blocks)).toContain('Reminder: still open');
    // Scanner text is escaped for mrkdwn, so a title cannot inject markup or mentions.
    expect(JSON.stringify(update.blocks)).toContain('libfoo &lt;script&gt;');
  });

  it('posts a notification naming a thread as a reply to the original in the same conversation, on its own elsewhere', async () => {
    const notifier = createSlackNotifier(world.bots.runtime);
    const original = notification();
    const posted = await notifier.notify(original);
    const [channel, ts] = posted.delivered[0]!.ref.split('/') as [string, string];
    const reminder: OwnerNotification = {
      ...original,
      key: `${original.key}:reminder:1`,
      kind: 'reminder',
      text: 'Reminder: still waiting for your decision',
      lines: ['Act CVE-2099-4001 on db-1'],
      thread: original.key,
      to: ['olivia', 'mona'],
    };
    const receipt = await notifier.notify(reminder);
    expect(receipt.delivered.map((d) => d.ref.split('/')[0]).sort()).toEqual(['D0MONA', 'D0OLIVIA']);
    // Olivia has the original: the reminder is in its thread, short and without decision buttons.
    const [reply] = world.slack.repliesTo(channel, ts);
    expect(reply).toBeDefined();
    expect(JSON.stringify(reply!.blocks)).toContain('Reminder: still waiting for your decision');
    expect(JSON.stringify(reply!.blocks)).toContain('Act CVE-2099-4001 on db-1');
    expect(JSON.stringify(reply!.blocks)).not.toContain('ctem_all_');
    expect(JSON.stringify(reply!.blocks)).toContain("decide on the campaign's message above");
    const call = world.slack
      .callsTo('chat.postMessage')
      .find((c) => c.args.channel === channel && c.args.thread_ts === ts);
    expect(call).toBeDefined();
    // Mona never got the original: hers is a message of its own, with the campaign's buttons.
    const monas = world.slack
      .callsTo('chat.postMessage')
      .filter(
        (c) => c.args.channel === 'U0MONA' && JSON.stringify(c.args).includes(original.campaign.action),
      );
    expect(monas).toHaveLength(1);
    expect(monas[0]!.args.thread_ts).toBeUndefined();
    expect(JSON.stringify(monas[0]!.args.blocks)).toContain('ctem_all_approve');
    const { rows } = await world.db.pool.query<{ conversation: string; thread_ref: string | null }>(
      `select conversation, thread_ref from chat_messages where notification_key = $1 order by conversation`,
      [reminder.key],
    );
    expect(rows).toEqual([
      { conversation: 'U0MONA', thread_ref: null },
      { conversation: 'U0OLIVIA', thread_ref: `${channel}/${ts}` },
    ]);
    // The same key again updates the reply in place, still in its thread.
    await notifier.notify({ ...reminder, text: 'Reminder: still waiting (second day)' });
    await until(
      'the reply updated',
      () => JSON.stringify(world.slack.repliesTo(channel, ts)[0]!.blocks),
      (t) => t.includes('second day'),
    );
    expect(world.slack.repliesTo(channel, ts)).toHaveLength(1);
  });

  it('posts a reply on its own when the original it names was deleted', async () => {
    const notifier = createSlackNotifier(world.bots.runtime);
    const original = notification();
    const posted = await notifier.notify(original);
    const [channel, ts] = posted.delivered[0]!.ref.split('/') as [string, string];
    world.slack.messages.delete(`${channel}/${ts}`);
    const receipt = await notifier.notify({
      ...original,
      key: `${original.key}:reminder:1`,
      kind: 'reminder',
      text: 'Reminder: the original is gone',
      thread: original.key,
    });
    expect(receipt.delivered).toHaveLength(1);
    const calls = world.slack
      .callsTo('chat.postMessage')
      .filter((c) => JSON.stringify(c.args).includes('the original is gone'));
    expect(calls.map((c) => c.args.thread_ts)).toEqual([ts, undefined]);
  });

  it('sends an escalation to the owner, the manager, the CISO and the scope channel', async () => {
    const n = notification({
      kind: 'escalation',
      level: 2,
      to: ['olivia', 'mona', 'cyrus'],
      channels: { slack: 'C0PROD' },
      text: 'SLA breached',
    });
    const receipt = await createSlackNotifier(world.bots.runtime).notify(n);
    expect(receipt.delivered.map((d) => d.ref.split('/')[0]).sort()).toEqual([
      'C0PROD',
      'D0CYRUS',
      'D0MONA',
      'D0OLIVIA',
    ]);
    const posted = world.slack
      .callsTo('chat.postMessage')
      .filter((c) => JSON.stringify(c.args).includes(n.campaign.action));
    expect(posted).toHaveLength(4);
    expect(JSON.stringify(posted[0]!.args.blocks)).toContain('SLA escalation (level 2)');
  });

  it('waits out a 429 for its Retry-After, then delivers', async () => {
    world.slack.failNext('chat.postMessage', { status: 429, retryAfterSeconds: 1 });
    const n = notification();
    const receipt = await createSlackNotifier(world.bots.runtime, { waitMs: 5_000 }).notify(n);
    expect(receipt.delivered[0]!.ref).toMatch(/^D0OLIVIA\//);
    const attempts = world.slack.callsTo('chat.postMessage').slice(-2);
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(990);
    expect(JSON.stringify(attempts[1]!.args)).toContain(n.campaign.action);
  });

  it('reports a permanent error (ok:false) instead of retrying it, and names who was not reached', async () => {
    world.slack.forgetChannel('C0GONE');
    const receipt = await createSlackNotifier(world.bots.runtime).notify(
      notification({ to: ['olivia', 'nobody-in-slack'], channels: { slack: 'C0GONE' } }),
    );
    expect(receipt.delivered).toHaveLength(1);
    const none = await createSlackNotifier(world.bots.runtime).notify(
      notification({ to: [], channels: { slack: 'C0GONE' } }),
    );
    expect(none.delivered).toEqual([]);
    expect(none.skipped).toMatch(/slack C0GONE: slack chat.postMessage: channel_not_found/);
    expect(postsTo('C0GONE')).toHaveLength(2);
    const { rows } = await world.db.pool.query<{ status: string; last_error: string }>(
      `select status, last_error from chat_outbox where conversation = 'C0GONE' order by id`,
    );
    expect(rows.every((r) => r.status === 'failed' && /channel_not_found/.test(r.last_error))).toBe(true);
  });
});

describe('the outbox', () => {
  it('paces sends to one channel, while other channels go on', async () => {
    const log = pino({ level: 'silent' });
    const outbox = new Outbox(world.db.pool, log, { intervalMs: { slack: 250 } }).register(
      world.bots.runtime.slack!.transport,
    );
    const delivery = new ChatDelivery(world.db.pool, outbox, log);
    const started = Date.now();
    const ns = [1, 2, 3, 4].map(() => notification());
    await Promise.all([
      ...ns.map((n) => delivery.publish('slack', 'C0PACED', n)),
      ...ns.map((n) => delivery.publish('slack', 'C0OTHER', { ...n, key: `${n.key}:other` })),
    ]);
    const paced = postsTo('C0PACED').map((c) => c.at);
    expect(paced).toHaveLength(4);
    // Slots are reserved on the database clock and slept out here, so single gaps jitter by the
    // round trip (more on a loaded machine); the gaps never collapse and their sum holds the pace.
    for (let i = 1; i < paced.length; i++) expect(paced[i]! - paced[i - 1]!).toBeGreaterThanOrEqual(100);
    expect(paced[3]! - paced[0]!).toBeGreaterThanOrEqual(3 * 250 - 50);
    // The other channel had its own slots: its four posts overlapped the first channel's.
    const other = postsTo('C0OTHER').map((c) => c.at);
    expect(other).toHaveLength(4);
    expect(Math.min(...other)).toBeLessThan(paced[1]!);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3 * 250 - 50);
    outbox.stop();
  });

  it('coalesces a burst of changes to one message into a few edits that end with the latest state', async () => {
    const log = pino({ level: 'silent' });
    const outbox = new Outbox(world.db.pool, log, { intervalMs: { slack: 200 } }).register(
      world.bots.runtime.slack!.transport,
    );
    const delivery = new ChatDelivery(world.db.pool, outbox, log);
    const n = notification();
    await delivery.publish('slack', 'C0BURST', n);
    const updatesBefore = world.slack.callsTo('chat.update').length;
    for (let i = 1; i <= 10; i++)
      await world.db.pool
        .query(
          `update chat_messages set model = jsonb_set(model, '{notification,text}', to_jsonb($2::text)) where notification_key = $1`,
          [n.key, `burst ${i}`],
        )
        .then(() => outbox.syncLater({ transport: 'slack', conversation: 'C0BURST', key: n.key }));
    await until(
      'the last state shown',
      () =>
        world.slack
          .callsTo('chat.update')
          .filter((c) => c.args.channel === 'C0BURST')
          .at(-1),
      (c) => JSON.stringify(c?.args.blocks ?? '').includes('burst 10'),
    );
    await new Promise((r) => setTimeout(r, 600));
    const edits = world.slack.callsTo('chat.update').length - updatesBefore;
    expect(edits).toBeGreaterThanOrEqual(1);
    expect(edits).toBeLessThanOrEqual(3);
    outbox.stop();
  });

  it('posts a new message when the one to update was deleted', async () => {
    const notifier = createSlackNotifier(world.bots.runtime);
    const n = notification();
    const first = await notifier.notify(n);
    world.slack.failNext('chat.update', { error: 'message_not_found' });
    const second = await notifier.notify(n);
    expect(second.delivered[0]!.ref).not.toBe(first.delivered[0]!.ref);
    expect(
      world.slack.calls
        .filter((c) => JSON.stringify(c.args).includes(n.campaign.action))
        .map((c) => c.method),
    ).toEqual(['chat.postMessage', 'chat.update', 'chat.postMessage']);
  });
});
