// The Slack bot: Bolt 5 in HTTP mode on the project's HTTP server (or Socket Mode when configured).
// Listeners are small and ack() first; the decision is applied after Slack has its answer:
// - the buttons of a campaign's message decide for the whole campaign (every exposure still waiting,
//   listed or not); an exposure's menu makes an exception for that one;
// - a daily queue's buttons approve or snooze a whole campaign each;
// - accept risk, false positive, reassign (and snooze from an exposure's menu) open a modal whose
//   submission is checked field by field before it closes;
// - the outcome updates every message showing the campaign in place (chat.update through the
//   outbox): what is left, who acted, only the buttons still valid; refusals and errors go to the
//   clicker only (chat.postEphemeral).
import { randomUUID } from 'node:crypto';
import { App, SocketModeReceiver } from '@slack/bolt';
import { z } from 'zod';
import type { Logger } from 'pino';
import type { Person } from '../../domain/config.ts';
import type { Actor, DecisionKind } from '../../domain/exposure.ts';
import type { Pool } from '../../runtime/pool.ts';
import { resolveSecret } from '../../runtime/config.ts';
import type { DecisionApi, DecisionInput } from '../../chat/decisions.ts';
import type { StoredMessage } from '../../chat/delivery.ts';
import { decideFromChat, refusalText, type DecisionTarget } from '../../chat/acting.ts';
import type { HttpServer } from '../http.ts';
import {
  actionableIds,
  isDigest,
  patchRolloutOf,
  resolveRef,
  waitingCount,
  type ChatMessageModel,
  type PatchDecisionKind,
} from '../../chat/messages.ts';
import type { ChatRuntime, SlackSide } from '../../chat/runtime.ts';
import { slackClientOptions, slackLogger } from '../../chat/slack/client.ts';
import { SeenRequests, SlackRouteReceiver, requestId } from './receiver.ts';
import { RefusalAudit } from '../audit.ts';
import type { ModalOrigin } from '../../chat/slack/render.ts';
import type { SlackEphemeral } from '../../chat/slack/transport.ts';

export interface SlackBotDeps {
  runtime: ChatRuntime;
  decisions: DecisionApi;
  pool: Pool;
  log: Logger;
  baseDir: string;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
}

// ---- the parts of Slack payloads we read, parsed once at the edge ------------------------------

const option = z.object({ value: z.string() });
const actionPayload = z.object({
  action_id: z.string(),
  value: z.string().optional(),
  selected_option: option.nullish(),
});
const blockActions = z.object({
  type: z.literal('block_actions'),
  trigger_id: z.string(),
  user: z.object({ id: z.string() }),
  container: z
    .object({ channel_id: z.string().optional(), message_ts: z.string().optional() })
    .partial()
    .optional(),
  channel: z.object({ id: z.string() }).optional(),
  message: z.object({ ts: z.string() }).optional(),
  actions: z.array(actionPayload).min(1),
});
type BlockActions = z.infer<typeof blockActions>;

const stateValue = z.object({
  value: z.string().nullish(),
  selected_option: option.nullish(),
  selected_date: z.string().nullish(),
});
const viewSubmission = z.object({
  type: z.literal('view_submission'),
  user: z.object({ id: z.string() }),
  view: z.object({
    callback_id: z.string(),
    private_metadata: z.string(),
    state: z.object({ values: z.record(z.string(), z.record(z.string(), stateValue)) }),
  }),
});
const modalOrigin = z.object({
  m: z.string().regex(/^[^/]+\/\d+\.\d+$/),
  t: z.string().min(1),
  k: z.enum(['snooze', 'acceptRisk', 'markFalsePositive', 'reassign']),
  s: z.string().min(1),
});

const patchModalOrigin = z.object({
  m: z.string().regex(/^[^/]+\/\d+\.\d+$/),
  r: z.string().min(1),
});

/** How long a click on a message not (yet) known by its ts waits for the outbox to record it. */
const CLICK_SETTLE_MS = 3_000;

