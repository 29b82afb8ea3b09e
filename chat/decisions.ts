// The one decision API under the Slack bot, the Teams bot and the dashboard: approve a fix, snooze,
// accept a risk, mark a false positive, reassign — for a whole campaign or some of its exposures.
// Each decision is sent as the `decide` update of the campaign workflows holding the exposures
// (lifecycle/decide.ts), whose validator is the single place that decides whether
// it is well-formed, authorized for the scope and role, and allowed in the current state. Accepted
// decisions are recorded by the workflow; refused ones are recorded here, so every attempt is in the
// audit log. The chat layers only add what a form needs before sending (choices capped by the
// scope's limits, field-level messages).
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Config } from '../domain/config.ts';
import type { Actor, Decision, DecisionKind, ExposureState } from '../domain/exposure.ts';
import type { Pool } from '../runtime/pool.ts';
import { decideCampaign, decideExposures, recordRefusal } from '../lifecycle/decide.ts';
import { authorizationContext, authorizeDecision } from '../domain/authorization.ts';
import { MAX_DECISION_TEXT } from '../domain/decisionAdmission.ts';
import { campaignWorkflowId, exposureQuery } from '../contracts/campaign.ts';
import { campaignPlaces } from '../lifecycle/campaigns.ts';
import { lifecycleRulesFor } from '../lifecycle/settings.ts';
import { approvePatchUpdate, patchRolloutQuery, rejectPatchUpdate } from '../contracts/patch.ts';
import { PeopleDirectory } from './identity.ts';
import type { PatchDecisionKind, SnoozeChoice } from './messages.ts';

export type { SnoozeChoice };

type WithoutActor<D> = D extends unknown ? Omit<D, 'actor'> : never;
/** A decision as a form submits it; the actor comes from the verified chat identity. */
export type DecisionInput = WithoutActor<Decision>;

export type DecisionOutcome =
  { exposureId: string; ok: true; state: ExposureState } | { exposureId: string; ok: false; reason: string };

/** The answer to a patch plan's approval request, as the rollout workflow took it (or refused it). */
export type PatchDecisionOutcome =
  { ok: true; status: string; approved: boolean } | { ok: false; reason: string };

export interface DecisionLimits {
  maxSnoozeMs: number;
  maxRiskAcceptanceMs: number;
}

/** Field → message, for forms that can show errors beside the input (Slack modals). */
export type FormProblems = Partial<
  Record<'duration' | 'justification' | 'expires' | 'reason' | 'person', string>
>;

export type DecisionListener = (actor: Actor, input: DecisionInput, outcomes: DecisionOutcome[]) => void;
export type PatchDecisionListener = (
  actor: Actor,
  kind: PatchDecisionKind,
  outcome: PatchDecisionOutcome,
  exposureIds: string[],
  rolloutId: string,
) => void;

const DAY_MS = 86_400_000;
const snoozeCandidates = [1, 3, 7, 14, 30, 60, 90];

export interface DecisionApiDeps {
  client: Client;
  pool: Pool;
  config: Config;
  log: Logger;
  now?: () => number;
  /** Updates sent at once for a "decide for all" (keeps a decision on many exposures across many campaigns from flooding the server). */
  concurrency?: number;
}

/** The scope's snooze and risk-acceptance maximums (scopes[].lifecycle in ctem.yaml). */
export function decisionLimits(config: Config, scope: string): DecisionLimits {
  const rules = lifecycleRulesFor(config, scope);
  return { maxSnoozeMs: rules.maxSnoozeMs, maxRiskAcceptanceMs: rules.maxRiskAcceptanceMs };
}

