// The notification policy as an owner, a manager and a CISO live it, on the real Temporal dev server
// and PostgreSQL (lifecycle/notificationPolicy.ts says whose policy decides what):
// - what is not urgent reaches the owner in their next daily queue, reminders included (an SLA
//   reminder on a fix under way, a risk acceptance about to end), once each, even across a crash;
// - an escalation is sent at once or gathered per its RECIPIENT's window, not the owner's;
// - the daily queue lists every campaign still waiting for a decision, the urgent ones marked as
//   sent at once already, and urgency is judged by one rule at admission and later.
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { testDeps } from '../support/deps.ts';
import { parseConfig } from '../../domain/config.ts';
import type { Notifier } from '../../domain/ports.ts';
import type { IntegrationRegistry } from '../../app/integrations.ts';
import { dispatchChanges } from '../../lifecycle/dispatch.ts';
import { applyDecision, decideCampaign } from '../../lifecycle/decide.ts';
import { sendDailyQueues } from '../../lifecycle/queue.ts';
import { sendEscalationDigests } from '../../lifecycle/escalations.ts';
import {
  escalationWindowFor,
  notificationPolicyFor,
  urgentReason,
} from '../../lifecycle/notificationPolicy.ts';
import { campaignWorkflowId } from '../../contracts/campaign.ts';
import {
  campaignOf,
  eventTypes,
  eventually,
  newPortLog,
  newScan,
  recordingPorts,
  seedExposures,
  untilState,
  view,
} from './support.ts';

const log = newPortLog();
const recording = recordingPorts(log);
/** Digests fail while this is above 0 (a chat service down mid-send), one failure per call. */
let failingDigests = 0;
const ports = (builtIn: IntegrationRegistry): IntegrationRegistry => {
  const registry = recording(builtIn);
  const make = registry.notifiers.recording!;
  return {
    ...registry,
    notifiers: {
      ...registry.notifiers,
      recording: (ctx): Notifier => {
        const inner = make(ctx);
        return {
          name: inner.name,
          notify: (n) => inner.notify(n),
          digest: async (n) => {
            if (failingDigests > 0) {
              failingDigests--;
              throw new Error('chat service unavailable');
            }
            return await inner.digest(n);
          },
        };
      },
    },
  };
};

const roles = (owner: string) =>
  `{ owner: [${owner}], approver: [adam], securityLead: [lena], ciso: [cyrus] }`;
const config = parseConfig(`
version: 1
people:
  - { id: olivia, name: Olivia Owner, manager: mona }
  - { id: quinn, name: Quinn Owner, manager: mona }
  - { id: otto, name: Otto Owner, manager: mona, notifications: { escalationWindow: 0s } }
  - { id: paula, name: Paula Owner, manager: mona }
  - { id: dana, name: Dana Owner, manager: mona }
  - { id: mona, name: Mona Manager }
  - { id: adam, name: Adam Approver }
  - { id: lena, name: Lena Lead }
  - { id: cyrus, name: Cyrus Ciso, notifications: { escalationWindow: 0s } }
integrations:
  recording: {}
scopes:
  # Nothing is urgent: every decision request, reminder and breach waits for the owner's queue.
  - name: calm
    roles: ${roles('olivia')}
    notifications: { urgent: { priority: [], kev: false, breach: false }, dailyQueue: { time: '00:00' } }
    lifecycle:
      sla: { act: 8s, attend: 8s, track*: 8s, track: 8s }
      ladder: [{ at: 50%, notify: [owner] }]
      riskExpiryReminder: 58s
  - name: steady
    roles: ${roles('quinn')}
    notifications: { urgent: { priority: [], kev: false, breach: false }, dailyQueue: { time: '00:00' } }
    lifecycle:
      sla: { act: 9s, attend: 9s, track*: 9s, track: 9s }
      ladder: [{ at: 25%, notify: [owner] }, { at: 50%, notify: [owner] }, { at: 100%, notify: [owner] }]
  # Escalations gathered for an hour, unless the recipient's own window says 0s (otto, cyrus).
  - name: escalating
    roles: ${roles('otto')}
    channel: { slack: C0ESCALATE }
    notifications: { urgent: { priority: [] } }
    lifecycle:
      sla: { act: 2s, attend: 2s, track*: 2s, track: 2s }
      ladder: [{ at: 100%, notify: [manager, ciso, channel] }]
  - name: escalating-too
    roles: ${roles('paula')}
    notifications: { urgent: { priority: [] } }
    lifecycle:
      sla: { act: 2s, attend: 2s, track*: 2s, track: 2s }
      ladder: [{ at: 100%, notify: [manager, ciso] }]
  # Act and KEV are urgent; the rest waits for the queue.
  - name: mixed
    internetFacing: true
    criticality: critical
    roles: ${roles('dana')}
    notifications: { urgent: { priority: [Act], kev: true }, dailyQueue: { time: '00:00' } }
    lifecycle:
      sla: { act: 1h, attend: 1h, track*: 1h, track: 1h }
      riskExpiryReminder: 0s
`);

