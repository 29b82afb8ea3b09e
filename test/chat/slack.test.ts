// The Slack bot end to end: the real exposure workflow on the real Temporal server asks its owner
// through the Slack notifier; signed clicks come in over HTTP to Bolt on the project's server; the
// local Slack Web API records what the bot sends back.
import { beforeAll, describe, expect, it } from 'vitest';
import { view } from '../lifecycle/support.ts';
import {
  blockAction,
  chatWorld,
  interactivityBody,
  postToSlackEndpoint,
  until,
  viewSubmission,
  waitForSlackMessage,
  type ChatWorld,
} from './support.ts';

let world: ChatWorld;
beforeAll(async () => {
  world = await chatWorld();
});

const DAY = 86_400_000;

async function eventsOf(id: string): Promise<{ type: string; actor: string; reason: string | null }[]> {
  const { rows } = await world.db.pool.query<{ type: string; actor: string; reason: string | null }>(
    'select type, actor, reason from events where exposure_id = $1 order by id',
    [id],
  );
  return rows;
}

function blocksText(blocks: unknown): string {
  return JSON.stringify(blocks ?? []);
}

describe('Slack: the owner decides from the message', () => {
  it('posts one message per unit to the owner, approves from the button, acks at once and updates the message', async () => {
    const ids = await world.exposures({
      weaknesses: ['CVE-2099-2001', 'CVE-2099-2002'],
      host: 'web-approve',
    });
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-2001');
    // One message carries both exposures of the unit (same owner, same fix on the same asset).
    expect(blocksText(message.blocks)).toContain('CVE-2099-2002');
    expect(
      world.slack.callsTo('chat.postMessage').filter((c) => JSON.stringify(c.args).includes('web-approve')),
    ).toHaveLength(1);
    expect(blocksText(message.blocks)).toContain('Upgrade openssl to 3.0.8 or later');
    expect(blocksText(message.blocks)).toContain('ctem_all_approve');

    const res = await postToSlackEndpoint(
      world,
      interactivityBody(
        blockAction({
          user: 'U0OLIVIA',
          channel: message.channel,
          ts: message.ts,
          actionId: 'ctem_all_approve',
          value: 'all',
        }),
      ),
    );
    expect(res.status).toBe(200);

    for (const id of ids)
      await until(
        `${id} approved`,
        () => view(world.temporal.client, id),
        (v) => v.state !== 'awaiting-decision',
      );
    // The approve → remediate path: the unit's patch plan (demo executor) asks the scope's approvers;
    // Adam approves it from his Slack message, the patch runs, and the exposures wait for a re-scan.
    const patchRequest = await waitForSlackMessage(world, 'D0ADAM', 'web-approve', 150_000);
    expect(blocksText(patchRequest.blocks)).toContain('Patch approval needed');
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
        () => view(world.temporal.client, id),
        (v) => v.state === 'verifying',
        60_000,
      );
    for (const id of ids) {
      const events = await eventsOf(id);
      expect(events.find((e) => e.type === 'approve')).toMatchObject({ actor: 'olivia' });
      expect(events.find((e) => e.type === 'patch-approved')).toMatchObject({ actor: 'adam' });
    }
    await until(
      'message updated',
      () => message.updates,
      (n) => n > 0,
    );
    const updated = blocksText(message.blocks);
    expect(updated).toContain('Olivia Owner approved the fix for 2 exposures');
    expect(updated).toContain('fix approved, remediating');
    expect(updated).not.toContain('ctem_all_approve');
  }, 180_000);

  it('snoozes with a duration chosen from the select, capped by the scope', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-2101'], host: 'web-snooze' });
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-2101');
    // The scope allows at most 30 days: 1, 3, 7, 14 and 30 days are offered, nothing longer.
    const options = blocksText(message.blocks);
    expect(options).toContain('"value":"30"');
    expect(options).not.toContain('"value":"60"');
    const res = await postToSlackEndpoint(
      world,
      interactivityBody(
        blockAction({
          user: 'U0OLIVIA',
          channel: message.channel,
          ts: message.ts,
          actionId: 'ctem_all_snooze',
          selected: '7',
        }),
      ),
    );
    expect(res.status).toBe(200);
    const v = await until(
      'snoozed',
      () => view(world.temporal.client, id!),
      (x) => x.state === 'snoozed',
    );
    const until7 = Date.parse(v.snoozedUntil!) - Date.now();
    expect(until7).toBeGreaterThan(6.9 * DAY);
    expect(until7).toBeLessThanOrEqual(7 * DAY);
    await until(
      'message updated',
      () => message.updates,
      (n) => n > 0,
    );
    expect(blocksText(message.blocks)).toContain('Olivia Owner snoozed (until');
  });

  it('accept risk opens a modal; a bad form is answered with field errors, a good one is applied', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-2201'], host: 'web-accept' });
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-2201');
    const opened = world.slack.callsTo('views.open').length;
    // Lena is the scope's security lead, so she may accept risks.
    const click = await postToSlackEndpoint(
      world,
      interactivityBody(
        blockAction({
          user: 'U0LENA',
          channel: message.channel,
          ts: message.ts,
          actionId: 'ctem_all_acceptRisk',
          value: 'all',
        }),
      ),
    );
    expect(click.status).toBe(200);
    const calls = await world.slack.waitForCalls('views.open', opened + 1);
    const modal = calls.at(-1)!.args.view as { private_metadata: string; blocks: { block_id?: string }[] };
    expect(modal.blocks.map((b) => b.block_id)).toEqual(expect.arrayContaining(['justification', 'expires']));

    const tooFar = new Date(Date.now() + 120 * DAY).toISOString().slice(0, 10);
    const bad = await postToSlackEndpoint(
      world,
      interactivityBody(
        viewSubmission({
          user: 'U0LENA',
          privateMetadata: modal.private_metadata,
          values: {
            justification: { type: 'plain_text_input', value: '   ' },
            expires: { type: 'datepicker', selected_date: tooFar },
          },
        }),
      ),
    );
    expect(bad.status).toBe(200);
    const answer = JSON.parse(bad.text) as { response_action: string; errors: Record<string, string> };
    expect(answer.response_action).toBe('errors');
    expect(answer.errors.justification).toBe('Say why the risk is acceptable.');
    expect(answer.errors.expires).toMatch(/At most 90 days/);
    expect((await view(world.temporal.client, id!)).state).toBe('awaiting-decision');

    const date = new Date(Date.now() + 30 * DAY).toISOString().slice(0, 10);
    const good = await postToSlackEndpoint(
      world,
      interactivityBody(
        viewSubmission({
          user: 'U0LENA',
          privateMetadata: modal.private_metadata,
          values: {
            justification: {
              type: 'plain_text_input',
              value: 'WAF rule 4711 blocks the vulnerable path until the Q3 upgrade',
            },
            expires: { type: 'datepicker', selected_date: date },
          },
        }),
      ),
    );
    expect(good.status).toBe(200);
    expect(good.text).toBe('');
    const v = await until(
      'risk accepted',
      () => view(world.temporal.client, id!),
      (x) => x.state === 'risk-accepted',
    );
    expect(v.riskAccepted).toMatchObject({
      by: 'lena',
      justification: expect.stringContaining('WAF rule 4711'),
    });
    expect(v.riskAccepted!.until.slice(0, 10)).toBe(date);
    expect((await eventsOf(id!)).find((e) => e.type === 'acceptRisk')).toMatchObject({ actor: 'lena' });
    await until(
      'message updated',
      () => message.updates,
      (n) => n > 0,
    );
    expect(blocksText(message.blocks)).toContain('Lena Lead accepted the risk');
  });

  it('false positive and reassign go through their modals to the workflow', async () => {
    const [fp, re] = await world.exposures({
      weaknesses: ['CVE-2099-2301', 'CVE-2099-2302'],
      host: 'web-fp',
    });
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-2301');
    const before = world.slack.callsTo('views.open').length;
    const menu = (value: string) =>
      postToSlackEndpoint(
        world,
        interactivityBody(
          blockAction({
            user: 'U0OLIVIA',
            channel: message.channel,
            ts: message.ts,
            actionId: 'ctem_one_0',
            selected: value,
          }),
        ),
      );
    const fpRef = fp!;
    const reRef = re!;
    expect((await menu(`markFalsePositive|${fpRef}`)).status).toBe(200);
    const fpModal = (await world.slack.waitForCalls('views.open', before + 1)).at(-1)!.args.view as {
      private_metadata: string;
    };
    await postToSlackEndpoint(
      world,
      interactivityBody(
        viewSubmission({
          user: 'U0OLIVIA',
          privateMetadata: fpModal.private_metadata,
          values: { reason: { type: 'plain_text_input', value: 'the package is vendored but never loaded' } },
        }),
      ),
    );
    await until(
      'false positive',
      () => view(world.temporal.client, fp!),
      (x) => x.state === 'false-positive',
    );

    expect((await menu(`reassign|${reRef}`)).status).toBe(200);
    const reModal = (await world.slack.waitForCalls('views.open', before + 2)).at(-1)!.args.view as {
      private_metadata: string;
    };
    await postToSlackEndpoint(
      world,
      interactivityBody(
        viewSubmission({
          user: 'U0OLIVIA',
          privateMetadata: reModal.private_metadata,
          values: {
            person: { type: 'static_select', selected_option: { value: 'adam' } },
            reason: { type: 'plain_text_input', value: null },
          },
        }),
      ),
    );
    await until(
      'reassigned',
      () => view(world.temporal.client, re!),
      (x) => x.owner === 'adam',
    );
    expect((await eventsOf(re!)).find((e) => e.type === 'reassign')).toMatchObject({ actor: 'olivia' });
    await until(
      'message updated twice',
      () => message.updates,
      (n) => n >= 2,
    );
    const text = blocksText(message.blocks);
    expect(text).toContain('Olivia Owner marked as false positive');
    expect(text).toContain('Olivia Owner reassigned (to Adam Approver)');
  });
});