/** The snooze durations a form offers: the usual ones up to the scope's maximum, and the maximum. */
export function snoozeChoicesFor(config: Config, scope: string): SnoozeChoice[] {
  const maxDays = Math.floor(decisionLimits(config, scope).maxSnoozeMs / DAY_MS);
  const days = snoozeCandidates.filter((d) => d <= maxDays);
  if (maxDays >= 1 && !days.includes(maxDays)) days.push(maxDays);
  if (days.length === 0) days.push(1);
  return days.map((d) => ({
    days: d,
    label: d === 1 ? '1 day' : d % 7 === 0 ? `${d / 7} week${d === 7 ? '' : 's'}` : `${d} days`,
  }));
}

export class DecisionApi {
  readonly people: PeopleDirectory;
  private readonly now: () => number;
  private readonly listeners: DecisionListener[] = [];

  constructor(private readonly deps: DecisionApiDeps) {
    this.people = new PeopleDirectory(deps.config);
    this.now = deps.now ?? Date.now;
  }

  get config(): Config {
    return this.deps.config;
  }

  /** Called after every decision attempt (chat messages refresh themselves from it). */
  onDecided(listener: DecisionListener): void {
    this.listeners.push(listener);
  }

  limits(scope: string): DecisionLimits {
    return decisionLimits(this.deps.config, scope);
  }

  snoozeChoices(scope: string): SnoozeChoice[] {
    return snoozeChoicesFor(this.deps.config, scope);
  }

  /** Snooze for whole days from now, never past the scope's maximum. */
  snoozeUntil(scope: string, days: number): string {
    const ms = Math.min(days * DAY_MS, this.limits(scope).maxSnoozeMs);
    return new Date(this.now() + ms).toISOString();
  }