let db: TestDatabase;
let temporal: TestTemporal;
beforeAll(async () => {
  db = await testDatabase();
  temporal = await testTemporal();
});

const by = (personId: string) => ({ personId, via: 'api' as const });
const deps = () => testDeps({ pool: db.pool, config, registry: ports });
const DAY = 86_400_000;

/** The last minute of today (UTC): every queue time of the day has passed, whatever the hour. */
function lateToday(): number {
  const d = new Date();
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), 23, 59);
}

async function withWorker<T>(fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = temporal.taskQueue('notifications');
  const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
  return await worker.runUntil(fn(taskQueue));
}

/** `hosts` assets with one weakness fixed by a package of this run only (its own campaign). */
async function admit(
  taskQueue: string,
  scope: string,
  opts: { hosts?: number; weakness: string; pkg?: string; exploited?: boolean },
): Promise<string[]> {
  const scan = await newScan(db.pool, scope);
  const pkg = { name: opts.pkg ?? `lib-${randomBytes(4).toString('hex')}`, fixedVersion: '2.0' };
  const ids: string[] = [];
  for (let i = 0; i < (opts.hosts ?? 1); i++)
    ids.push(
      ...(
        await seedExposures(db.pool, {
          scope,
          weaknesses: [opts.weakness],
          package: pkg,
          scanId: scan.scanId,
          firstSeen: new Date(scan.at),
          ...(opts.exploited ? { exploited: true } : {}),
        })
      ).ids,
    );
  await dispatchChanges(
    deps(),
    temporal.client,
    ids.map((exposureId) => ({ exposureId, change: 'new' as const, scanId: scan.scanId, at: scan.at })),
    { taskQueue },
  );
  for (const id of ids) await untilState(temporal.client, db.pool, id, 'awaiting-decision');
  return ids;
}

/** Items written for a person's daily queue, and which queue carried them. */
async function queued(person: string) {
  const { rows } = await db.pool.query<{ kind: string; line: string; sent_key: string | null }>(
    `select kind, line, sent_key from escalation_items where audience = $1 order by created_at, key`,
    [`queue:${person}`],
  );
  return rows;
}

async function endCampaign(exposureId: string): Promise<void> {
  const { campaignId } = await campaignOf(db.pool, exposureId);
  await decideCampaign(temporal.client, db.pool, campaignId, {
    kind: 'markFalsePositive',
    actor: by('lena'),
    reason: 'test over',
  });
  await temporal.client.workflow.getHandle(campaignWorkflowId(campaignId)).result();
}

const queuesTo = (person: string) => log.digests.filter((d) => d.kind === 'queue' && d.to[0] === person);