const modalKinds = new Set<DecisionKind>(['acceptRisk', 'markFalsePositive', 'reassign']);
const decisionKinds = new Set<string>(['approve', 'snooze', 'acceptRisk', 'markFalsePositive', 'reassign']);

/** What a click asks for: a kind, one exposure (its ref) or all, and for snooze maybe the days. */
interface Click {
  kind: DecisionKind;
  target: string;
  days?: number;
}

export function parseClick(action: z.infer<typeof actionPayload>): Click | undefined {
  const id = action.action_id;
  const all = /^ctem_all_(approve|snooze|acceptRisk|markFalsePositive|reassign)$/.exec(id);
  if (all) {
    const kind = all[1] as DecisionKind;
    if (kind === 'snooze') {
      const days = Number(action.selected_option?.value);
      return Number.isInteger(days) && days > 0 ? { kind, target: 'all', days } : undefined;
    }
    return { kind, target: 'all' };
  }
  if (/^ctem_one_\d+$/.test(id)) {
    const value = action.selected_option?.value ?? '';
    const bar = value.indexOf('|');
    const kind = value.slice(0, bar);
    const ref = value.slice(bar + 1);
    if (bar < 0 || !decisionKinds.has(kind) || !ref) return undefined;
    return { kind: kind as DecisionKind, target: ref };
  }
  return undefined;
}

export class SlackBot {
  readonly app: App;
  readonly receiver?: SlackRouteReceiver;
  private readonly side: SlackSide;
  private readonly now: () => number;
  private readonly seen: SeenRequests;
  private readonly audit: RefusalAudit;
  /** Listener work still running after its ack (awaited on stop). */
  private readonly inflight = new Set<Promise<void>>();

  private constructor(
    private readonly deps: SlackBotDeps,
    side: SlackSide,
    ids: { botId: string; botUserId: string },
  ) {
    this.side = side;
    this.now = deps.now ?? Date.now;
    const env = deps.env ?? process.env;
    const log = deps.log.child({ part: 'slack' });
    const logger = slackLogger(log);
    const clientOptions = slackClientOptions(side.config, log);
    this.seen = new SeenRequests(deps.pool, log);
    this.audit = new RefusalAudit(deps.pool, log);
    if (side.config.mode === 'socket') {
      const appToken = resolveSecret(side.config.appToken!, env, deps.baseDir);
      this.app = new App({
        token: side.token,
        ...ids,
        receiver: new SocketModeReceiver({
          appToken,
          logger,
          installerOptions: { clientOptions },
          // Socket Mode re-delivers an envelope it saw no ack for (retry_attempt): same ids as HTTP.
          customPropertiesExtractor: (args: { body?: Record<string, unknown> }) => ({
            requestId: requestId(args.body ?? {}, Buffer.from(JSON.stringify(args.body ?? {}))),
          }),
        }),
        clientOptions,
        logger,
        convoStore: false,
      });
    } else {
      this.receiver = new SlackRouteReceiver({
        signingSecret: resolveSecret(side.config.signingSecret!, env, deps.baseDir),
        pool: deps.pool,
        log,
        slackLogger: logger,
        now: deps.now,
        audit: this.audit,
      });
      this.app = new App({
        token: side.token,
        ...ids,
        receiver: this.receiver,
        clientOptions,
        logger,
        convoStore: false,
      });
    }
    this.listen();
  }

  /** Check the token (auth.test) and build the bot; throws a sentence naming the setting on failure. */
  static async create(deps: SlackBotDeps): Promise<SlackBot> {
    const side = deps.runtime.slack;
    if (!side) throw new Error('integrations.slack is not configured');
    let auth: { bot_id?: string; user_id?: string };
    try {
      auth = await side.client.auth.test();
    } catch (err) {
      throw new Error(
        `Slack refused the bot token (auth.test: ${(err as { data?: { error?: string } }).data?.error ?? (err as Error).message}); check integrations.slack.botToken`,
        { cause: err },
      );
    }
    return new SlackBot(deps, side, { botId: auth.bot_id ?? '', botUserId: auth.user_id ?? '' });
  }

