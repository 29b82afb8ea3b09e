// A patch plan's approval request, answered from chat: the patch rollout workflow (workflows/patch.ts)
// on the real Temporal server plans with the demo executor and asks the scope's approvers; Approve
// patch / Reject patch come in as signed Slack clicks (and a modal for the reason) or as Teams
// Action.Execute invokes, go to the rollout's approvePatch / rejectPatch updates through the one
// decision API, and every copy of the request shows the answer. Refusals (not an approver, already
// decided, not a person in ctem.yaml) are shown to the clicker only and recorded.
import type { WorkflowHandle } from '@temporalio/client';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  patchRolloutQuery,
  patchRolloutWorkflowId,
  type PatchRolloutResult,
  type PatchRolloutView,
} from '../../contracts/patch.ts';
import { view } from '../lifecycle/support.ts';
import {
  LENA_AAD,
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
  viewSubmission,
  waitForSlackMessage,
  type ChatWorld,
} from './support.ts';

let world: ChatWorld;
const LENA_CHAT = 'a:1lena-personal-chat';
beforeAll(async () => {
  world = await chatWorld();
  // Lena installed the app, so her approval requests reach her in Teams too.
  const res = await postActivity(world, installActivity(world, LENA_AAD, LENA_CHAT), bearer(world));
  expect(res.status).toBe(200);
});

interface Rollout {
  handle: WorkflowHandle;
  exposureId: string;
  host: string;
}

/** An exposure of scope prod and a patch rollout of its campaign waiting for an approval. */
async function rolloutAwaitingApproval(weakness: string, host: string): Promise<Rollout> {
  const [exposureId] = await world.exposures({ weaknesses: [weakness], host });
  const v = await view(world.temporal.client, world.db.pool, exposureId!);
  const campaignId = v.campaignId;
  const handle = await world.temporal.client.workflow.start('patchRollout', {
    taskQueue: world.taskQueue,
    // A round of its own: the campaign's rounds start at 1 (and nothing here approves its fix).
    workflowId: patchRolloutWorkflowId(campaignId, 1, 99),
    args: [
      {
        campaignId,
        scope: 'prod',
        targets: [
          {
            assetId: v.assetId,
            host,
            packages: [{ name: 'openssl', fixedVersion: '3.0.8' }],
            cves: [weakness],
          },
        ],
        exposures: [{ exposureId: exposureId!, assetId: v.assetId, weaknessKey: weakness }],
        requestRescan: false,
      },
    ],
  });
  await until(
    'the rollout to wait for an approval',
    () => handle.query(patchRolloutQuery),
    (r: PatchRolloutView) => r.status === 'awaiting-approval',
    60_000,
  );
  return { handle, exposureId: exposureId!, host };
}

async function eventsOf(id: string): Promise<{ type: string; actor: string; reason: string | null }[]> {
  const { rows } = await world.db.pool.query<{ type: string; actor: string; reason: string | null }>(
    'select type, actor, reason from events where exposure_id = $1 order by id',
    [id],
  );
  return rows;
}

const text = (blocks: unknown) => JSON.stringify(blocks ?? []);

function ephemeralsTo(user: string): string[] {
  return world.slack
    .callsTo('chat.postEphemeral')
    .filter((c) => c.args.user === user)
    .map((c) => String(c.args.text));
}

async function click(user: string, message: { channel: string; ts: string }, actionId: string) {
  const res = await postToSlackEndpoint(
    world,
    interactivityBody(blockAction({ user, channel: message.channel, ts: message.ts, actionId, value: 'x' })),
  );
  expect(res.status).toBe(200);
}

