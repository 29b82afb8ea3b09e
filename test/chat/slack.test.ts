// The Slack bot end to end: the real campaign workflow on the real Temporal server asks its owner
// through the Slack notifier, one message per campaign; signed clicks come in over HTTP to Bolt on
// the project's server and decide for the whole campaign (or, from an exposure's menu, for that one
// as an exception); the local Slack Web API records what the bot sends back, and the campaign's
// message is updated in place after each decision: what is left, who acted, no stale buttons.
import { beforeAll, describe, expect, it } from 'vitest';
import { patchRolloutQuery } from '../../contracts/patch.ts';
import { campaignOf, decisionsOf, view } from '../lifecycle/support.ts';
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

/** The header block's text (what is asked, the priority, the action). */
function header(blocks: unknown): string {
  const b = (blocks as { type: string; text?: { text: string } }[]).find((x) => x.type === 'header');
  return b?.text?.text ?? '';
}

/** The decisions an exposure's menu offers ("approve", "snooze"…), by its weakness. */
function menuOf(blocks: unknown, weakness: string): string[] {
  const section = (
    blocks as { block_id?: string; text?: { text: string }; accessory?: { options: { value: string }[] } }[]
  ).find((b) => b.block_id?.startsWith('ctem_exposure_') && b.text?.text.includes(weakness));
  return (section?.accessory?.options ?? []).map((o) => o.value.split('|')[0]!);
}

/** How many decision updates the campaign workflow has accepted (its history says). */
async function acceptedUpdates(exposureId: string): Promise<number> {
  const { workflowId } = await campaignOf(world.db.pool, exposureId);
  const history = await world.temporal.client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes).length;
}

/** The patch rollout an exposure waits for, as the rollout workflow shows it (for failure messages). */
async function rolloutOf(id: string): Promise<unknown> {
  const v = await view(world.temporal.client, world.db.pool, id);
  if (!v.patchRolloutId) return undefined;
  return await world.temporal.client.workflow
    .getHandle(v.patchRolloutId)
    .query(patchRolloutQuery)
    .catch((err: unknown) => String(err));
}

const click = (
  message: { channel: string; ts: string },
  user: string,
  actionId: string,
  o: { value?: string; selected?: string } = {},
) =>
  postToSlackEndpoint(
    world,
    interactivityBody(blockAction({ user, channel: message.channel, ts: message.ts, actionId, ...o })),
  );