describe('the owner’s daily queue', () => {
  it('carries every reminder queued for the owner — an SLA reminder on a fix under way, a risk acceptance ending — once', async () => {
    await withWorker(async (taskQueue) => {
      const [fixing, accepted] = await admit(taskQueue, 'calm', { hosts: 2, weakness: 'CVE-2099-7101' });
      const { campaignId } = await campaignOf(db.pool, fixing!);
      // Nothing is urgent here: the decision request waits for the queue.
      expect(log.notifications.filter((n) => n.campaign.id === campaignId)).toEqual([]);
      // One exposure is being fixed, the risk of the other accepted for a minute: no decision waits.
      expect(
        await applyDecision(temporal.client, db.pool, fixing!, { kind: 'approve', actor: by('olivia') }),
      ).toMatchObject({ ok: true, state: 'remediating' });
      expect(
        await applyDecision(temporal.client, db.pool, accepted!, {
          kind: 'acceptRisk',
          actor: by('adam'),
          justification: 'lab host, rebuilt next week',
          expires: new Date(Date.now() + 60_000).toISOString(),
        }),
      ).toMatchObject({ ok: true, state: 'risk-accepted' });

      // Half-way to the deadline, and two seconds into the acceptance's last minute: two reminders
      // for Olivia, neither urgent, so both wait for her queue (the security lead's is gathered).
      const items = await eventually(
        'both reminders queued for olivia',
        () => queued('olivia'),
        (rows) => rows.length === 2,
        30_000,
      );
      expect(items.map((i) => i.sent_key)).toEqual([null, null]);
      expect(log.notifications.filter((n) => n.campaign.id === campaignId)).toEqual([]);
      const { rows: events } = await db.pool.query<{ reason: string }>(
        `select reason from events where exposure_id = $1 and type = 'queued' and reason like 'reminder%'`,
        [accepted],
      );
      expect(events).toEqual([{ reason: expect.stringContaining("in the owner's daily queue") }]);

      const run = await sendDailyQueues(deps(), lateToday());
      expect(run.sent).toEqual(['olivia']);
      const [queue] = queuesTo('olivia');
      expect(queue!.title).toMatch(/^Your queue for \d{4}-\d{2}-\d{2}: 2 reminders about 1 campaign$/);
      expect(queue!.campaigns).toHaveLength(1);
      expect(queue!.campaigns[0]!.campaign.id).toBe(campaignId);
      // In the order they were queued (which of the two comes first depends on the worker's pace).
      const lines = queue!.campaigns[0]!.lines!;
      expect(lines).toHaveLength(2);
      expect(lines).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^Reminder: \S+ CVE-2099-7101 on asset \d+ is due /),
          expect.stringMatching(
            /^Reminder: CVE-2099-7101 on asset \d+: the risk acceptance by adam ends on /,
          ),
        ]),
      );
      expect((await queued('olivia')).map((i) => i.sent_key)).toEqual([
        expect.stringMatching(/^queue:olivia:/),
        expect.stringMatching(/^queue:olivia:/),
      ]);

      // Sent once: not again today, and not again tomorrow, when nothing new waits.
      expect((await sendDailyQueues(deps(), lateToday())).sent).toEqual([]);
      expect((await sendDailyQueues(deps(), lateToday() + DAY)).sent).toEqual([]);
      expect(queuesTo('olivia')).toHaveLength(1);
      await endCampaign(fixing!);
    });
  }, 90_000);

  it('loses and repeats nothing when the queue crashes before it is sent, or after it is sent but before it is recorded', async () => {
    await withWorker(async (taskQueue) => {
      const [id] = await admit(taskQueue, 'steady', { weakness: 'CVE-2099-7201' });
      await eventually(
        'the first reminder',
        () => queued('quinn'),
        (rows) => rows.length === 1,
        30_000,
      );

      // The chat service fails while the queue is sent: nothing is recorded as sent.
      failingDigests = 1;
      await expect(sendDailyQueues(deps(), lateToday())).rejects.toThrow('chat service unavailable');
      expect(queuesTo('quinn')).toEqual([]);
      expect((await db.pool.query(`select 1 from owner_digests where person = 'quinn'`)).rowCount).toBe(0);

      // A second reminder arrives meanwhile; the next run sends one queue carrying both.
      await eventually(
        'the second reminder',
        () => queued('quinn'),
        (rows) => rows.length === 2,
        30_000,
      );
      expect((await sendDailyQueues(deps(), lateToday())).sent).toEqual(['quinn']);
      expect(queuesTo('quinn')).toHaveLength(1);
      const first = queuesTo('quinn')[0]!;
      expect(first.title).toMatch(/1 campaign, 1 exposure waiting for your decision; 2 reminders$/);
      expect(first.campaigns[0]!.lines).toEqual([
        expect.stringMatching(/^1 of 1 open exposure waiting for a decision; due /),
        expect.stringMatching(/^Reminder: \S+ CVE-2099-7201 on asset \d+ is due /),
        expect.stringMatching(/^Reminder \(level 1\): \S+ CVE-2099-7201 on asset \d+ is due /),
      ]);

      // Sent, then the process dies before recording it; a third reminder arrives meanwhile.
      await db.pool.query(`delete from owner_digests where person = 'quinn'`);
      await eventually(
        'the third reminder',
        () => queued('quinn'),
        (rows) => rows.length === 3,
        30_000,
      );
      expect((await sendDailyQueues(deps(), lateToday())).sent).toEqual([]);
      expect(queuesTo('quinn')).toHaveLength(1);
      expect((await db.pool.query(`select 1 from owner_digests where person = 'quinn'`)).rowCount).toBe(1);
      // The third is not marked sent by a message that did not carry it: tomorrow's queue has it.
      expect((await queued('quinn')).map((i) => i.sent_key === first.key)).toEqual([true, true, false]);
      expect((await sendDailyQueues(deps(), lateToday() + DAY)).sent).toEqual(['quinn']);
      const second = queuesTo('quinn')[1]!;
      expect(second.campaigns[0]!.lines).toEqual([
        expect.stringMatching(/^1 of 1 open exposure waiting for a decision; due /),
        expect.stringMatching(/^Escalation \(level 2\): \S+ CVE-2099-7201 on asset \d+ was due /),
      ]);
      await endCampaign(id!);
    });
  }, 90_000);

  it('lists the urgent campaigns still waiting, marked as sent at once; urgency is judged by one rule at admission and later', async () => {
    await withWorker(async (taskQueue) => {
      const hot = `libhot-${randomBytes(4).toString('hex')}`;
      const [urgent] = await admit(taskQueue, 'mixed', {
        weakness: 'CVE-2099-7301',
        pkg: hot,
        exploited: true,
      });
      const [calm] = await admit(taskQueue, 'mixed', { weakness: 'CVE-2099-7302' });
      expect((await view(temporal.client, db.pool, urgent!)).priority).toBe('Act');
      expect((await view(temporal.client, db.pool, calm!)).priority).not.toBe('Act');
      const hotCampaign = (await campaignOf(db.pool, urgent!)).campaignId;
      const calmCampaign = (await campaignOf(db.pool, calm!)).campaignId;
      expect(log.notifications.filter((n) => n.campaign.id === hotCampaign).map((n) => n.kind)).toEqual([
        'decision-request',
      ]);
      expect(log.notifications.filter((n) => n.campaign.id === calmCampaign)).toEqual([]);

      // A host that is not exploited joins the urgent campaign: what joins is not urgent, so the
      // owner is not told at once…
      const [joined] = await admit(taskQueue, 'mixed', { weakness: 'CVE-2099-7303', pkg: hot });
      expect((await campaignOf(db.pool, joined!)).campaignId).toBe(hotCampaign);
      expect((await view(temporal.client, db.pool, joined!)).priority).not.toBe('Act');
      // …nor later, when its risk acceptance ends and the owner has to decide on it again: the same
      // rule, on the exposure the request is about, whatever else its campaign holds.
      expect(
        await applyDecision(temporal.client, db.pool, joined!, {
          kind: 'acceptRisk',
          actor: by('adam'),
          justification: 'until the next window',
          expires: new Date(Date.now() + 2_000).toISOString(),
        }),
      ).toMatchObject({ ok: true, state: 'risk-accepted' });
      // Reopened when the acceptance ends, then asked again (it waits for a decision once more).
      const { rows: asked } = await eventually(
        'the owner asked again after the acceptance ended',
        () =>
          db.pool.query<{ type: string; reason: string }>(
            `select type, reason from events where exposure_id = $1 and data ? 'why' order by id`,
            [joined],
          ),
        (r) => r.rows.length === 1,
        30_000,
      );
      expect(await eventTypes(db.pool, joined!)).toContain('reopened');
      expect(asked).toEqual([{ type: 'queued', reason: expect.stringContaining("owner's daily queue") }]);
      expect(log.notifications.filter((n) => n.campaign.id === hotCampaign).map((n) => n.kind)).toEqual([
        'decision-request',
      ]);

      // The queue lists everything waiting for Dana, the urgent campaign first, marked as sent.
      expect((await sendDailyQueues(deps(), lateToday())).sent).toEqual(['dana']);
      const [queue] = queuesTo('dana');
      expect(queue!.title).toMatch(/: 2 campaigns, 3 exposures waiting for your decision$/);
      expect(queue!.campaigns.map((c) => [c.campaign.id, c.urgent])).toEqual([
        [hotCampaign, 'Act priority'],
        [calmCampaign, undefined],
      ]);
      expect(queue!.campaigns[0]!.lines).toEqual([
        expect.stringMatching(/^2 of 2 open exposures waiting for a decision; due /),
        expect.stringMatching(/^Urgent \(Act priority\): sent to you at once on \d{4}-\d{2}-\d{2}$/),
      ]);
      expect(queue!.campaigns[1]!.lines).toEqual([
        expect.stringMatching(/^1 of 1 open exposure waiting for a decision; due /),
      ]);
      await endCampaign(urgent!);
      await endCampaign(calm!);
    });
  }, 90_000);
});

