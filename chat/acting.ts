// A decision taken from a chat message, the same for Slack and Teams: for the whole campaign (the
// campaign's buttons, a daily queue's bulk actions: DecisionApi.decideCampaign) or for some listed
// exposures as an exception (DecisionApi.decide), then every message showing the campaign updated
// in place with who acted. Refusals are recorded by the decision API; the bots show them to the
// person who clicked.
import type { Person } from '../domain/config.ts';
import type { DecisionApi, DecisionInput, DecisionOutcome } from './decisions.ts';
import type { ChatDelivery, UpdatedMessage } from './delivery.ts';
import { describeDecision } from './messages.ts';

/** What a click decides on: the whole campaign, or some of its exposures. */
export interface DecisionTarget {
  campaignId: string;
  /** Absent: every exposure of the campaign the decision applies to. */
  exposureIds?: string[];
}

export interface ChatDecisionResult {
  applied: Extract<DecisionOutcome, { ok: true }>[];
  refused: Extract<DecisionOutcome, { ok: false }>[];
  /** Why nothing at all was applied to the campaign, when nothing was. */
  reason?: string;
  /** The copies updated in place (with their models when asked). */
  updated: UpdatedMessage[];
}

export interface ChatDecisionDeps {
  decisions: DecisionApi;
  delivery: ChatDelivery;
  now: () => number;
}

export async function decideFromChat(
  deps: ChatDecisionDeps,
  who: { person: Person; via: 'slack' | 'teams' },
  target: DecisionTarget,
  input: DecisionInput,
  opts: { withModels?: boolean } = {},
): Promise<ChatDecisionResult> {
  const actor = { personId: who.person.id, via: who.via };
  let outcomes: DecisionOutcome[];
  let reason: string | undefined;
  if (target.exposureIds) outcomes = await deps.decisions.decide(actor, target.exposureIds, input);
  else ({ outcomes, reason } = await deps.decisions.decideCampaign(actor, target.campaignId, input));
  const applied = outcomes.filter((o): o is Extract<DecisionOutcome, { ok: true }> => o.ok);
  const refused = outcomes.filter((o): o is Extract<DecisionOutcome, { ok: false }> => !o.ok);
  const updated =
    applied.length > 0
      ? await deps.delivery.recordCampaignDecision(
          target.campaignId,
          {
            personId: who.person.id,
            name: who.person.name,
            kind: input.kind,
            exposureIds: applied.map((o) => o.exposureId),
            at: new Date(deps.now()).toISOString(),
            detail: describeDecision(input, (id) => deps.decisions.people.person(id)?.name ?? id),
            via: who.via === 'slack' ? 'Slack' : 'Teams',
            campaignId: target.campaignId,
          },
          opts.withModels ?? false,
        )
      : [];
  return { applied, refused, ...(reason && applied.length === 0 ? { reason } : {}), updated };
}

/**
 * What was not done, in one sentence for the person who clicked, or undefined when everything
 * was: "Not done for 2 of 5: <reason> (2 exposures)".
 */
export function refusalText(r: ChatDecisionResult, asked: number): string | undefined {
  if (r.applied.length === 0 && r.refused.length === 0)
    return r.reason ? `Not done: ${r.reason}.` : undefined;
  if (r.refused.length === 0) return undefined;
  const byReason = new Map<string, string[]>();
  for (const f of r.refused) byReason.set(f.reason, [...(byReason.get(f.reason) ?? []), f.exposureId]);
  const total = r.applied.length + r.refused.length;
  const lines = [...byReason].map(([reason, ids]) =>
    byReason.size === 1 && (ids.length === total || asked === 1)
      ? reason
      : `${reason} (${ids.length === 1 ? ids[0] : `${ids.length} exposures`})`,
  );
  return `Not done${r.applied.length ? ` for ${r.refused.length} of ${total}` : ''}: ${lines.join('; ')}.`;
}
