// Who may take which decision on an exposure. Pure: the campaign workflow's update validator runs it
// on a snapshot of the scope's roles, and the decision API runs it on the live ctem.yaml before
// sending, so a refusal is the same sentence wherever it is decided.
import type { Config, RoleName } from './config.ts';
import type { Decision, DecisionKind } from './exposure.ts';

/** The part of ctem.yaml a decision is judged against: the people and the scope's roles. */
export interface AuthorizationContext {
  scope: string;
  /** Every person id in ctem.yaml. */
  people: string[];
  roles: Record<RoleName, string[]>;
}

/** What the rules need to know about the exposure. */
export interface DecisionSubject {
  /** SSVC outcome label: "Act", "Attend", "Track*", "Track". */
  priority: string;
  /** The person currently assigned; being assigned grants nothing beyond the roles they hold. */
  owner?: string;
}

export type Authorization = { ok: true; as: RoleName } | { ok: false; reason: string };

/** Roles that may take each decision, in the order they are reported. */
const mayDecide: Record<DecisionKind, readonly RoleName[]> = {
  approve: ['owner', 'approver', 'securityLead', 'ciso'],
  snooze: ['owner', 'approver', 'securityLead', 'ciso'],
  markFalsePositive: ['owner', 'approver', 'securityLead', 'ciso'],
  reassign: ['owner', 'approver', 'securityLead', 'ciso'],
  // Accepting a risk is a management call, never the fixer's own.
  acceptRisk: ['approver', 'securityLead', 'ciso'],
};

/** Accepting the risk of an exposure the policy says to act on needs security leadership. */
const acceptRiskOnAct: readonly RoleName[] = ['securityLead', 'ciso'];

export function authorizationContext(config: Config, scopeName: string): AuthorizationContext {
  const scope = config.scopes.find((s) => s.name === scopeName);
  return {
    scope: scopeName,
    people: config.people.map((p) => p.id),
    roles: {
      owner: [...(scope?.roles.owner ?? [])],
      approver: [...(scope?.roles.approver ?? [])],
      securityLead: [...(scope?.roles.securityLead ?? [])],
      ciso: [...(scope?.roles.ciso ?? [])],
    },
  };
}

/**
 * The roles a person holds in the scope. Being the exposure's assignee adds none: decision rights come
 * from ctem.yaml's roles only, so a reassign cannot hand them out.
 */
export function rolesOf(ctx: AuthorizationContext, personId: string): RoleName[] {
  return (Object.keys(ctx.roles) as RoleName[]).filter((role) => ctx.roles[role].includes(personId));
}

/** Why a person cannot be assigned exposures of the scope (holds no role there), or undefined. */
export function notAssignable(ctx: AuthorizationContext, personId: string): string | undefined {
  if (rolesOf(ctx, personId).length > 0) return undefined;
  return `${personId} holds no role in scope ${ctx.scope}; the assignee must be ${Object.values(roleWords)
    .join(', ')
    .replace(/, ([^,]*)$/, ' or $1')} there`;
}

export function authorizeDecision(
  ctx: AuthorizationContext,
  decision: Decision,
  subject: DecisionSubject,
): Authorization {
  const person = decision.actor.personId;
  if (!ctx.people.includes(person))
    return { ok: false, reason: `unknown person "${person}": only people listed in ctem.yaml may decide` };
  const allowed =
    decision.kind === 'acceptRisk' && subject.priority === 'Act' ? acceptRiskOnAct : mayDecide[decision.kind];
  const held = rolesOf(ctx, person);
  const as = allowed.find((role) => held.includes(role));
  if (as) return { ok: true, as };
  const roles = held.length ? `holds ${held.join(', ')}` : 'holds no role';
  const what =
    decision.kind === 'acceptRisk' && subject.priority === 'Act'
      ? 'accepting the risk of an Act exposure'
      : `${decisionVerb[decision.kind]}`;
  return {
    ok: false,
    reason: `${person} ${roles} in scope ${ctx.scope}; ${what} needs ${allowed.map((r) => roleWords[r]).join(' or ')}`,
  };
}

const decisionVerb: Record<DecisionKind, string> = {
  approve: 'approving a fix',
  snooze: 'snoozing',
  acceptRisk: 'accepting a risk',
  markFalsePositive: 'marking a false positive',
  reassign: 'reassigning',
};

const roleWords: Record<RoleName, string> = {
  owner: 'an owner',
  approver: 'an approver',
  securityLead: 'a security lead',
  ciso: 'the CISO',
};