describe('escalations to other people', () => {
  it('are sent at once or gathered per the recipient’s escalation window, whoever owns the campaign', async () => {
    await withWorker(async (taskQueue) => {
      // Otto's own window is 0s, Paula's the scope's hour: neither decides for Mona or Cyrus.
      const [ottos] = await admit(taskQueue, 'escalating', { weakness: 'CVE-2099-7401' });
      const [paulas] = await admit(taskQueue, 'escalating-too', { weakness: 'CVE-2099-7402' });
      const campaigns = [
        (await campaignOf(db.pool, ottos!)).campaignId,
        (await campaignOf(db.pool, paulas!)).campaignId,
      ];
      // Cyrus (0s) hears of each breach at once…
      const atOnce = await eventually(
        'the CISO told at once of both breaches',
        async () =>
          log.notifications.filter((n) => n.kind === 'escalation' && campaigns.includes(n.campaign.id)),
        (sent) => sent.length === 2,
        30_000,
      );
      expect(atOnce.map((n) => [n.to, n.channels])).toEqual([
        [['cyrus'], undefined],
        [['cyrus'], undefined],
      ]);
      // …Mona (the scope's hour) and the channel get them gathered.
      const gathered = await eventually(
        'the escalations gathered for the manager and the channel',
        async () =>
          (
            await db.pool.query<{ audience: string; campaign_id: string }>(
              `select audience, campaign_id from escalation_items
                where campaign_id = any($1::text[]) and sent_key is null order by audience, campaign_id`,
              [campaigns],
            )
          ).rows,
        (rows) => rows.length === 3,
        30_000,
      );
      expect(gathered.map((g) => g.audience)).toEqual(['person:mona', 'person:mona', 'slack:C0ESCALATE']);
      const { rows: events } = await db.pool.query<{ type: string; reason: string }>(
        `select type, reason from events where exposure_id = $1 and data ->> 'kind' = 'escalation'`,
        [ottos],
      );
      expect(events).toEqual([
        {
          type: 'notified',
          reason:
            'escalation sent to cyrus; escalation gathered into the next escalation message to mona, C0ESCALATE',
        },
      ]);

      // Within the hour nothing more; after it, one message for Mona with both campaigns, one for
      // the channel, none for Cyrus (the security lead's, from an earlier test, is hers alone).
      expect(await sendEscalationDigests(deps(), Date.now() + 60_000)).toEqual({ messages: 0, items: 0 });
      await sendEscalationDigests(deps(), Date.now() + 2 * 3_600_000);
      const digests = log.digests.filter(
        (d) => d.kind === 'escalations' && d.campaigns.some((c) => campaigns.includes(c.campaign.id)),
      );
      expect(digests.map((d) => [d.to, d.channels])).toEqual([
        [['mona'], undefined],
        [[], { slack: 'C0ESCALATE' }],
      ]);
      expect(digests[0]!.campaigns.map((c) => c.campaign.id).sort()).toEqual([...campaigns].sort());
      expect(digests[1]!.campaigns.map((c) => c.campaign.id)).toEqual([campaigns[0]]);
      await endCampaign(ottos!);
      await endCampaign(paulas!);
    });
  }, 90_000);
});

describe('the policy', () => {
  it('judges urgency by one rule and reads the escalation window from the recipient', () => {
    const policy = notificationPolicyFor(config, 'mixed', 'dana');
    expect(urgentReason(policy, [{ priority: 'Attend', kev: false }])).toBeUndefined();
    expect(
      urgentReason(policy, [
        { priority: 'Track', kev: false },
        { priority: 'Act', kev: false },
      ]),
    ).toBe('Act priority');
    expect(urgentReason(policy, [{ priority: 'Track', kev: true }])).toBe('in CISA KEV');
    expect(urgentReason({ ...policy, urgentKev: false }, [{ priority: 'Track', kev: true }])).toBeUndefined();
    // Person, else scope, else one hour; a channel follows its scope.
    expect(escalationWindowFor(config, 'escalating', 'cyrus')).toBe(0);
    expect(escalationWindowFor(config, 'escalating', 'mona')).toBe(3_600_000);
    expect(escalationWindowFor(config, 'escalating')).toBe(3_600_000);
    expect(escalationWindowFor(config, 'escalating', 'otto')).toBe(0);
  });
});