  /**
   * A risk acceptance picked as a calendar date (YYYY-MM-DD) lasts to the end of that day (UTC). On
   * the last day the scope allows, the end of the day is cut to the maximum, so picking the last
   * allowed day is not refused for a few hours too many; a later day stays as picked (and refused).
   */
  expiryFromDate(scope: string, date: string): string | undefined {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return undefined;
    const start = Date.parse(`${date}T00:00:00Z`);
    if (Number.isNaN(start)) return undefined;
    const end = start + DAY_MS - 1000;
    const cap = this.now() + this.limits(scope).maxRiskAcceptanceMs - 60_000;
    const expires = start <= cap ? Math.min(end, cap) : end;
    return new Date(expires).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  /**
   * Problems a form can show beside its fields before it closes (Slack modals), in the workflow
   * validator's terms: required text present, dates in the future and within the scope's limits,
   * a person who exists. The campaign workflow's validator (domain/decisionAdmission.ts) still has the last word.
   */
  formProblems(scope: string, input: DecisionInput): FormProblems {
    const problems: FormProblems = {};
    const limits = this.limits(scope);
    const now = this.now();
    const days = (ms: number) => Math.floor(ms / DAY_MS);
    switch (input.kind) {
      case 'snooze': {
        const until = Date.parse(input.until);
        if (Number.isNaN(until) || until <= now) problems.duration = 'Choose how long to snooze.';
        else if (until - now > limits.maxSnoozeMs)
          problems.duration = `At most ${days(limits.maxSnoozeMs)} days in scope ${scope}.`;
        break;
      }
      case 'acceptRisk': {
        if (input.justification.trim() === '') problems.justification = 'Say why the risk is acceptable.';
        else if (input.justification.length > MAX_DECISION_TEXT)
          problems.justification = `At most ${MAX_DECISION_TEXT} characters; link a document for more.`;
        const expires = Date.parse(input.expires);
        if (Number.isNaN(expires)) problems.expires = 'Choose the date the acceptance ends.';
        else if (expires <= now) problems.expires = 'Choose a date in the future.';
        else if (expires - now > limits.maxRiskAcceptanceMs)
          problems.expires = `At most ${days(limits.maxRiskAcceptanceMs)} days from today in scope ${scope}.`;
        break;
      }
      case 'markFalsePositive':
        if (input.reason.trim() === '') problems.reason = 'Say why the finding is wrong.';
        else if (input.reason.length > MAX_DECISION_TEXT)
          problems.reason = `At most ${MAX_DECISION_TEXT} characters; link a document for more.`;
        break;
      case 'reassign':
        if (!this.people.person(input.to))
          problems.person = `Nobody with id "${input.to}" is listed in ctem.yaml.`;
        break;
      case 'approve':
        break;
    }
    return problems;
  }

  /**
   * Send one decision for these exposures: one update per campaign workflow holding them. Never
   * throws for a refusal; returns it (and records it).
   */
  async decide(actor: Actor, exposureIds: string[], input: DecisionInput): Promise<DecisionOutcome[]> {
    const decision = { ...input, actor } as Decision;
    const answers = await decideExposures(this.deps.client, this.deps.pool, exposureIds, decision, {
      concurrency: this.deps.concurrency ?? 8,
    });
    const outcomes: DecisionOutcome[] = [];
    for (const exposureId of exposureIds) {
      const a = answers.get(exposureId) ?? { ok: false as const, reason: 'no answer from its campaign' };
      if (a.ok) outcomes.push({ exposureId, ok: true, state: a.state });
      else {
        // Not answered in time is not a refusal: the campaign may still take it, and records it then.
        if (!a.unconfirmed) await recordRefusal(this.deps.pool, { exposureId, decision, reason: a.reason });
        outcomes.push({ exposureId, ok: false, reason: a.reason });
      }
    }
    this.tell(actor, input, outcomes);
    return outcomes;
  }

  /**
   * One decision for a whole campaign: applied to every exposure it is allowed for (approve: those
   * waiting for a decision). Refusals of named exposures are recorded; `reason` says why nothing was
   * applied, when nothing was.
   */
  async decideCampaign(
    actor: Actor,
    campaignId: string,
    input: DecisionInput,
  ): Promise<{ outcomes: DecisionOutcome[]; reason?: string }> {
    const decision = { ...input, actor } as Decision;
    const r = await decideCampaign(this.deps.client, this.deps.pool, campaignId, decision);
    const outcomes: DecisionOutcome[] = [
      ...r.applied.map((a) => ({ exposureId: a.exposureId, ok: true as const, state: a.state })),
      ...r.refused.map((f) => ({ exposureId: f.exposureId, ok: false as const, reason: f.reason })),
    ];
    for (const f of r.refused)
      await recordRefusal(this.deps.pool, { exposureId: f.exposureId, decision, reason: f.reason });
    // Not answered in time is not a refusal (DecisionApplied.unconfirmed): nothing to record.
    if (r.applied.length === 0 && r.reason && !r.unconfirmed) {
      const { rows } = await this.deps.pool.query<{ id: string }>(
        `select id from exposures where campaign_id = $1 and state not in ('resolved', 'false-positive', 'retired')`,
        [campaignId],
      );
      for (const { id } of rows)
        await recordRefusal(this.deps.pool, { exposureId: id, decision, reason: r.reason });
    }
    this.tell(actor, input, outcomes);
    return { outcomes, ...(r.reason ? { reason: r.reason } : {}) };
  }

  /**
   * The campaign's exposures still open (not resolved, false positive or retired): what a refusal
   * of a campaign-wide decision is recorded against when no workflow was asked.
   */
  async openExposuresOf(campaignId: string): Promise<string[]> {
    const { rows } = await this.deps.pool.query<{ id: string }>(
      `select id from exposures where campaign_id = $1 and state not in ('resolved', 'false-positive', 'retired') order by id`,
      [campaignId],
    );
    return rows.map((r) => r.id);
  }

  private tell(actor: Actor, input: DecisionInput, outcomes: DecisionOutcome[]): void {
    for (const l of this.listeners) {
      try {
        l(actor, input, outcomes);
      } catch (err) {
        this.deps.log.warn({ err }, 'decision listener failed');
      }
    }
  }

  /**
   * What the authorization rules need about each exposure (priority, assigned owner), from its
   * workflow: a message's snapshot can be behind the lifecycle. `fallback` answers for an exposure
   * whose workflow cannot be asked (closed, unreachable).
   */
  async subjects(
    exposureIds: string[],
    fallback: (id: string) => { priority: string; owner?: string },
  ): Promise<{ exposureId: string; priority: string; owner?: string }[]> {
    const places = await campaignPlaces(this.deps.pool, exposureIds);
    return await Promise.all(
      exposureIds.map(async (exposureId) => {
        const place = places.get(exposureId);
        try {
          if (!place) throw new Error('no campaign');
          const v = await this.deps.client.workflow
            .getHandle(campaignWorkflowId(place.campaignId, place.shard))
            .query(exposureQuery, exposureId);
          if (!v) throw new Error('not held');
          return { exposureId, priority: v.priority, ...(v.owner ? { owner: v.owner } : {}) };
        } catch {
          return { exposureId, ...fallback(exposureId) };
        }
      }),
    );
  }

  /**
   * Before a form is shown: would this person be refused for every exposure, whatever they type?
   * Judged with the same rules as the workflow (domain/authorization.ts) on the live ctem.yaml, so
   * nobody fills in a justification only to be told they may not accept risks. Refusals are
   * recorded; anything else is left to the workflow's validator when the form is submitted.
   */
  async precheck(
    actor: Actor,
    scope: string,
    kind: DecisionKind,
    subjects: { exposureId: string; priority: string; owner?: string }[],
  ): Promise<string | undefined> {
    const ctx = authorizationContext(this.deps.config, scope);
    const probe = { kind, actor } as Decision;
    const reasons = subjects.map((s) => {
      const auth = authorizeDecision(ctx, probe, {
        priority: s.priority,
        ...(s.owner ? { owner: s.owner } : {}),
      });
      return auth.ok ? undefined : auth.reason;
    });
    if (reasons.length === 0 || reasons.some((r) => r === undefined)) return undefined;
    for (const [i, s] of subjects.entries())
      await recordRefusal(this.deps.pool, { exposureId: s.exposureId, decision: probe, reason: reasons[i]! });
    return reasons[0];
  }

  /**
   * Approve or reject a patch plan: the rollout workflow's approvePatch / rejectPatch update, whose
   * validator checks that the plan is still waiting and that the person is one of the scope's
   * approvers (workflows/patch.ts). An accepted answer is recorded by the rollout on each exposure
   * it closes (patch-approved / patch-rejected); a refusal is recorded here, on the same exposures.
   */
  async decidePatch(
    actor: Actor,
    rolloutId: string,
    answer: { approved: boolean; comment?: string },
    exposureIds: string[],
  ): Promise<PatchDecisionOutcome> {
    const kind: PatchDecisionKind = answer.approved ? 'approvePatch' : 'rejectPatch';
    let outcome: PatchDecisionOutcome;
    try {
      const view = await this.deps.client.workflow
        .getHandle(rolloutId)
        .executeUpdate(answer.approved ? approvePatchUpdate : rejectPatchUpdate, {
          args: [{ actor, ...(answer.comment ? { comment: answer.comment } : {}) }],
        });
      outcome = { ok: true, status: view.status, approved: answer.approved };
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) outcome = { ok: false, reason: innermost(err) };
      else if (isNotFound(err))
        outcome = {
          ok: false,
          reason: `the patch rollout ${rolloutId} is no longer running (it finished or was stopped); nothing to ${answer.approved ? 'approve' : 'reject'}`,
        };
      else throw err;
    }
    this.notify(actor, kind, outcome, exposureIds, rolloutId);
    if (!outcome.ok) await this.recordPatchRefusal(actor, rolloutId, kind, outcome.reason, exposureIds);
    return outcome;
  }