  /** Register the events/interactivity endpoint on the shared HTTP server (HTTP mode). */
  mount(http: HttpServer): void {
    if (this.receiver) http.route('POST', this.side.config.path, this.receiver.handle);
  }

  async start(): Promise<void> {
    if (this.side.config.mode === 'socket') await this.app.start();
  }

  async stop(): Promise<void> {
    if (this.side.config.mode === 'socket') await this.app.stop();
    await Promise.race([Promise.allSettled([...this.inflight]), new Promise((r) => setTimeout(r, 10_000))]);
  }

  /** A button: acked at once, then the click (checked against its schema) handled under the guard. */
  private onButton(actionId: RegExp, handle: (click: BlockActions) => Promise<void>): void {
    this.app.action(actionId, async ({ ack, body, context }) => {
      await ack();
      const parsed = blockActions.safeParse(body);
      if (!parsed.success) {
        this.deps.log.warn({ issues: parsed.error.issues.length }, 'unexpected block_actions payload');
        return;
      }
      await this.guard(parsed.data.user.id, channelOf(parsed.data), context.requestId, () =>
        handle(parsed.data),
      );
    });
  }

  private listen(): void {
    this.onButton(/^ctem_(all|one)_/, (click) => this.onClick(click));
    this.onButton(/^ctem_q_(approve|snooze)_\d+$/, (click) => this.onQueueClick(click));
    // Link buttons ("Open in dashboard") are reported too; the browser does the rest.
    this.app.action(/^ctem_q_open_\d+$/, async ({ ack }) => {
      await ack();
    });

    this.app.view('ctem_decision', async ({ ack, body, context }) => {
      const parsed = viewSubmission.safeParse(body);
      const origin = parsed.success
        ? modalOrigin.safeParse(safeJson(parsed.data.view.private_metadata))
        : undefined;
      if (!parsed.success || !origin?.success) {
        await ack();
        this.deps.log.warn('unexpected view_submission payload');
        return;
      }
      // Checked before the ack, without the database: field errors must come back in the ack.
      const input = this.formInput(parsed.data, origin.data);
      const problems = this.deps.decisions.formProblems(origin.data.s, input);
      if (Object.keys(problems).length > 0) {
        await ack({ response_action: 'errors', errors: problems as Record<string, string> });
        return;
      }
      await ack();
      const channel = origin.data.m.slice(0, origin.data.m.lastIndexOf('/'));
      await this.guard(parsed.data.user.id, channel, context.requestId, () =>
        this.onSubmit(parsed.data, origin.data, input),
      );
    });

    this.onButton(/^ctem_patch_(approve|reject)$/, (click) => this.onPatchClick(click));

    this.app.view('ctem_patch_reject', async ({ ack, body, context }) => {
      const parsed = viewSubmission.safeParse(body);
      const origin = parsed.success
        ? patchModalOrigin.safeParse(safeJson(parsed.data.view.private_metadata))
        : undefined;
      if (!parsed.success || !origin?.success) {
        await ack();
        this.deps.log.warn('unexpected view_submission payload');
        return;
      }
      const reason = parsed.data.view.state.values.reason?.value?.value?.trim() ?? '';
      if (reason === '') {
        await ack({ response_action: 'errors', errors: { reason: 'Say why the plan is rejected.' } });
        return;
      }
      await ack();
      const channel = origin.data.m.slice(0, origin.data.m.lastIndexOf('/'));
      await this.guard(parsed.data.user.id, channel, context.requestId, async () => {
        const stored = await this.deps.runtime.delivery.bySlackRef(origin.data.m);
        if (
          !stored ||
          isDigest(stored.model) ||
          patchRolloutOf(stored.model.notification) !== origin.data.r
        ) {
          await this.tell(channel, parsed.data.user.id, 'This message is not one ctem is tracking any more.');
          return;
        }
        await this.answerPatch(
          stored as StoredMessage<ChatMessageModel>,
          channel,
          parsed.data.user.id,
          false,
          reason,
        );
      });
    });

    this.app.event('app_mention', async ({ event, context }) => {
      const e = event as { channel?: string; user?: string };
      if (!e.channel || !e.user || !(await this.seen.firstTime(context.requestId))) return;
      await this.tell(
        e.channel,
        e.user,
        'I post CTEM decision requests and SLA escalations here. Decide with the buttons on those messages; every decision is checked against ctem.yaml and recorded.',
      );
    });
  }