describe('Slack: decisions taken elsewhere', () => {
  it('a decision from the dashboard through the same API shows on the chat message', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-2701'], host: 'web-dashboard' });
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-2701');
    const until3 = new Date(Date.now() + 3 * DAY).toISOString();
    const outcomes = await world.bots.decisions.decide({ personId: 'olivia', via: 'dashboard' }, [id!], {
      kind: 'snooze',
      until: until3,
    });
    expect(outcomes).toEqual([{ exposureId: id, ok: true, state: 'snoozed' }]);
    await until(
      'message updated',
      () => message.updates,
      (n) => n > 0,
    );
    expect(blocksText(message.blocks)).toContain('Olivia Owner snoozed (until');
    expect(blocksText(message.blocks)).toContain('via the dashboard');
  });
});

describe('Slack: refusals are shown to the clicker only, and recorded', () => {
  it('an owner may not accept the risk of an Act exposure: ephemeral refusal, no modal, audit event', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-2401'], exploited: true, host: 'web-act' });
    expect((await view(world.temporal.client, id!)).priority).toBe('Act');
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-2401');
    const opened = world.slack.callsTo('views.open').length;
    const ephemerals = world.slack.callsTo('chat.postEphemeral').length;
    await postToSlackEndpoint(
      world,
      interactivityBody(
        blockAction({
          user: 'U0OLIVIA',
          channel: message.channel,
          ts: message.ts,
          actionId: 'ctem_all_acceptRisk',
          value: 'all',
        }),
      ),
    );
    const eph = (await world.slack.waitForCalls('chat.postEphemeral', ephemerals + 1)).at(-1)!;
    expect(eph.args).toMatchObject({ channel: message.channel, user: 'U0OLIVIA' });
    expect(String(eph.args.text)).toMatch(
      /accepting the risk of an Act exposure needs a security lead or the CISO/,
    );
    expect(world.slack.callsTo('views.open')).toHaveLength(opened);
    const refused = (await eventsOf(id!)).filter((e) => e.type === 'decision-refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ actor: 'olivia' });
    expect((await view(world.temporal.client, id!)).state).toBe('awaiting-decision');
  });

  it('someone with no role in the scope is refused by the workflow validator, ephemerally, and it is recorded', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-2501'], host: 'web-pat' });
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-2501');
    const ephemerals = world.slack.callsTo('chat.postEphemeral').length;
    const updates = message.updates;
    await postToSlackEndpoint(
      world,
      interactivityBody(
        blockAction({
          user: 'U0PAT',
          channel: message.channel,
          ts: message.ts,
          actionId: 'ctem_all_approve',
          value: 'all',
        }),
      ),
    );
    const eph = (await world.slack.waitForCalls('chat.postEphemeral', ephemerals + 1)).at(-1)!;
    expect(eph.args).toMatchObject({ user: 'U0PAT' });
    expect(String(eph.args.text)).toMatch(/pat holds no role in scope prod; approving a fix needs an owner/);
    expect((await eventsOf(id!)).filter((e) => e.type === 'decision-refused')).toEqual([
      expect.objectContaining({ actor: 'pat' }),
    ]);
    expect((await view(world.temporal.client, id!)).state).toBe('awaiting-decision');
    expect(message.updates).toBe(updates);
  });

  it('a decision the exposure’s state does not allow is refused by the workflow validator, ephemerally, and recorded', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-2801'], host: 'web-state' });
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-2801');
    // The risk was accepted elsewhere a moment ago; Olivia's menu still offers "Approve fix".
    const expires = new Date(Date.now() + 30 * DAY).toISOString();
    const accepted = await world.bots.decisions.decide({ personId: 'lena', via: 'dashboard' }, [id!], {
      kind: 'acceptRisk',
      justification: 'compensating WAF rule 4711',
      expires,
    });
    expect(accepted).toEqual([{ exposureId: id, ok: true, state: 'risk-accepted' }]);
    const ephemerals = world.slack.callsTo('chat.postEphemeral').length;
    await postToSlackEndpoint(
      world,
      interactivityBody(
        blockAction({
          user: 'U0OLIVIA',
          channel: message.channel,
          ts: message.ts,
          actionId: 'ctem_one_0',
          selected: `approve|${id!}`,
        }),
      ),
    );
    const eph = (await world.slack.waitForCalls('chat.postEphemeral', ephemerals + 1)).at(-1)!;
    expect(eph.args).toMatchObject({ user: 'U0OLIVIA' });
    expect(String(eph.args.text)).toMatch(
      /the exposure is risk-accepted; approve is allowed only when it is/,
    );
    expect((await eventsOf(id!)).filter((e) => e.type === 'decision-refused')).toEqual([
      expect.objectContaining({ actor: 'olivia' }),
    ]);
    expect((await view(world.temporal.client, id!)).state).toBe('risk-accepted');
  });

  it('a Slack account that is not a person in ctem.yaml is refused before any workflow sees it', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-2601'], host: 'web-stranger' });
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-2601');
    const ephemerals = world.slack.callsTo('chat.postEphemeral').length;
    await postToSlackEndpoint(
      world,
      interactivityBody(
        blockAction({
          user: 'U0STRANGER',
          channel: message.channel,
          ts: message.ts,
          actionId: 'ctem_all_approve',
          value: 'all',
        }),
      ),
    );
    const eph = (await world.slack.waitForCalls('chat.postEphemeral', ephemerals + 1)).at(-1)!;
    expect(String(eph.args.text)).toMatch(
      /Slack account \(U0STRANGER\) is not linked to a person in ctem.yaml/,
    );
    expect((await eventsOf(id!)).filter((e) => e.type === 'decision-refused')).toEqual([
      expect.objectContaining({ actor: 'slack:U0STRANGER' }),
    ]);
    expect((await view(world.temporal.client, id!)).history).toHaveLength(0);
  });
});