  /**
   * Before a form is shown for a patch answer (the reject modal): refused whatever is typed? The
   * rollout says who may approve and whether it still waits; a refusal is recorded.
   */
  async precheckPatch(
    actor: Actor,
    rolloutId: string,
    kind: PatchDecisionKind,
    exposureIds: string[],
  ): Promise<string | undefined> {
    let reason: string | undefined;
    try {
      const view = await this.deps.client.workflow.getHandle(rolloutId).query(patchRolloutQuery);
      if (view.status !== 'awaiting-approval' || view.decision)
        reason = `the patch rollout ${rolloutId} is ${view.status}${view.decision ? ' and already decided' : ''}: nothing to approve now`;
      else if (!view.approvers.includes(actor.personId))
        reason = `${actor.personId} may not approve patches in scope ${view.scope}; approvers: ${view.approvers.join(', ') || 'none configured'}`;
    } catch {
      return undefined; // the update's validator judges it when the form is submitted
    }
    if (reason) await this.recordPatchRefusal(actor, rolloutId, kind, reason, exposureIds);
    return reason;
  }

  private async recordPatchRefusal(
    actor: Actor,
    rolloutId: string,
    kind: PatchDecisionKind,
    reason: string,
    exposureIds: string[],
  ): Promise<void> {
    if (exposureIds.length === 0) return;
    await this.deps.pool.query(
      `insert into events (exposure_id, type, actor, reason, data)
       select unnest($1::text[]), 'patch-decision-refused', $2, $3, $4`,
      [exposureIds, actor.personId, reason, JSON.stringify({ rolloutId, kind, actor })],
    );
  }

