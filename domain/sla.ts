// SLA clocks and the escalation ladder. Pure and deterministic (times are numbers in ms and `now` is
// an input), so the campaign workflow runs them on workflow time and tests run them on any clock.

/** Who a ladder step reaches. The notify activity resolves each audience from ctem.yaml. */
export const escalationAudiences = [
  'owner',
  'channel',
  'manager',
  'approver',
  'securityLead',
  'ciso',
] as const;
export type EscalationAudience = (typeof escalationAudiences)[number];

/**
 * One rung of the ladder. `fraction` places it inside the SLA window (0.5 = half-way from first seen
 * to the deadline), `afterDueMs` after the deadline (a grace period). Exactly one of them is set.
 */
export interface EscalationStep {
  fraction?: number;
  afterDueMs?: number;
  notify: EscalationAudience[];
}

/** The lifecycle rules of one scope, resolved to numbers so the workflow needs no parsing. */
export interface LifecycleRules {
  /** Ordered by time; index = escalation level (0 = first rung). */
  ladder: EscalationStep[];
  maxSnoozeMs: number;
  maxRiskAcceptanceMs: number;
  /** How long before a risk acceptance ends its owner is reminded. */
  riskExpiryReminderMs: number;
  /** How long after the fix a re-scan has to prove it before "fix not verified" escalates. */
  verifyWithinMs: number;
  /** Development scopes: approve automatically once triaged (recorded as the system's decision). */
  autoApprove: boolean;
  /**
   * The scope's stricter SLA windows per priority label ("Act" → ms from first seen): a re-scored
   * deadline is capped by them too. A scope may be stricter than its policy, never looser.
   */
  slaCapMs: Record<string, number>;
}

/** The built-in ladder: remind the owner at 50 %, team channel and manager at 100 %, CISO 3 days later. */
export const defaultLadder: EscalationStep[] = [
  { fraction: 0.5, notify: ['owner'] },
  { fraction: 1, notify: ['owner', 'channel', 'manager'] },
  { afterDueMs: 3 * 86_400_000, notify: ['ciso'] },
];

export const defaultLifecycleRules: LifecycleRules = {
  ladder: defaultLadder,
  maxSnoozeMs: 30 * 86_400_000,
  maxRiskAcceptanceMs: 180 * 86_400_000,
  riskExpiryReminderMs: 14 * 86_400_000,
  verifyWithinMs: 3 * 86_400_000,
  autoApprove: false,
  slaCapMs: {},
};

/** A deadline capped by the scope's window for its priority, if the scope has a stricter one. */
export function cappedDeadline(
  rules: Pick<LifecycleRules, 'slaCapMs'>,
  priority: string,
  startMs: number,
  dueMs: number,
): number {
  const cap = rules.slaCapMs[priority];
  return cap === undefined ? dueMs : Math.min(dueMs, startMs + cap);
}

/**
 * An SLA clock: the window from `startMs` (first seen) to `dueMs` as the policy decided it, shifted
 * by the time spent paused (snoozed, risk accepted). While paused, `pausedSinceMs` is set.
 */
export interface SlaClock {
  startMs: number;
  dueMs: number;
  pausedMs: number;
  pausedSinceMs?: number;
}

export function startClock(startMs: number, dueMs: number): SlaClock {
  return { startMs, dueMs, pausedMs: 0 };
}

export function pauseClock(clock: SlaClock, nowMs: number): SlaClock {
  return clock.pausedSinceMs !== undefined ? clock : { ...clock, pausedSinceMs: nowMs };
}

export function resumeClock(clock: SlaClock, nowMs: number): SlaClock {
  if (clock.pausedSinceMs === undefined) return clock;
  return {
    startMs: clock.startMs,
    dueMs: clock.dueMs,
    pausedMs: clock.pausedMs + Math.max(0, nowMs - clock.pausedSinceMs),
  };
}

/** A re-score moves the deadline; time already spent paused still counts in the owner's favour. */
export function rescoreClock(clock: SlaClock, dueMs: number): SlaClock {
  return { ...clock, dueMs };
}

/** The deadline the owner works to: the policy's deadline plus every pause so far (and the current one). */
export function effectiveDue(clock: SlaClock, nowMs: number): number {
  const current = clock.pausedSinceMs !== undefined ? Math.max(0, nowMs - clock.pausedSinceMs) : 0;
  return clock.dueMs + clock.pausedMs + current;
}

/** When a ladder step fires on this clock (ignoring a pause in progress: nothing fires while paused). */
export function stepTime(step: EscalationStep, clock: SlaClock): number {
  const shift = clock.pausedMs;
  if (step.afterDueMs !== undefined) return clock.dueMs + shift + step.afterDueMs;
  const window = Math.max(0, clock.dueMs - clock.startMs);
  return clock.startMs + shift + Math.round(window * (step.fraction ?? 1));
}

/** A step at or after the deadline is a breach of the SLA. */
export function isBreach(step: EscalationStep): boolean {
  return step.afterDueMs !== undefined || (step.fraction ?? 1) >= 1;
}

export interface NextEscalation {
  level: number;
  atMs: number;
  step: EscalationStep;
}

/**
 * The next step to wait for after `firedLevel` (-1 = none fired yet), or undefined when the ladder is
 * exhausted or the clock is paused.
 */
export function nextEscalation(
  ladder: readonly EscalationStep[],
  clock: SlaClock,
  firedLevel: number,
): NextEscalation | undefined {
  if (clock.pausedSinceMs !== undefined) return undefined;
  const level = firedLevel + 1;
  const step = ladder[level];
  if (!step) return undefined;
  return { level, atMs: stepTime(step, clock), step };
}

/**
 * Which level is due now. When several steps are overdue at once (a re-score pulled the deadline in,
 * or a pause ended after the deadline), only the highest fires: one message at the right level, not
 * a burst of every rung below it. Undefined when nothing is due.
 */
export function dueEscalation(
  ladder: readonly EscalationStep[],
  clock: SlaClock,
  firedLevel: number,
  nowMs: number,
): NextEscalation | undefined {
  if (clock.pausedSinceMs !== undefined) return undefined;
  let due: NextEscalation | undefined;
  for (let level = firedLevel + 1; level < ladder.length; level++) {
    const step = ladder[level]!;
    const atMs = stepTime(step, clock);
    if (atMs > nowMs) break;
    due = { level, atMs, step };
  }
  return due;
}

/**
 * After the deadline moved (re-score), steps already fired whose new time is still ahead are armed
 * again: a reminder at 50 % of a longer window is worth sending again when that point comes.
 */
export function firedLevelAfterRescore(
  ladder: readonly EscalationStep[],
  clock: SlaClock,
  firedLevel: number,
  nowMs: number,
): number {
  let level = firedLevel;
  while (level >= 0 && stepTime(ladder[level]!, clock) > nowMs) level--;
  return level;
}