describe('Slack: the owner decides for the whole campaign from its message', () => {
  it('posts one message per campaign, approves every exposure on every asset with one click, acks at once and updates the message', async () => {
    const ids = await world.exposures({
      weaknesses: ['CVE-2099-2001', 'CVE-2099-2002'],
      hosts: ['web-approve-1', 'web-approve-2'],
      package: 'openssl',
    });
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-2001');
    // One message carries the campaign: one fix, its four exposures on two assets.
    const text = blocksText(message.blocks);
    expect(text).toContain('CVE-2099-2002');
    expect(text).toContain('web-approve-2');
    expect(
      world.slack.callsTo('chat.postMessage').filter((c) => JSON.stringify(c.args).includes('web-approve')),
    ).toHaveLength(1);
    expect(header(message.blocks)).toMatch(
      /^Decision needed · \S+ · Upgrade openssl to 3\.0\.8 or later on 2 assets$/,
    );
    expect(text).toContain('4 of 4 open exposures on 2 assets wait for a decision');
    expect(text).toContain('Approve fix for all 4');

    const res = await click(message, 'U0OLIVIA', 'ctem_all_approve', { value: 'all' });
    expect(res.status).toBe(200);
    expect(res.ms).toBeLessThan(3_000);

    for (const id of ids)
      await until(
        `${id} approved`,
        () => view(world.temporal.client, world.db.pool, id),
        (v) => v.state !== 'awaiting-decision',
      );
    await until(
      'message updated',
      () => message.updates,
      (n) => n > 0,
    );
    // One decision for the campaign: one update of its workflow, an approval recorded on each exposure.
    expect(await acceptedUpdates(ids[0]!)).toBe(1);
    for (const id of ids)
      expect(await decisionsOf(world.db.pool, id)).toEqual([{ kind: 'approve', by: 'olivia' }]);
    const updated = blocksText(message.blocks);
    expect(header(message.blocks)).toMatch(/^Decided · /);
    expect(updated).toContain('Olivia Owner approved the fix for 4 exposures');
    expect(updated).toContain('No decision pending on 2 assets: 4 fix approved, remediating');
    // No stale buttons: nothing waits for a decision, so no campaign-wide decision is offered, and
    // each exposure's menu offers only what a remediating exposure still allows.
    expect(updated).not.toContain('ctem_all_');
    expect(menuOf(message.blocks, 'CVE-2099-2001')).toEqual(['acceptRisk', 'markFalsePositive', 'reassign']);

    // The approve → remediate path: the campaign's patch plan (demo executor) asks the scope's
    // approvers; Adam approves it from his Slack message, the patch runs, and the exposures wait for
    // a re-scan.
    const patchRequest = await waitForSlackMessage(world, 'D0ADAM', 'web-approve', 150_000);
    expect(header(patchRequest.blocks)).toMatch(/^Patch approval needed/);
    const approvePatch = await click(patchRequest, 'U0ADAM', 'ctem_patch_approve', { value: 'approve' });
    expect(approvePatch.status).toBe(200);
    for (const id of ids)
      await until(
        `${id} verifying`,
        async () => ({
          exposure: await view(world.temporal.client, world.db.pool, id),
          rollout: await rolloutOf(id),
        }),
        (v) => v.exposure.state === 'verifying',
        60_000,
      );
    for (const id of ids)
      expect((await eventsOf(id)).find((e) => e.type === 'patch-approved')).toMatchObject({ actor: 'adam' });
  }, 180_000);

  it('an exposure’s menu makes an exception for that one; the campaign’s buttons then act on what is left', async () => {
    const [first, second] = await world.exposures({
      weaknesses: ['CVE-2099-2051', 'CVE-2099-2052'],
      host: 'web-exception',
    });
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-2051');
    expect(menuOf(message.blocks, 'CVE-2099-2051')).toEqual([
      'approve',
      'snooze',
      'acceptRisk',
      'markFalsePositive',
      'reassign',
    ]);
    expect((await click(message, 'U0OLIVIA', 'ctem_one_0', { selected: `approve|${first!}` })).status).toBe(
      200,
    );
    await until(
      'the first approved',
      () => view(world.temporal.client, world.db.pool, first!),
      (v) => v.state === 'remediating',
    );
    await until(
      'the message showing the exception',
      () => blocksText(message.blocks),
      (t) => t.includes('Olivia Owner approved the fix (') || t.includes('Olivia Owner approved the fix ·'),
    );
    expect(blocksText(message.blocks)).toContain('1 of 2 open exposures on 1 asset waits for a decision');
    expect(header(message.blocks)).toMatch(/^Decision needed/);
    expect(menuOf(message.blocks, 'CVE-2099-2051')).not.toContain('approve');
    expect(menuOf(message.blocks, 'CVE-2099-2052')).toContain('approve');

    // "Snooze…" for the campaign takes only what still waits: the exception keeps its approval.
    const updates = message.updates;
    expect((await click(message, 'U0OLIVIA', 'ctem_all_snooze', { selected: '7' })).status).toBe(200);
    await until(
      'the second snoozed',
      () => view(world.temporal.client, world.db.pool, second!),
      (v) => v.state === 'snoozed',
    );
    expect((await view(world.temporal.client, world.db.pool, first!)).state).toBe('remediating');
    expect(await decisionsOf(world.db.pool, first!)).toEqual([{ kind: 'approve', by: 'olivia' }]);
    await until(
      'the snooze recorded',
      () => decisionsOf(world.db.pool, second!),
      (d) => d.length > 0,
    );
    expect(await decisionsOf(world.db.pool, second!)).toEqual([{ kind: 'snooze', by: 'olivia' }]);
    await until(
      'message updated again',
      () => message.updates,
      (n) => n > updates,
    );
    expect(blocksText(message.blocks)).toContain('Olivia Owner snoozed (until');
  });

  it('takes a click that comes before Slack’s answer to the post has reached ctem', async () => {
    // Slack shows the message at once but answers the post 2 s later: ctem learns the message's ts
    // only then, and the click comes in between.
    world.slack.answerLate('chat.postMessage', 2_000);
    try {
      const seeding = world.exposures({ weaknesses: ['CVE-2099-2151'], host: 'web-quick', waitFor: false });
      const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-2151');
      const known = async () =>
        (
          await world.db.pool.query(`select 1 from chat_messages where message_ref = $1`, [
            `${message.channel}/${message.ts}`,
          ])
        ).rows.length;
      expect(await known()).toBe(0);
      const ephemerals = world.slack.callsTo('chat.postEphemeral').length;
      expect((await click(message, 'U0OLIVIA', 'ctem_all_approve', { value: 'all' })).status).toBe(200);
      expect(await known()).toBe(0);
      const [id] = await seeding;
      await until(
        'approved',
        () => view(world.temporal.client, world.db.pool, id!),
        (v) => v.state === 'remediating',
      );
      expect(await decisionsOf(world.db.pool, id!)).toEqual([{ kind: 'approve', by: 'olivia' }]);
      await until(
        'the message updated',
        () => blocksText(message.blocks),
        (t) => t.includes('Olivia Owner approved the fix'),
      );
      // Nothing told her the message was unknown.
      expect(world.slack.callsTo('chat.postEphemeral').slice(ephemerals)).toEqual([]);
    } finally {
      world.slack.answerLate('chat.postMessage', 0);
    }
  });

  it('snoozes with a duration chosen from the select, capped by the scope', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-2101'], host: 'web-snooze' });
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-2101');
    // The scope allows at most 30 days: 1, 3, 7, 14 and 30 days are offered, nothing longer.
    const options = blocksText(message.blocks);
    expect(options).toContain('"value":"30"');
    expect(options).not.toContain('"value":"60"');
    const res = await click(message, 'U0OLIVIA', 'ctem_all_snooze', { selected: '7' });
    expect(res.status).toBe(200);
    const v = await until(
      'snoozed',
      () => view(world.temporal.client, world.db.pool, id!),
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
    const opening = await click(message, 'U0LENA', 'ctem_all_acceptRisk', { value: 'all' });
    expect(opening.status).toBe(200);
    const calls = await world.slack.waitForCalls('views.open', opened + 1);
    const modal = calls.at(-1)!.args.view as { private_metadata: string; blocks: { block_id?: string }[] };
    expect(modal.blocks.map((b) => b.block_id)).toEqual(expect.arrayContaining(['justification', 'expires']));
    expect(JSON.stringify(modal.blocks)).toContain('The whole campaign');

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
    expect((await view(world.temporal.client, world.db.pool, id!)).state).toBe('awaiting-decision');

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
      () => view(world.temporal.client, world.db.pool, id!),
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
    expect(blocksText(message.blocks)).not.toContain('ctem_all_');
  });

  it('false positive and reassign go through their modals to the workflow, one exposure each', async () => {
    const [fp, re] = await world.exposures({
      weaknesses: ['CVE-2099-2301', 'CVE-2099-2302'],
      host: 'web-fp',
    });
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-2301');
    const before = world.slack.callsTo('views.open').length;
    const menu = (value: string) => click(message, 'U0OLIVIA', 'ctem_one_0', { selected: value });
    expect((await menu(`markFalsePositive|${fp!}`)).status).toBe(200);
    const fpModal = (await world.slack.waitForCalls('views.open', before + 1)).at(-1)!.args.view as {
      private_metadata: string;
      blocks: unknown[];
    };
    expect(JSON.stringify(fpModal.blocks)).toContain('CVE-2099-2301');
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
      () => view(world.temporal.client, world.db.pool, fp!),
      (x) => x.state === 'false-positive',
    );
    // The other exposure is left as it was: the exception touched one.
    expect((await view(world.temporal.client, world.db.pool, re!)).state).toBe('awaiting-decision');

    expect((await menu(`reassign|${re!}`)).status).toBe(200);
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
      () => view(world.temporal.client, world.db.pool, re!),
      (x) => x.owner === 'adam',
    );
    expect((await eventsOf(re!)).find((e) => e.type === 'reassign')).toMatchObject({ actor: 'olivia' });
    // Both shown on the message (two changes close together may go out as one edit).
    await until(
      'message showing both',
      () => blocksText(message.blocks),
      (t) =>
        t.includes('Olivia Owner marked as false positive') &&
        t.includes('Olivia Owner reassigned (to Adam Approver)'),
    );
    expect(message.updates).toBeGreaterThanOrEqual(1);
  });
});