  /**
   * Run a listener's work after its ack: once per request id (a retry or a replay is dropped here),
   * with anything unexpected shown to the person who clicked as an ephemeral error.
   */
  private async guard(
    userId: string,
    channel: string | undefined,
    requestId: unknown,
    body: () => Promise<void>,
  ): Promise<void> {
    const run = (async () => {
      try {
        if (!(await this.seen.firstTime(requestId))) {
          // Interactions are never retried by Slack: the same one again is a replay.
          await this.audit.record({
            channel: 'slack',
            route: '/slack/events',
            status: 200,
            reason: `replayed interaction ${String(requestId)} (already handled; not acted on)`,
          });
          return;
        }
        await body();
      } catch (err) {
        this.deps.log.error({ err }, 'slack decision failed');
        if (channel)
          await this.tell(
            channel,
            userId,
            `:warning: ctem could not record your decision: ${(err as Error).message}. Try again; if it keeps failing, tell your CTEM administrator.`,
          ).catch(() => undefined);
      }
    })();
    this.inflight.add(run);
    try {
      await run;
    } finally {
      this.inflight.delete(run);
    }
  }

  /**
   * The stored message a click came from ("<channel>/<ts>"). Slack shows a message as soon as it has
   * it, but the outbox learns its ts only from Slack's answer and writes it down after that: a click
   * in between (a quick hand, a slow answer) would find nothing. A miss is looked up again for a
   * moment — the click is acked already — before the clicker is told the message is not tracked.
   */
  private async clicked(ref: string): Promise<StoredMessage | undefined> {
    const deadline = performance.now() + CLICK_SETTLE_MS;
    for (let pause = 50; ; pause = Math.min(pause * 2, 400)) {
      const stored = await this.deps.runtime.delivery.bySlackRef(ref);
      const left = deadline - performance.now();
      if (stored || left <= 0) return stored;
      await new Promise((r) => setTimeout(r, Math.min(pause, left)));
    }
  }

  /** The message a click came from, when it is a campaign's message ctem tracks; else the clicker is told. */
  private async campaignMessage(
    channel: string,
    ts: string,
    userId: string,
  ): Promise<StoredMessage<ChatMessageModel> | undefined> {
    const stored = await this.clicked(`${channel}/${ts}`);
    if (stored && !isDigest(stored.model)) return stored as StoredMessage<ChatMessageModel>;
    await this.tell(
      channel,
      userId,
      'This message is not one ctem is tracking any more; decide from the dashboard or `ctem exposure show`.',
    );
    return undefined;
  }

