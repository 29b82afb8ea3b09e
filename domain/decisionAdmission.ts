// Whether a decision is admitted: well-formed, by someone authorized, in a state that allows it.
// Pure and deterministic: it runs in the update validators (on workflow time) and in tests.
import { authorizeDecision, notAssignable, type AuthorizationContext } from './authorization.ts';
import type { Decision, DecisionKind, ExposureState } from './exposure.ts';
import type { LifecycleRules } from './sla.ts';

/** States from which each decision may be taken. Terminal states admit none. */
export const admittedIn: Record<DecisionKind, readonly ExposureState[]> = {
  approve: ['triaged', 'validated', 'awaiting-decision', 'snoozed', 'reopened'],
  snooze: ['triaged', 'validated', 'awaiting-decision', 'snoozed', 'reopened'],
  acceptRisk: [
    'triaged',
    'validated',
    'awaiting-decision',
    'snoozed',
    'reopened',
    'remediating',
    'risk-accepted',
  ],
  markFalsePositive: [
    'open',
    'triaged',
    'validated',
    'awaiting-decision',
    'snoozed',
    'reopened',
    'remediating',
    'verifying',
    'risk-accepted',
  ],
  reassign: [
    'open',
    'triaged',
    'validated',
    'awaiting-decision',
    'snoozed',
    'reopened',
    'remediating',
    'verifying',
    'risk-accepted',
  ],
};

export interface AdmissionSubject {
  state: ExposureState;
  priority: string;
  owner?: string;
}

const DAY_MS = 86_400_000;

function days(ms: number): string {
  const d = ms / DAY_MS;
  return Number.isInteger(d) ? `${d} days` : `${Math.round(ms / 1000)} s`;
}

function futureTime(
  text: string,
  field: string,
  nowMs: number,
  maxMs: number,
  limit: string,
): string | undefined {
  const ms = Date.parse(text);
  if (Number.isNaN(ms))
    return `${field} "${text}" is not a date; give an ISO date such as 2026-09-30T00:00:00Z`;
  if (ms <= nowMs) return `${field} ${text} is in the past; give a future date`;
  if (ms - nowMs > maxMs)
    return `${field} ${text} is beyond the scope's ${limit} of ${days(maxMs)}; choose an earlier date`;
  return undefined;
}

/**
 * The longest text a decision may carry (a comment, a reason, a justification). A campaign workflow
 * keeps a risk acceptance's justification in each exposure it covers and carries them all across
 * continue-as-new, within Temporal's payload limit: a few paragraphs fit, a pasted document does not
 * (it belongs in the ticket, linked from the justification).
 */
export const MAX_DECISION_TEXT = 1_000;

const TEXT_FIELDS = ['comment', 'reason', 'justification'] as const;

/** Why the decision is refused, or undefined when it is admitted. */
export function refusal(
  decision: Decision,
  subject: AdmissionSubject,
  ctx: AuthorizationContext,
  rules: LifecycleRules,
  nowMs: number,
): string | undefined {
  const actor: unknown = decision.actor;
  if (!actor || typeof actor !== 'object' || typeof (actor as { personId?: unknown }).personId !== 'string')
    return 'the decision names no actor; give actor.personId';
  for (const field of TEXT_FIELDS) {
    const text: unknown = (decision as Record<string, unknown>)[field];
    if (text === undefined) continue;
    if (typeof text !== 'string') return `${field} must be text`;
    if (text.length > MAX_DECISION_TEXT)
      return `the ${field} is ${text.length} characters long; at most ${MAX_DECISION_TEXT} are kept with a decision (put the rest in the ticket and link it)`;
  }
  switch (decision.kind) {
    case 'approve':
      break;
    case 'snooze': {
      const bad = futureTime(decision.until, 'until', nowMs, rules.maxSnoozeMs, 'maximum snooze');
      if (bad) return bad;
      break;
    }
    case 'acceptRisk': {
      if (typeof decision.justification !== 'string' || decision.justification.trim() === '')
        return 'accepting a risk needs a justification; say why the risk is acceptable';
      const bad = futureTime(
        decision.expires,
        'expires',
        nowMs,
        rules.maxRiskAcceptanceMs,
        'maximum risk acceptance',
      );
      if (bad) return bad;
      break;
    }
    case 'markFalsePositive':
      if (typeof decision.reason !== 'string' || decision.reason.trim() === '')
        return 'marking a false positive needs a reason; say why the finding is wrong';
      break;
    case 'reassign':
      if (typeof decision.to !== 'string' || !ctx.people.includes(decision.to))
        return `cannot reassign to "${String(decision.to)}": not a person in ctem.yaml`;
      if (decision.to === subject.owner) return `${decision.to} already owns this exposure`;
      {
        const why = notAssignable(ctx, decision.to);
        if (why) return `cannot reassign to ${decision.to}: ${why}`;
      }
      break;
    default:
      return `unknown decision "${(decision as { kind: string }).kind}"`;
  }
  const auth = authorizeDecision(ctx, decision, subject);
  if (!auth.ok) return auth.reason;
  if (!admittedIn[decision.kind].includes(subject.state))
    return `the exposure is ${subject.state}; ${decision.kind} is allowed only when it is ${admittedIn[decision.kind].join(', ')}`;
  return undefined;
}
