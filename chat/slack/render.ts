// Block Kit for the Slack bot, from templates/slack: a campaign's message (or a reply in its
// thread), a digest about many campaigns, a scope alert, and the decision modals.
import type { Config } from '../../domain/config.ts';
import type { DecisionKind } from '../../domain/exposure.ts';
import { decisionLimits, snoozeChoicesFor } from '../decisions.ts';
import type { PeopleDirectory } from '../identity.ts';
import {
  formatTime,
  isAlert,
  isDigest,
  type AlertModel,
  type ChatMessageModel,
  type DigestModel,
  type RenderContext,
  type StoredModel,
} from '../messages.ts';
import { buildDigestView, buildView, type ViewContext } from '../views.ts';
import { jsonTemplate } from '../templates.ts';
import type { SlackPayload } from './transport.ts';

/** What a modal carries back in private_metadata (max 3000 chars): where it came from and for what. */
export interface ModalOrigin {
  /** "<channel>/<ts>" of the message. */
  m: string;
  /** Exposure ref, or "all" (the whole campaign). */
  t: string;
  k: Exclude<DecisionKind, 'approve'>;
  /** The scope, so the submission's fields are checked against its limits before the ack. */
  s: string;
}

/** What the "Reject patch…" modal carries back: the message and the rollout. */
export interface PatchModalOrigin {
  /** "<channel>/<ts>" of the message. */
  m: string;
  /** The rollout (workflow id). */
  r: string;
}

const modalTitles: Record<ModalOrigin['k'], { title: string; submit: string }> = {
  snooze: { title: 'Snooze', submit: 'Snooze' },
  acceptRisk: { title: 'Accept risk', submit: 'Accept risk' },
  markFalsePositive: { title: 'False positive', submit: 'Mark false positive' },
  reassign: { title: 'Reassign', submit: 'Reassign' },
};

export class SlackRenderer {
  private readonly messageTemplate = jsonTemplate('slack', 'notification.json.hbs');
  private readonly replyTemplate = jsonTemplate('slack', 'reply.json.hbs');
  private readonly digestTemplate = jsonTemplate('slack', 'digest.json.hbs');
  private readonly modalTemplate = jsonTemplate('slack', 'decision-modal.json.hbs');
  private readonly alertTemplate = jsonTemplate('slack', 'alert.json.hbs');
  private readonly patchRejectTemplate = jsonTemplate('slack', 'patch-reject-modal.json.hbs');

  constructor(
    private readonly config: Config,
    private readonly people: PeopleDirectory,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whatever a stored message holds: a campaign's message, a digest or a scope alert. */
  render(model: StoredModel, ctx: RenderContext = { inThread: false }): SlackPayload {
    if (isAlert(model)) return this.alert(model);
    if (isDigest(model)) return this.digest(model);
    return this.message(model, ctx);
  }

  alert(model: AlertModel): SlackPayload {
    return this.alertTemplate({ ...model, at: formatTime(model.at) }) as SlackPayload;
  }

  private viewContext(): ViewContext {
    return {
      nowMs: this.now(),
      personName: (id) => this.people.person(id)?.name ?? id,
      snoozeChoices: (scope) => snoozeChoicesFor(this.config, scope),
    };
  }

  message(model: ChatMessageModel, ctx: RenderContext = { inThread: false }): SlackPayload {
    const view = buildView(model, this.viewContext(), ctx);
    return (ctx.inThread ? this.replyTemplate(view) : this.messageTemplate(view)) as SlackPayload;
  }

  digest(model: DigestModel): SlackPayload {
    return this.digestTemplate(buildDigestView(model, this.viewContext())) as SlackPayload;
  }

  modal(scope: string, origin: ModalOrigin, targetText: string): unknown {
    const limits = decisionLimits(this.config, scope);
    const maxRiskDays = Math.floor(limits.maxRiskAcceptanceMs / 86_400_000);
    const defaultDays = Math.min(90, maxRiskDays);
    return this.modalTemplate({
      kind: origin.k,
      ...modalTitles[origin.k],
      privateMetadata: JSON.stringify(origin),
      target: targetText,
      snoozeChoices: snoozeChoicesFor(this.config, scope),
      maxRiskDays,
      defaultExpiry: new Date(this.now() + defaultDays * 86_400_000).toISOString().slice(0, 10),
      people: this.people.assignable(scope).map((p) => ({ id: p.id, name: p.name })),
    });
  }

  /** The "Reject patch…" modal: a reason for the rollout's rejection. */
  patchRejectModal(origin: PatchModalOrigin, targetText: string): unknown {
    return this.patchRejectTemplate({ privateMetadata: JSON.stringify(origin), target: targetText });
  }
}