  /** A button or menu on a campaign's message: the whole campaign ("all") or one listed exposure. */
  private async onClick(body: BlockActions): Promise<void> {
    const channel = channelOf(body);
    const ts = body.container?.message_ts ?? body.message?.ts;
    const click = parseClick(body.actions[0]!);
    if (!channel || !ts || !click) return;
    const stored = await this.campaignMessage(channel, ts, body.user.id);
    if (!stored) return;
    const model = stored.model;
    const campaign = model.notification.campaign;
    const target = this.target(model, click.target);
    const person = await this.personOrRefusal(channel, body.user.id, target, click.kind);
    if (!person) return;
    if (!target) {
      await this.tell(channel, body.user.id, 'Nothing on this message is open to that decision any more.');
      return;
    }
    if (click.kind === 'approve')
      return await this.act(person, channel, body.user.id, target, { kind: 'approve' });
    if (click.kind === 'snooze' && click.days !== undefined) {
      const until = this.deps.decisions.snoozeUntil(campaign.scope, click.days);
      return await this.act(person, channel, body.user.id, target, { kind: 'snooze', until });
    }
    if (click.kind === 'snooze' || modalKinds.has(click.kind)) {
      // Before the form: would this person be refused whatever they type? Judged on the exposures
      // the message lists (the most urgent of the campaign), with the workflows' own rules.
      const ids = target.exposureIds ?? actionableIds(model, click.kind);
      const subjects = await this.deps.decisions.subjects(ids, (id) => ({
        priority: campaign.exposures.find((e) => e.id === id)?.priority ?? campaign.priority,
        ...(campaign.owner ? { owner: campaign.owner } : {}),
      }));
      const actor: Actor = { personId: person.id, via: 'slack' };
      const refused = await this.deps.decisions.precheck(actor, campaign.scope, click.kind, subjects);
      if (refused) {
        await this.tell(channel, body.user.id, `:no_entry: Not done: ${refused}.`);
        return;
      }
      const origin: ModalOrigin = {
        m: `${channel}/${ts}`,
        t: click.target,
        k: click.kind as ModalOrigin['k'],
        s: campaign.scope,
      };
      const view = this.side.renderer.modal(campaign.scope, origin, this.targetText(model, target));
      await this.app.client.views.open({ trigger_id: body.trigger_id, view: view as never });
    }
  }

  /** Approve or snooze a whole campaign from the daily queue. */
  private async onQueueClick(body: BlockActions): Promise<void> {
    const channel = channelOf(body);
    const ts = body.container?.message_ts ?? body.message?.ts;
    const action = body.actions[0]!;
    const hit = /^ctem_q_(approve|snooze)_(\d+)$/.exec(action.action_id);
    if (!channel || !ts || !hit) return;
    const stored = await this.clicked(`${channel}/${ts}`);
    const entry =
      stored && isDigest(stored.model) && stored.model.digest.kind === 'queue'
        ? stored.model.digest.campaigns[Number(hit[2])]
        : undefined;
    if (!entry) {
      await this.tell(channel, body.user.id, 'This message is not one ctem is tracking any more.');
      return;
    }
    const kind = hit[1] as 'approve' | 'snooze';
    const target: DecisionTarget = { campaignId: entry.campaign.id };
    const person = await this.personOrRefusal(channel, body.user.id, target, kind);
    if (!person) return;
    if (kind === 'approve') return await this.act(person, channel, body.user.id, target, { kind });
    const days = Number(action.selected_option?.value);
    if (!Number.isInteger(days) || days <= 0) return;
    const until = this.deps.decisions.snoozeUntil(entry.campaign.scope, days);
    await this.act(person, channel, body.user.id, target, { kind, until });
  }

  /**
   * The clicker as a person of ctem.yaml, or undefined after telling them (and recording against
   * what they tried to decide) why not.
   */
  private async personOrRefusal(
    channel: string,
    userId: string,
    target: DecisionTarget | undefined,
    kind: DecisionKind,
  ): Promise<Person | undefined> {
    const person = this.deps.decisions.people.bySlackId(userId);
    if (person) return person;
    const ids = target
      ? (target.exposureIds ?? (await this.deps.decisions.openExposuresOf(target.campaignId)))
      : [];
    const reason = await this.deps.decisions.refuseUnknownAccount('slack', userId, ids, kind);
    await this.tell(channel, userId, `:no_entry: Not done: ${reason}.`);
    return undefined;
  }