describe('Slack: decisions taken elsewhere', () => {
  it('a decision from the dashboard through the same API updates the campaign’s message in place', async () => {
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
    // Nothing is undecided any more (the snoozed exposure may still be approved early).
    expect(header(message.blocks)).toMatch(/^Decided · /);
    expect(blocksText(message.blocks)).toContain('No decision pending on 1 asset: 1 snoozed');
  });
});

describe('Slack: refusals are shown to the clicker only, and recorded', () => {
  it('an owner may not accept the risk of an Act exposure: ephemeral refusal, no modal, audit event', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-2401'], exploited: true, host: 'web-act' });
    expect((await view(world.temporal.client, world.db.pool, id!)).priority).toBe('Act');
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-2401');
    const opened = world.slack.callsTo('views.open').length;
    const ephemerals = world.slack.callsTo('chat.postEphemeral').length;
    await click(message, 'U0OLIVIA', 'ctem_all_acceptRisk', { value: 'all' });
    const eph = (await world.slack.waitForCalls('chat.postEphemeral', ephemerals + 1)).at(-1)!;
    expect(eph.args).toMatchObject({ channel: message.channel, user: 'U0OLIVIA' });
    expect(String(eph.args.text)).toMatch(
      /accepting the risk of an Act exposure needs a security lead or the CISO/,
    );
    expect(world.slack.callsTo('views.open')).toHaveLength(opened);
    const refused = (await eventsOf(id!)).filter((e) => e.type === 'decision-refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ actor: 'olivia' });
    expect((await view(world.temporal.client, world.db.pool, id!)).state).toBe('awaiting-decision');
  });

  it('someone with no role in the scope is refused by the workflow validator, ephemerally, and it is recorded', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-2501'], host: 'web-pat' });
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-2501');
    const ephemerals = world.slack.callsTo('chat.postEphemeral').length;
    const updates = message.updates;
    await click(message, 'U0PAT', 'ctem_all_approve', { value: 'all' });
    const eph = (await world.slack.waitForCalls('chat.postEphemeral', ephemerals + 1)).at(-1)!;
    expect(eph.args).toMatchObject({ user: 'U0PAT' });
    expect(String(eph.args.text)).toMatch(/pat holds no role in scope prod; approving a fix needs an owner/);
    expect((await eventsOf(id!)).filter((e) => e.type === 'decision-refused')).toEqual([
      expect.objectContaining({ actor: 'pat' }),
    ]);
    expect((await view(world.temporal.client, world.db.pool, id!)).state).toBe('awaiting-decision');
    expect(message.updates).toBe(updates);
  });

  it('a decision the exposure’s state does not allow is refused by the workflow validator, ephemerally, and recorded', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-2801'], host: 'web-state' });
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-2801');
    // Olivia's menu still offers "Approve fix" (she has not seen the update yet): the risk was
    // accepted elsewhere a moment ago.
    const stale = { ...message, blocks: structuredClone(message.blocks) };
    const expires = new Date(Date.now() + 30 * DAY).toISOString();
    const accepted = await world.bots.decisions.decide({ personId: 'lena', via: 'dashboard' }, [id!], {
      kind: 'acceptRisk',
      justification: 'compensating WAF rule 4711',
      expires,
    });
    expect(accepted).toEqual([{ exposureId: id, ok: true, state: 'risk-accepted' }]);
    expect(menuOf(stale.blocks, 'CVE-2099-2801')).toContain('approve');
    const ephemerals = world.slack.callsTo('chat.postEphemeral').length;
    await click(message, 'U0OLIVIA', 'ctem_one_0', { selected: `approve|${id!}` });
    const eph = (await world.slack.waitForCalls('chat.postEphemeral', ephemerals + 1)).at(-1)!;
    expect(eph.args).toMatchObject({ user: 'U0OLIVIA' });
    expect(String(eph.args.text)).toMatch(
      /the exposure is risk-accepted; approve is allowed only when it is/,
    );
    expect((await eventsOf(id!)).filter((e) => e.type === 'decision-refused')).toEqual([
      expect.objectContaining({ actor: 'olivia' }),
    ]);
    expect((await view(world.temporal.client, world.db.pool, id!)).state).toBe('risk-accepted');
    // The message itself moved on: the risk acceptance is shown, approving is no longer offered.
    await until(
      'the message updated',
      () => menuOf(message.blocks, 'CVE-2099-2801'),
      (m) => !m.includes('approve'),
    );
  });

  it('a Slack account that is not a person in ctem.yaml is refused before any workflow sees it', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-2601'], host: 'web-stranger' });
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-2601');
    const ephemerals = world.slack.callsTo('chat.postEphemeral').length;
    await click(message, 'U0STRANGER', 'ctem_all_approve', { value: 'all' });
    const eph = (await world.slack.waitForCalls('chat.postEphemeral', ephemerals + 1)).at(-1)!;
    expect(String(eph.args.text)).toMatch(
      /Slack account \(U0STRANGER\) is not linked to a person in ctem.yaml/,
    );
    expect((await eventsOf(id!)).filter((e) => e.type === 'decision-refused')).toEqual([
      expect.objectContaining({ actor: 'slack:U0STRANGER' }),
    ]);
    expect(await decisionsOf(world.db.pool, id!)).toEqual([]);
    expect(await acceptedUpdates(id!)).toBe(0);
  });
});
