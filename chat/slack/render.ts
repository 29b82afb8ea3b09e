// Block Kit for the Slack bot, from templates/slack: the unit's message and the decision modal.
import type { Config } from '../../domain/config.ts';
import type { DecisionKind } from '../../domain/exposure.ts';
import { decisionLimits, snoozeChoicesFor } from '../decisions.ts';
import type { PeopleDirectory } from '../identity.ts';
import { buildView, formatTime, isAlert, type AlertModel, type ChatMessageModel } from '../messages.ts';
import { jsonTemplate } from '../templates.ts';
import type { SlackPayload } from './transport.ts';

/** What a modal carries back in private_metadata (max 3000 chars): where it came from and for what. */
export interface ModalOrigin {
  /** "<channel>/<ts>" of the message. */
  m: string;
  /** Exposure ref, or "all". */
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
  private readonly modalTemplate = jsonTemplate('slack', 'decision-modal.json.hbs');
  private readonly alertTemplate = jsonTemplate('slack', 'alert.json.hbs');
  private readonly patchRejectTemplate = jsonTemplate('slack', 'patch-reject-modal.json.hbs');

  constructor(
    private readonly config: Config,
    private readonly people: PeopleDirectory,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whatever a stored message holds: a unit's message or a scope alert. */
  render(model: ChatMessageModel | AlertModel): SlackPayload {
    return isAlert(model) ? this.alert(model) : this.message(model);
  }

  alert(model: AlertModel): SlackPayload {
    return this.alertTemplate({ ...model, at: formatTime(model.at) }) as SlackPayload;
  }

  message(model: ChatMessageModel): SlackPayload {
    const view = buildView(model, {
      nowMs: this.now(),
      personName: (id) => this.people.person(id)?.name ?? id,
      snoozeChoices: snoozeChoicesFor(this.config, model.notification.campaign.scope),
    });
    return this.messageTemplate(view) as SlackPayload;
  }

  modal(model: ChatMessageModel, origin: ModalOrigin, targetText: string): unknown {
    const scope = model.notification.campaign.scope;
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