  /** Approve patch (at once) or Reject patch… (a modal for the reason) on a patch approval request. */
  private async onPatchClick(body: BlockActions): Promise<void> {
    const channel = channelOf(body);
    const ts = body.container?.message_ts ?? body.message?.ts;
    if (!channel || !ts) return;
    const stored = await this.clicked(`${channel}/${ts}`);
    const request =
      stored && !isDigest(stored.model) ? (stored as StoredMessage<ChatMessageModel>) : undefined;
    const rolloutId = request ? patchRolloutOf(request.model.notification) : undefined;
    if (!request || !rolloutId) {
      await this.tell(
        channel,
        body.user.id,
        'This message is not a patch approval ctem is tracking any more.',
      );
      return;
    }
    const approve = body.actions[0]!.action_id === 'ctem_patch_approve';
    if (approve) return await this.answerPatch(request, channel, body.user.id, true);
    const person = await this.patchPersonOrRefusal(request, channel, body.user.id, 'rejectPatch');
    if (!person) return;
    const exposureIds = request.model.notification.campaign.exposures.map((e) => e.id);
    const refused = await this.deps.decisions.precheckPatch(
      { personId: person.id, via: 'slack' },
      rolloutId,
      'rejectPatch',
      exposureIds,
    );
    if (refused) {
      await this.tell(channel, body.user.id, `:no_entry: Not done: ${refused}.`);
      return;
    }
    const c = request.model.notification.campaign;
    const view = this.side.renderer.patchRejectModal(
      { m: `${channel}/${ts}`, r: rolloutId },
      `Patch plan for *${c.action}* (${c.totals.open || c.exposures.length} open exposure${(c.totals.open || c.exposures.length) === 1 ? '' : 's'}, scope ${c.scope})`,
    );
    await this.app.client.views.open({ trigger_id: body.trigger_id, view: view as never });
  }

  /** The clicker of a patch answer as a person of ctem.yaml, or undefined after telling them (and recording) why not. */
  private async patchPersonOrRefusal(
    stored: StoredMessage<ChatMessageModel>,
    channel: string,
    userId: string,
    kind: PatchDecisionKind,
  ): Promise<Person | undefined> {
    const person = this.deps.decisions.people.bySlackId(userId);
    if (person) return person;
    const reason = await this.deps.decisions.refuseUnknownAccount(
      'slack',
      userId,
      stored.model.notification.campaign.exposures.map((e) => e.id),
      kind,
      patchRolloutOf(stored.model.notification),
    );
    await this.tell(channel, userId, `:no_entry: Not done: ${reason}.`);
    return undefined;
  }

  /** Send the patch answer to the rollout; show it on every copy, or tell the clicker the refusal. */
  private async answerPatch(
    stored: StoredMessage<ChatMessageModel>,
    channel: string,
    userId: string,
    approved: boolean,
    comment?: string,
  ): Promise<void> {
    const kind: PatchDecisionKind = approved ? 'approvePatch' : 'rejectPatch';
    const person = await this.patchPersonOrRefusal(stored, channel, userId, kind);
    if (!person) return;
    const rolloutId = patchRolloutOf(stored.model.notification)!;
    const exposureIds = stored.model.notification.campaign.exposures.map((e) => e.id);
    const outcome = await this.deps.decisions.decidePatch(
      { personId: person.id, via: 'slack' },
      rolloutId,
      { approved, ...(comment ? { comment } : {}) },
      exposureIds,
    );
    if (!outcome.ok) {
      await this.tell(channel, userId, `:no_entry: Not done: ${outcome.reason}.`);
      return;
    }
    await this.deps.runtime.delivery.recordDecision(
      stored.key,
      {
        personId: person.id,
        name: person.name,
        kind,
        exposureIds,
        at: new Date(this.now()).toISOString(),
        detail: comment ? (comment.length > 200 ? `${comment.slice(0, 199)}…` : comment) : '',
        via: 'Slack',
      },
      [],
    );
  }