describe('patch approval from Slack', () => {
  it('asks the approvers, refuses the owner, takes the approver’s click and shows it on every copy', async () => {
    const r = await rolloutAwaitingApproval('CVE-2099-8801', 'web-patch-approve');
    // The request goes to the scope's approver and security lead, with the patch buttons only.
    const adams = await waitForSlackMessage(world, 'D0ADAM', r.host);
    const lenas = await waitForSlackMessage(world, 'D0LENA', r.host);
    expect(text(adams.blocks)).toContain('Patch approval needed');
    expect(text(adams.blocks)).toContain('ctem_patch_approve');
    expect(text(adams.blocks)).toContain('ctem_patch_reject');
    expect(text(adams.blocks)).not.toContain('ctem_all_approve');

    // The owner is not an approver of patches in prod: refused ephemerally, recorded, nothing moves.
    const before = ephemeralsTo('U0OLIVIA').length;
    await click('U0OLIVIA', adams, 'ctem_patch_approve');
    const refusal = await until(
      'the refusal shown to Olivia',
      () => ephemeralsTo('U0OLIVIA').slice(before),
      (t) => t.length > 0,
    );
    expect(refusal[0]).toMatch(/olivia may not approve patches in scope prod; approvers: adam, lena, cyrus/);
    expect((await r.handle.query(patchRolloutQuery)).status).toBe('awaiting-approval');
    expect((await eventsOf(r.exposureId)).filter((e) => e.type === 'patch-decision-refused')).toEqual([
      expect.objectContaining({ actor: 'olivia' }),
    ]);

    await click('U0ADAM', adams, 'ctem_patch_approve');
    const decided = await until(
      'the rollout approved',
      () => r.handle.query(patchRolloutQuery),
      (v: PatchRolloutView) => v.decision !== undefined,
      60_000,
    );
    expect(decided.decision).toMatchObject({ by: 'adam', via: 'slack', approved: true });
    await until(
      'the approval in the audit log',
      () => eventsOf(r.exposureId),
      (e) => e.some((x) => x.type === 'patch-approved' && x.actor === 'adam'),
      60_000,
    );
    // Both copies (Adam's and Lena's) now say who approved, without the buttons.
    for (const m of [adams, lenas]) {
      await until(
        'the request updated in place',
        () => text(m.blocks),
        (t) => t.includes('Adam Approver approved the patch plan'),
      );
      expect(text(m.blocks)).not.toContain('ctem_patch_approve');
    }

    // A second answer on a stale copy: the rollout is decided; Lena is told so, and it is recorded.
    await click('U0LENA', lenas, 'ctem_patch_reject');
    const late = await until(
      'the refusal shown to Lena',
      () => ephemeralsTo('U0LENA'),
      (t) => t.some((x) => /already decided/.test(x)),
    );
    expect(late.join('\n')).toMatch(/nothing to approve now/);
    expect(
      world.slack.callsTo('views.open').filter((c) => text(c.args).includes('ctem_patch_reject')),
    ).toEqual([]);
  });

  it('Reject patch asks for a reason in a modal, then the rollout ends rejected', async () => {
    const r = await rolloutAwaitingApproval('CVE-2099-8802', 'web-patch-reject');
    const lenas = await waitForSlackMessage(world, 'D0LENA', r.host);
    const opened = world.slack.callsTo('views.open').length;
    await click('U0LENA', lenas, 'ctem_patch_reject');
    const modal = (await world.slack.waitForCalls('views.open', opened + 1)).at(-1)!.args.view as {
      callback_id: string;
      private_metadata: string;
    };
    expect(modal.callback_id).toBe('ctem_patch_reject');

    const submit = (reason: string) =>
      postToSlackEndpoint(
        world,
        interactivityBody(
          viewSubmission({
            user: 'U0LENA',
            privateMetadata: modal.private_metadata,
            callbackId: modal.callback_id,
            values: { reason: { type: 'plain_text_input', value: reason } },
          }),
        ),
      );
    const empty = await submit('  ');
    expect(JSON.parse(empty.text)).toEqual({
      response_action: 'errors',
      errors: { reason: 'Say why the plan is rejected.' },
    });
    expect((await r.handle.query(patchRolloutQuery)).status).toBe('awaiting-approval');

    const good = await submit('not during the quarter close; plan it for next month');
    expect(good.status).toBe(200);
    const result = (await r.handle.result()) as PatchRolloutResult;
    expect(result.status).toBe('rejected');
    expect(result.summary).toContain('rejected by lena: not during the quarter close');
    await until(
      'the rejection in the audit log',
      () => eventsOf(r.exposureId),
      (e) => e.some((x) => x.type === 'patch-rejected' && x.actor === 'lena'),
      60_000,
    );
    await until(
      'the request updated in place',
      () => text(lenas.blocks),
      (t) => t.includes('Lena Lead rejected the patch plan (not during the quarter close'),
    );
  });
});

