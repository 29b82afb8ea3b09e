// Adaptive Cards for the Teams bot, from templates/teams: the unit's card with Action.Execute verbs.
import type { Config } from '../../domain/config.ts';
import { decisionLimits, snoozeChoicesFor } from '../decisions.ts';
import type { PeopleDirectory } from '../identity.ts';
import { buildView, formatTime, isAlert, type AlertModel, type ChatMessageModel } from '../messages.ts';
import { jsonTemplate } from '../templates.ts';
import type { TeamsActivityPayload } from './transport.ts';

const DAY_MS = 86_400_000;

export class TeamsRenderer {
  private readonly cardTemplate = jsonTemplate('teams', 'notification.card.json.hbs');
  private readonly alertTemplate = jsonTemplate('teams', 'alert.card.json.hbs');

  constructor(
    private readonly config: Config,
    private readonly people: PeopleDirectory,
    private readonly now: () => number = Date.now,
  ) {}

  card(model: ChatMessageModel): unknown {
    const scope = model.notification.campaign.scope;
    const nowMs = this.now();
    const snoozeChoices = snoozeChoicesFor(this.config, scope);
    const view = buildView(model, {
      nowMs,
      personName: (id) => this.people.person(id)?.name ?? id,
      snoozeChoices,
    });
    const maxRiskDays = Math.floor(decisionLimits(this.config, scope).maxRiskAcceptanceMs / DAY_MS);
    return this.cardTemplate({
      ...view,
      key: model.notification.key,
      firstSnoozeDays: snoozeChoices[0]?.days ?? 1,
      maxRiskDays,
      defaultExpiry: new Date(nowMs + Math.min(90, maxRiskDays) * DAY_MS).toISOString().slice(0, 10),
      maxExpiry: new Date(nowMs + maxRiskDays * DAY_MS).toISOString().slice(0, 10),
      people: this.people.assignable(scope).map((p) => ({ id: p.id, name: p.name })),
    });
  }

  /** The activity for whatever a stored message holds: a unit's card or a scope alert. */
  activity(model: ChatMessageModel | AlertModel): TeamsActivityPayload {
    if (isAlert(model))
      return {
        type: 'message',
        summary: model.title,
        attachments: [
          {
            contentType: 'application/vnd.microsoft.card.adaptive',
            content: this.alertTemplate({ ...model, at: formatTime(model.at) }),
          },
        ],
      };
    const view = buildView(model, { nowMs: this.now(), personName: (id) => id, snoozeChoices: [] });
    return {
      type: 'message',
      summary: view.summary,
      attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', content: this.card(model) }],
    };
  }
}