  /** The decision a modal's fields describe (validated by formProblems before the ack). */
  private formInput(body: z.infer<typeof viewSubmission>, origin: ModalOrigin): DecisionInput {
    const scope = origin.s;
    const values = body.view.state.values;
    const field = (block: string) => values[block]?.value;
    const text = (block: string) => field(block)?.value?.trim() ?? '';
    switch (origin.k) {
      case 'snooze': {
        const days = Number(field('duration')?.selected_option?.value);
        return {
          kind: 'snooze',
          until: this.deps.decisions.snoozeUntil(scope, Number.isInteger(days) && days > 0 ? days : 0),
          ...(text('reason') ? { reason: text('reason') } : {}),
        };
      }
      case 'acceptRisk':
        return {
          kind: 'acceptRisk',
          justification: text('justification'),
          expires: this.deps.decisions.expiryFromDate(scope, field('expires')?.selected_date ?? '') ?? '',
        };
      case 'markFalsePositive':
        return { kind: 'markFalsePositive', reason: text('reason') };
      case 'reassign':
        return {
          kind: 'reassign',
          to: field('person')?.selected_option?.value ?? '',
          ...(text('reason') ? { reason: text('reason') } : {}),
        };
    }
  }

  private async onSubmit(
    body: z.infer<typeof viewSubmission>,
    origin: ModalOrigin,
    input: DecisionInput,
  ): Promise<void> {
    const channel = origin.m.slice(0, origin.m.lastIndexOf('/'));
    const stored = await this.deps.runtime.delivery.bySlackRef(origin.m);
    if (!stored || isDigest(stored.model)) {
      await this.tell(
        channel,
        body.user.id,
        'The message this decision was for is not tracked any more; nothing was done.',
      );
      return;
    }
    const target = this.target(stored.model, origin.t);
    const person = await this.personOrRefusal(channel, body.user.id, target, origin.k);
    if (!person) return;
    if (!target) {
      await this.tell(channel, body.user.id, 'Nothing on this message is open to that decision any more.');
      return;
    }
    await this.act(person, channel, body.user.id, target, input);
  }

  /** Send the decision; every message showing the campaign is updated; the clicker hears what was refused. */
  private async act(
    person: Person,
    channel: string,
    userId: string,
    target: DecisionTarget,
    input: DecisionInput,
  ): Promise<void> {
    const r = await decideFromChat(
      { decisions: this.deps.decisions, delivery: this.deps.runtime.delivery, now: this.now },
      { person, via: 'slack' },
      target,
      input,
    );
    const refused = refusalText(r, target.exposureIds?.length ?? 0);
    if (refused) await this.tell(channel, userId, `:no_entry: ${refused}`);
  }

  /**
   * What a click on a campaign's message decides on: "all" is the whole campaign, a ref one listed
   * exposure. Undefined: nothing (a patch request, an exposure the message no longer lists).
   */
  private target(model: ChatMessageModel, ref: string): DecisionTarget | undefined {
    if (patchRolloutOf(model.notification)) return undefined;
    const campaignId = model.notification.campaign.id;
    if (ref === 'all') return { campaignId };
    const id = resolveRef(model, ref);
    return id ? { campaignId, exposureIds: [id] } : undefined;
  }

  private targetText(model: ChatMessageModel, target: DecisionTarget): string {
    const c = model.notification.campaign;
    if (target.exposureIds?.length === 1) {
      const e = c.exposures.find((x) => x.id === target.exposureIds![0]);
      if (e) return `*${e.weaknessKey}* on *${e.asset}* (${e.priority}): ${e.title}`;
    }
    const waiting = waitingCount(c, model.states);
    return `The whole campaign *${c.action}* (${c.priority}): ${waiting === 1 ? 'the exposure' : `all ${waiting} exposures`} waiting for a decision`;
  }

  /** An ephemeral message to one person, through the outbox (paced, retried on 429). */
  private async tell(channel: string, user: string, text: string): Promise<void> {
    const payload: SlackEphemeral = { user, text };
    const d = await this.deps.runtime.outbox.ephemeral(
      'slack',
      channel,
      payload,
      `ephemeral:${randomUUID()}`,
    );
    if (!d.ok) this.deps.log.warn({ error: d.error }, 'ephemeral message not delivered');
  }
}

function channelOf(body: BlockActions): string | undefined {
  return body.container?.channel_id ?? body.channel?.id;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