describe('patch approval from Teams', () => {
  it('refuses someone who is not an approver, then the security lead approves on the card', async () => {
    const r = await rolloutAwaitingApproval('CVE-2099-8803', 'web-patch-teams');
    const call = await until(
      'the approval card in Lena’s chat',
      () =>
        world.connector.calls.find(
          (c) =>
            c.method === 'POST' &&
            c.conversationId === LENA_CHAT &&
            JSON.stringify(c.activity).includes(r.host),
        ),
      (c) => c !== undefined,
    );
    const card = JSON.stringify(call!.activity);
    expect(card).toContain('Patch approval needed');
    expect(card).toContain('"verb":"approvePatch"');
    expect(card).toContain('"verb":"rejectPatch"');
    expect(card).not.toContain('"verb":"acceptRisk"');
    const key = /"verb":"approvePatch","style":"positive","data":\{"key":"([^"]+)"/.exec(card)![1]!;

    const invoke = async (aad: string, verb: string, data: Record<string, unknown>) => {
      const res = await postActivity(
        world,
        cardAction({ world, conversationId: LENA_CHAT, aadObjectId: aad, verb, data }),
        bearer(world),
      );
      expect(res.status).toBe(200);
      return res.body as { type: string; value: unknown };
    };
    // Pat holds no role in prod: the card answers why; the rollout still waits; it is recorded.
    const refused = await invoke(PAT_AAD, 'approvePatch', { key });
    expect(refused.type).toBe('application/vnd.microsoft.activity.message');
    expect(String(refused.value)).toMatch(/pat may not approve patches in scope prod/);
    expect((await r.handle.query(patchRolloutQuery)).status).toBe('awaiting-approval');
    expect((await eventsOf(r.exposureId)).filter((e) => e.type === 'patch-decision-refused')).toEqual([
      expect.objectContaining({ actor: 'pat' }),
    ]);

    const approved = await invoke(LENA_AAD, 'approvePatch', { key });
    expect(approved.type).toBe('application/vnd.microsoft.card.adaptive');
    expect(JSON.stringify(approved.value)).toContain('Lena Lead approved the patch plan');
    expect(JSON.stringify(approved.value)).not.toContain('approvePatch');
    expect((await r.handle.query(patchRolloutQuery)).decision).toMatchObject({
      by: 'lena',
      via: 'teams',
      approved: true,
    });
    await until(
      'the approval in the audit log',
      () => eventsOf(r.exposureId),
      (e) => e.some((x) => x.type === 'patch-approved' && x.actor === 'lena'),
      60_000,
    );
    // The Slack copies of the same request show it too.
    const adams = await waitForSlackMessage(world, 'D0ADAM', r.host);
    await until(
      'the Slack copy updated',
      () => text(adams.blocks),
      (t) => t.includes('Lena Lead approved the patch plan'),
    );
  });
});

describe('patch approval from elsewhere', () => {
  it('an answer through the decision API (the dashboard) shows on every chat copy', async () => {
    const r = await rolloutAwaitingApproval('CVE-2099-8804', 'web-patch-dashboard');
    const adams = await waitForSlackMessage(world, 'D0ADAM', r.host);
    const outcome = await world.bots.decisions.decidePatch(
      { personId: 'cyrus', via: 'dashboard' },
      r.handle.workflowId,
      { approved: true },
      [r.exposureId],
    );
    expect(outcome).toMatchObject({ ok: true, approved: true });
    await until(
      'the Slack copy updated',
      () => text(adams.blocks),
      (t) => t.includes('Cyrus Ciso approved the patch plan') && t.includes('via the dashboard'),
    );
    expect(text(adams.blocks)).not.toContain('ctem_patch_approve');
  });
});