  private notify(
    actor: Actor,
    kind: PatchDecisionKind,
    outcome: PatchDecisionOutcome,
    exposureIds: string[],
    rolloutId: string,
  ): void {
    for (const l of this.patchListeners) {
      try {
        l(actor, kind, outcome, exposureIds, rolloutId);
      } catch (err) {
        this.deps.log.warn({ err }, 'patch decision listener failed');
      }
    }
  }

  private readonly patchListeners: PatchDecisionListener[] = [];

  /** Called after every patch answer (chat messages other than the clicked one refresh from it). */
  onPatchDecided(listener: PatchDecisionListener): void {
    this.patchListeners.push(listener);
  }

  /**
   * A chat account that is not a person in ctem.yaml clicked a decision: refused before any workflow
   * sees it, and recorded against each exposure it tried to decide.
   */
  async refuseUnknownAccount(
    via: Actor['via'],
    accountId: string,
    exposureIds: string[],
    kind: DecisionKind | PatchDecisionKind,
    /** For a patch answer: the rollout it was about. */
    rolloutId?: string,
  ): Promise<string> {
    const reason = `your ${via === 'teams' ? 'Teams' : via === 'slack' ? 'Slack' : via} account (${accountId}) is not linked to a person in ctem.yaml (people[].${via === 'teams' ? 'teams' : 'slack'}); ask a CTEM administrator to add it`;
    const actor: Actor = { personId: `${via}:${accountId}`, via };
    if (kind === 'approvePatch' || kind === 'rejectPatch') {
      await this.recordPatchRefusal(actor, rolloutId ?? '', kind, reason, exposureIds);
      this.notify(actor, kind, { ok: false, reason }, exposureIds, rolloutId ?? '');
      return reason;
    }
    for (const exposureId of exposureIds)
      await recordRefusal(this.deps.pool, {
        exposureId,
        decision: { kind, actor } as Decision,
        reason,
      });
    this.tell(
      actor,
      { kind } as DecisionInput,
      exposureIds.map((exposureId) => ({ exposureId, ok: false, reason })),
    );
    return reason;
  }
}

/** The innermost message of a failure chain: the validator's own sentence. */
function innermost(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

function isNotFound(err: unknown): boolean {
  if (err instanceof WorkflowNotFoundError) return true;
  const code = (err as { code?: unknown }).code;
  return (
    code === 5 ||
    /workflow execution already completed|not found/i.test(err instanceof Error ? err.message : '')
  );
}
