// Adaptive Cards for the Teams bot, from templates/teams: a campaign's card with Action.Execute
// verbs (or a reply in its reply chain), a digest about many campaigns, a scope alert.
import type { Config } from '../../domain/config.ts';
import type { DecisionKind } from '../../domain/exposure.ts';
import { decisionLimits, snoozeChoicesFor } from '../decisions.ts';
import type { PeopleDirectory } from '../identity.ts';
import {
  decisionKinds,
  formatTime,
  isAlert,
  isDigest,
  type ChatMessageModel,
  type DigestModel,
  type RenderContext,
  type StoredModel,
} from '../messages.ts';
import { buildDigestView, buildView, type ViewContext } from '../views.ts';
import { jsonTemplate } from '../templates.ts';
import { plainCard } from './markdown.ts';
import type { TeamsActivityPayload } from './transport.ts';

const DAY_MS = 86_400_000;

const decisionTitles: Record<DecisionKind, { title: string; submit: string }> = {
  approve: { title: 'Approve fix…', submit: 'Approve' },
  snooze: { title: 'Snooze…', submit: 'Snooze' },
  acceptRisk: { title: 'Accept risk…', submit: 'Accept risk' },
  markFalsePositive: { title: 'False positive…', submit: 'Mark false positive' },
  reassign: { title: 'Reassign…', submit: 'Reassign' },
};

const adaptive = (content: unknown) => ({ contentType: 'application/vnd.microsoft.card.adaptive', content });

export class TeamsRenderer {
  private readonly cardTemplate = jsonTemplate('teams', 'notification.card.json.hbs');
  private readonly replyTemplate = jsonTemplate('teams', 'reply.card.json.hbs');
  private readonly digestTemplate = jsonTemplate('teams', 'digest.card.json.hbs');
  private readonly alertTemplate = jsonTemplate('teams', 'alert.card.json.hbs');

  constructor(
    private readonly config: Config,
    private readonly people: PeopleDirectory,
    private readonly now: () => number = Date.now,
  ) {}

  private viewContext(): ViewContext {
    return {
      nowMs: this.now(),
      personName: (id) => this.people.person(id)?.name ?? id,
      snoozeChoices: (scope) => snoozeChoicesFor(this.config, scope),
    };
  }

  /** The card of a campaign's message, or of a digest: what an invoke is answered with. */
  card(model: ChatMessageModel | DigestModel, ctx: RenderContext = { inThread: false }): unknown {
    return plainCard(this.rawCard(model, ctx));
  }

  private rawCard(model: ChatMessageModel | DigestModel, ctx: RenderContext): unknown {
    if (isDigest(model))
      return this.digestTemplate({ ...buildDigestView(model, this.viewContext()), key: model.digest.key });
    const scope = model.notification.campaign.scope;
    const nowMs = this.now();
    const view = buildView(model, this.viewContext(), ctx);
    if (ctx.inThread) return this.replyTemplate({ ...view, key: model.notification.key });
    const maxRiskDays = Math.floor(decisionLimits(this.config, scope).maxRiskAcceptanceMs / DAY_MS);
    const decisions = view.decidable
      ? decisionKinds
          .filter((kind) => view.targets[kind].length > 0)
          .map((kind) => ({
            kind,
            ...decisionTitles[kind],
            ...(kind === 'approve' && view.waiting > 0 ? { title: `${view.approveLabel}…` } : {}),
            targets: view.targets[kind],
          }))
      : [];
    return this.cardTemplate({
      ...view,
      key: model.notification.key,
      decisions,
      firstSnoozeDays: view.snoozeChoices[0]?.days ?? 1,
      maxRiskDays,
      defaultExpiry: new Date(nowMs + Math.min(90, maxRiskDays) * DAY_MS).toISOString().slice(0, 10),
      maxExpiry: new Date(nowMs + maxRiskDays * DAY_MS).toISOString().slice(0, 10),
      people: this.people.assignable(scope).map((p) => ({ id: p.id, name: p.name })),
    });
  }

  /** The activity for whatever a stored message holds: a campaign's card, a digest or a scope alert. */
  activity(model: StoredModel, ctx: RenderContext = { inThread: false }): TeamsActivityPayload {
    if (isAlert(model))
      return {
        type: 'message',
        summary: model.title,
        attachments: [adaptive(plainCard(this.alertTemplate({ ...model, at: formatTime(model.at) })))],
      };
    if (isDigest(model))
      return { type: 'message', summary: model.digest.title, attachments: [adaptive(this.card(model))] };
    const view = buildView(model, this.viewContext(), ctx);
    return {
      type: 'message',
      summary: ctx.inThread ? view.replyTitle : view.summary,
      attachments: [adaptive(this.card(model, ctx))],
    };
  }
}
