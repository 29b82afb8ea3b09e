// One workflow per exposure (asset × weakness), from triage to a fix proven by a re-scan.
//
//   open ─► triaged ─► validated ─► awaiting-decision ─► remediating ─► verifying ─► resolved
//                                     ├─► snoozed(until) ─────► awaiting-decision
//                                     ├─► risk-accepted(until) ► reopened ─► awaiting-decision
//                                     └─► false-positive
//   resolved / closed + seen again ─► reopened (a new run, started by the dispatcher)
//
// Decisions arrive as validated updates; scans, re-scores and ticket changes as signals, queued and
// handled by the main loop in order. Every transition is recorded in PostgreSQL through an
// idempotent activity (key = exposure × lifecycle × sequence number). The SLA clock and escalation
// ladder run on workflow time and pause while snoozed or risk-accepted.
//
// Versioning: this code is replayed against recorded histories (test/lifecycle/replay.test.ts). A
// change that alters the commands an existing history produced (a new or removed activity, timer
// or child, a different order) must be guarded: `if (patched('<id>')) new() else old()`; once no
// run started before the change is left, switch to `deprecatePatch('<id>')`, and later remove both.
// See `escalation-ticket-comment` below. A change on the hot path (every decision, every start)
// is gated on the lifecycle revision the run was started with instead (input.ts,
// LIFECYCLE_REVISION): no marker and no search-attribute update in every history; running
// lifecycles keep their revision across continue-as-new. Changing only an activity's arguments or
// options, or a query, needs no guard.
import {
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  ParentClosePolicy,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  startChild,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import type { LifecycleActivities } from '../../activities/lifecycle.ts';
import type { ExposureRow, LifecycleRecord, NotifyOutcome, PatchOutcome } from '../../contracts/lifecycle.ts';
import type { Decision, ExposureState } from '../../domain/exposure.ts';
import { terminalStates } from '../../domain/exposure.ts';
import {
  awaitingDecisionReason,
  decisionWhy,
  reopenedReason,
  validatedReason,
} from '../../domain/exposureAdmission.ts';
import {
  cappedDeadline,
  dueEscalation,
  effectiveDue,
  firedLevelAfterRescore,
  isBreach,
  nextEscalation,
  pauseClock,
  rescoreClock,
  resumeClock,
  startClock,
  type EscalationAudience,
} from '../../domain/sla.ts';
import type { NotificationKind } from '../../domain/ports.ts';
import { patchRollout } from '../patch.ts';
import { refusal } from '../../domain/decisionAdmission.ts';
import type { CarriedState, ExposureWorkflowInput, InboxItem } from '../../contracts/exposureInput.ts';
import {
  absentSignal,
  acceptRiskUpdate,
  approveUpdate,
  exposureStateQuery,
  markFalsePositiveUpdate,
  observedSignal,
  patchRolloutFinishedSignal,
  reassignUpdate,
  rescoredSignal,
  snoozeUpdate,
  ticketChangedSignal,
  type DecisionResult,
  type ExposureView,
} from '../../contracts/exposure.ts';

// Hot path of a fan-out: recording and the unit-level decision request run as local activities, in
// the workflow task that started the workflow, and their writes are batched across workflows.
const local = proxyLocalActivities<
  Pick<LifecycleActivities, 'recordLifecycle' | 'notifyAudience' | 'moveToOwner' | 'remediationRoute'>
>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', backoffCoefficient: 2 },
});

/** Heartbeat timeout of the activities that call outside systems (they heartbeat while waiting). */
const DEFAULT_HEARTBEAT_MS = 60_000;

/** States whose SLA clock runs (escalations fire); snoozed and risk-accepted pause it. */
const clockRuns: readonly ExposureState[] = [
  'open',
  'triaged',
  'validated',
  'awaiting-decision',
  'reopened',
  'remediating',
  'verifying',
];

const DEFAULT_HISTORY_LIMIT = 2_000;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function freshState(input: ExposureWorkflowInput): CarriedState {
  const firstSeenMs = Date.parse(input.firstSeen);
  return {
    view: {
      exposureId: input.exposureId,
      scope: input.scope,
      assetId: input.assetId,
      weaknessKey: input.weaknessKey,
      state: input.decisionRequested ? 'awaiting-decision' : 'triaged',
      priority: input.triage.priority,
      slaPaused: false,
      owner: input.owner,
      reasons: input.triage.reasons,
      policyVersion: input.triage.policyVersion,
      ...(input.triage.contextualCvss !== undefined ? { contextualCvss: input.triage.contextualCvss } : {}),
      ...(input.triage.kev !== undefined ? { kev: input.triage.kev } : {}),
      remediationUnitId: input.remediationUnitId,
      history: [],
      tickets: [],
      escalationLevel: -1,
      breaches: [],
      firstSeen: input.firstSeen,
    },
    clock: startClock(firstSeenMs, Date.parse(input.triage.slaDue)),
    seq: 0,
    lifecycleKey: workflowInfo().firstExecutionRunId,
    remediationStarted: false,
    unverifiedWindows: 0,
    lastObservedMs: Date.parse(input.triage.observedAt),
    inbox: [],
  };
}

export async function exposureWorkflow(input: ExposureWorkflowInput): Promise<ExposureView> {
  const heartbeatTimeout = input.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_MS;
  // Calls to outside systems (tickets, chat escalations, scanners, patching) are ordinary
  // activities: each has its own retries and timeouts, and none holds up a workflow task. A dead
  // worker is noticed by the missing heartbeat, and the call retried elsewhere.
  const remote = proxyActivities<
    Pick<
      LifecycleActivities,
      'openTicket' | 'updateTicket' | 'requestRescan' | 'notifyAudience' | 'joinPatchRollout'
    >
  >({
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout,
    retry: { initialInterval: '2 seconds', maximumInterval: '5 minutes', backoffCoefficient: 2 },
  });
  const patching = proxyActivities<Pick<LifecycleActivities, 'applyPatch'>>({
    startToCloseTimeout: '4 hours',
    heartbeatTimeout,
    retry: { initialInterval: '10 seconds', maximumInterval: '10 minutes', backoffCoefficient: 2 },
  });
  /** What this lifecycle was started with (input.ts, LIFECYCLE_REVISION); 0 before revisions. */
  const revision = input.revision ?? 0;
  const c: CarriedState = input.carried ?? freshState(input);
  const v = c.view;
  const rules = input.rules;
  /** Bumped on every change the main loop has to look at. */
  let version = 0;
  const changed = () => {
    version++;
  };

  const viewNow = (): ExposureView => ({
    ...v,
    slaDue: clockRuns.includes(v.state) || v.slaPaused ? iso(effectiveDue(c.clock, Date.now())) : undefined,
    slaPaused: c.clock.pausedSinceMs !== undefined,
    escalationLevel: v.escalationLevel,
  });

  const row = (): ExposureRow => {
    const now = viewNow();
    return {
      exposureId: v.exposureId,
      assetId: v.assetId,
      weaknessKey: v.weaknessKey,
      scope: v.scope,
      state: v.state,
      priority: v.priority,
      slaDue: terminalStates.includes(v.state) ? undefined : iso(effectiveDue(c.clock, Date.now())),
      policyVersion: v.policyVersion,
      owner: v.owner,
      reasons: v.reasons,
      ...(v.contextualCvss !== undefined ? { contextualCvss: v.contextualCvss } : {}),
      ...(v.kev !== undefined ? { kev: v.kev } : {}),
      remediationUnitId: v.remediationUnitId,
      escalationLevel: v.escalationLevel,
      slaPaused: now.slaPaused,
      slaBreachedAt: v.breaches.find((b) => b.kind === 'sla')?.at,
      snoozedUntil: v.state === 'snoozed' ? v.snoozedUntil : undefined,
      riskAcceptedUntil: v.state === 'risk-accepted' ? v.riskAccepted?.until : undefined,
      riskAcceptedBy: v.state === 'risk-accepted' ? v.riskAccepted?.by : undefined,
      fixedAt: v.fixedAt,
      verifiedAt: v.verifiedBy?.at,
      verifiedScanId: v.verifiedBy?.scanId,
      resolvedAt: v.resolvedAt,
      exposureSeconds:
        v.state === 'resolved' && v.resolvedAt
          ? Math.round((Date.parse(v.resolvedAt) - Date.parse(v.firstSeen)) / 1000)
          : undefined,
      firstSeen: v.firstSeen,
      lifecycle: c.lifecycleKey,
      seq: c.seq,
    };
  };

  /** A fresh idempotency key for the next record or side effect of this lifecycle. */
  const nextKey = (): string => `${v.exposureId}:${c.lifecycleKey}:${++c.seq}`;

  const record = async (
    type: string,
    reason: string,
    opts: { actor?: string; from?: ExposureState; inputs?: unknown; evidence?: unknown } = {},
  ): Promise<void> => {
    const key = nextKey();
    const rec: LifecycleRecord = {
      key,
      exposureId: v.exposureId,
      type,
      actor: opts.actor ?? 'system',
      reason,
      at: iso(Date.now()),
      data: {
        seq: c.seq,
        ...(opts.from !== undefined ? { from: opts.from, to: v.state } : {}),
        policyVersion: v.policyVersion,
        ...(opts.inputs !== undefined ? { inputs: opts.inputs } : {}),
        ...(opts.evidence !== undefined ? { evidence: opts.evidence } : {}),
      },
      row: row(),
    };
    await local.recordLifecycle([rec]);
  };

  /** Change state now (synchronously, so handlers and the loop agree at once) and record it. */
  const transition = async (
    to: ExposureState,
    reason: string,
    opts: { actor?: string; type?: string; inputs?: unknown; evidence?: unknown } = {},
  ): Promise<void> => {
    const from = v.state;
    if (to === 'snoozed' || to === 'risk-accepted') c.clock = pauseClock(c.clock, Date.now());
    else if (from === 'snoozed' || from === 'risk-accepted') c.clock = resumeClock(c.clock, Date.now());
    v.state = to;
    if (to === 'resolved' || to === 'false-positive' || to === 'retired') v.resolvedAt = iso(Date.now());
    changed();
    await record(opts.type ?? to, reason, { ...opts, from });
  };

  const notify = async (
    via: 'local' | 'remote',
    kind: NotificationKind,
    key: string,
    audiences: EscalationAudience[],
    text: string,
    level?: number,
  ): Promise<NotifyOutcome> => {
    const req = {
      key,
      kind,
      exposureId: v.exposureId,
      scope: v.scope,
      owner: v.owner,
      unitId: v.remediationUnitId,
      level,
      audiences,
      text,
      eventKey: nextKey(),
    };
    return via === 'local' ? await local.notifyAudience(req) : await remote.notifyAudience(req);
  };

  /**
   * Escalations are written on the unit's ticket too, so the people working the queue see them.
   * Added after histories were recorded (test/lifecycle/histories): runs that escalated before this
   * change replay without the extra activity, hence the patch guard.
   */
  const commentOnTicket = async (text: string): Promise<void> => {
    if (v.tickets.length === 0 || !patched('escalation-ticket-comment')) return;
    await remote.updateTicket({
      exposureId: v.exposureId,
      scope: v.scope,
      unitId: v.remediationUnitId,
      action: 'comment',
      text,
      eventKey: nextKey(),
    });
  };

  /** Ask the owner to decide (one message per remediation unit and request), then wait in awaiting-decision. */
  const requestDecision = async (why: string, keySuffix: string): Promise<void> => {
    const from = v.state;
    const unit = v.remediationUnitId ?? v.exposureId;
    const outcome = await notify(
      'local',
      'decision-request',
      `${unit}:decision-request:${keySuffix}`,
      ['owner'],
      `a decision is needed (${why})`,
    );
    if (v.state !== from) return; // a decision arrived meanwhile
    await transition('awaiting-decision', awaitingDecisionReason(why), {
      evidence: { notification: outcome },
    });
  };

  const apply = async (d: Decision): Promise<DecisionResult> => {
    const from = v.state;
    const actor = d.actor.personId;
    let to: ExposureState = from;
    let reason: string;
    switch (d.kind) {
      case 'approve':
        to = 'remediating';
        c.approvedAtMs = Date.now();
        c.remediationStarted = false;
        reason = `fix approved by ${actor}${d.comment ? `: ${d.comment}` : ''}`;
        break;
      case 'snooze':
        to = 'snoozed';
        v.snoozedUntil = d.until;
        reason = `snoozed by ${actor} until ${d.until}${d.reason ? `: ${d.reason}` : ''}`;
        break;
      case 'acceptRisk':
        to = 'risk-accepted';
        v.riskAccepted = { by: actor, until: d.expires, justification: d.justification };
        c.riskReminderSent = false;
        reason = `risk accepted by ${actor} until ${d.expires}: ${d.justification}`;
        break;
      case 'markFalsePositive':
        to = 'false-positive';
        reason = `marked false positive by ${actor}: ${d.reason}`;
        break;
      case 'reassign':
        v.owner = d.to;
        reason = `reassigned by ${actor} to ${d.to}${d.reason ? `: ${d.reason}` : ''}`;
        break;
    }
    v.history.push({ decision: d, at: iso(Date.now()), from, to });
    if (to !== from) await transition(to, reason, { actor, type: d.kind, inputs: d });
    else {
      changed();
      await record(d.kind, reason, { actor, inputs: d, from });
    }
    if (d.kind === 'reassign') {
      const moved = await local.moveToOwner({ exposureId: v.exposureId, scope: v.scope, owner: d.to });
      v.remediationUnitId = moved.unitId;
      if (v.state === 'awaiting-decision' || v.state === 'reopened') {
        await notify(
          'local',
          'decision-request',
          `${moved.unitId}:decision-request:reassigned:${v.exposureId}:${c.seq}`,
          ['owner'],
          `${v.priority}: ${v.weaknessKey} on asset ${v.assetId} was assigned to you by ${actor}`,
        );
      }
    }
    return { exposureId: v.exposureId, state: to };
  };

  // ---- message handlers ---------------------------------------------------------------------

  setHandler(exposureStateQuery, viewNow);

  const validator = (d: Decision) => {
    const why = refusal(
      d,
      { state: v.state, priority: v.priority, owner: v.owner },
      input.authorization,
      rules,
      Date.now(),
    );
    if (why) throw new Error(why);
  };
  setHandler(approveUpdate, apply, { validator });
  setHandler(snoozeUpdate, apply, { validator });
  setHandler(acceptRiskUpdate, apply, { validator });
  setHandler(markFalsePositiveUpdate, apply, { validator });
  setHandler(reassignUpdate, apply, { validator });

  const enqueue = (item: InboxItem) => {
    c.inbox.push(item);
    changed();
  };
  setHandler(observedSignal, (s) => enqueue({ kind: 'observed', scanId: s.scanId, at: s.at }));
  setHandler(absentSignal, (s) =>
    enqueue({
      kind: 'absent',
      scanId: s.scanId,
      at: s.at,
      ...(s.assetRetired ? { assetRetired: true } : {}),
    }),
  );
  setHandler(rescoredSignal, (s) => enqueue({ kind: 'rescored', ...s }));
  setHandler(ticketChangedSignal, (s) => enqueue({ kind: 'ticketChanged', ...s }));
  setHandler(patchRolloutFinishedSignal, (s) => enqueue({ kind: 'patchRolloutFinished', ...s }));

  // ---- what signals do ----------------------------------------------------------------------

  const resolveOn = async (scanId: number, at: string, how: string): Promise<void> => {
    if (v.state !== 'verifying')
      await transition('verifying', `${how}; scan ${scanId} at ${at} is the evidence`, {
        evidence: { scanId, at },
      });
    v.verifiedBy = { scanId, at };
    await transition(
      'resolved',
      `scan ${scanId} at ${at} covered the asset and no longer sees ${v.weaknessKey}`,
      {
        evidence: { scanId, at, fixedAt: v.fixedAt },
      },
    );
  };

  const handle = async (item: InboxItem): Promise<void> => {
    if (terminalStates.includes(v.state)) {
      // The weakness came back after the exposure was closed as fixed: open it again.
      if (
        item.kind === 'observed' &&
        v.state === 'resolved' &&
        Date.parse(item.at) > Date.parse(v.resolvedAt ?? item.at)
      ) {
        c.lastObservedMs = Date.parse(item.at);
        v.verifiedBy = undefined;
        v.fixedAt = undefined;
        v.resolvedAt = undefined;
        await transition(
          'reopened',
          `scan ${item.scanId} at ${item.at} sees ${v.weaknessKey} again after it was resolved`,
          {
            evidence: { scanId: item.scanId, at: item.at },
          },
        );
        await requestDecision('it came back after being resolved', `reopened:${item.scanId}`);
      }
      return;
    }
    switch (item.kind) {
      case 'observed': {
        const atMs = Date.parse(item.at);
        c.lastObservedMs = Math.max(c.lastObservedMs, atMs);
        if (v.state === 'verifying' && v.fixedAt && atMs > Date.parse(v.fixedAt)) {
          const fixedAt = v.fixedAt;
          v.fixedAt = undefined;
          await transition(
            'remediating',
            `scan ${item.scanId} at ${item.at} still sees ${v.weaknessKey} after the fix of ${fixedAt}`,
            {
              type: 'fix-failed',
              evidence: { scanId: item.scanId, at: item.at, fixedAt },
            },
          );
          await remote.updateTicket({
            exposureId: v.exposureId,
            scope: v.scope,
            unitId: v.remediationUnitId,
            action: 'reopen',
            text: `The fix of ${fixedAt} did not remove ${v.weaknessKey}: scan ${item.scanId} at ${item.at} still sees it.`,
            eventKey: nextKey(),
          });
        }
        return;
      }
      case 'absent': {
        if (item.assetRetired) {
          await transition(
            'retired',
            `the asset was retired from the inventory (scan ${item.scanId}); closed as retired, not as fixed`,
            {
              evidence: { scanId: item.scanId, at: item.at },
            },
          );
          return;
        }
        const atMs = Date.parse(item.at);
        const baseline = v.state === 'verifying' && v.fixedAt ? Date.parse(v.fixedAt) : c.lastObservedMs;
        if (atMs <= baseline) {
          await record(
            'evidence-ignored',
            `scan ${item.scanId} at ${item.at} is not after ${iso(baseline)}, so it proves nothing`,
            {
              evidence: { scanId: item.scanId, at: item.at },
            },
          );
          return;
        }
        const how =
          v.state === 'verifying'
            ? `verifying the fix of ${v.fixedAt}`
            : v.state === 'remediating'
              ? 'a scan after the approval no longer sees it'
              : 'a scan no longer sees it (fixed outside a ticket)';
        await resolveOn(item.scanId, item.at, how);
        return;
      }
      case 'rescored': {
        const before = {
          priority: v.priority,
          slaDue: iso(effectiveDue(c.clock, Date.now())),
          policyVersion: v.policyVersion,
        };
        const dueMs = cappedDeadline(rules, item.priority, c.clock.startMs, Date.parse(item.slaDue));
        if (item.priority === v.priority && dueMs === c.clock.dueMs && item.policyVersion === v.policyVersion)
          return;
        c.clock = rescoreClock(c.clock, dueMs);
        v.priority = item.priority;
        v.reasons = item.reasons;
        v.policyVersion = item.policyVersion;
        if (item.contextualCvss !== undefined) v.contextualCvss = item.contextualCvss;
        if (item.kev !== undefined) v.kev = item.kev;
        v.escalationLevel = firedLevelAfterRescore(rules.ladder, c.clock, v.escalationLevel, Date.now());
        const due = iso(effectiveDue(c.clock, Date.now()));
        await record(
          'rescored',
          `re-scored ${before.priority} → ${item.priority}, deadline ${before.slaDue} → ${due}`,
          {
            inputs: { before, after: item },
          },
        );
        // The unit's ticket shows the new priority and deadline. Added after histories were
        // recorded (test/lifecycle/histories), hence the patch guard.
        if (
          v.tickets.length > 0 &&
          (item.priority !== before.priority || due !== before.slaDue) &&
          patched('rescore-refreshes-ticket')
        )
          await remote.updateTicket({
            exposureId: v.exposureId,
            scope: v.scope,
            unitId: v.remediationUnitId,
            action: 'refresh',
            text: `re-scored ${before.priority} → ${item.priority}, due ${due}`,
            eventKey: nextKey(),
          });
        return;
      }
      case 'patchRolloutFinished': {
        await patchFinished(item);
        return;
      }
      case 'ticketChanged': {
        if (!v.tickets.some((t) => t.system === item.ticket.system && t.key === item.ticket.key))
          v.tickets.push(item.ticket);
        const by = item.by ? ` by ${item.by}` : '';
        if (item.status === 'done' && v.state === 'remediating') {
          v.fixedAt = item.at;
          await transition(
            'verifying',
            `ticket ${item.ticket.key} closed${by}: the fix is verified by a re-scan, not by the ticket`,
            {
              evidence: { ticket: item.ticket, at: item.at },
            },
          );
        } else if (item.status !== 'done' && v.state === 'verifying') {
          v.fixedAt = undefined;
          await transition('remediating', `ticket ${item.ticket.key} reopened${by}`, {
            evidence: { ticket: item.ticket, at: item.at },
          });
        } else {
          await record('ticket-changed', `ticket ${item.ticket.key} is ${item.status}${by}`, {
            evidence: { ticket: item.ticket, at: item.at },
          });
        }
        return;
      }
    }
  };

  // ---- what time does -----------------------------------------------------------------------

  const verifyDeadlineMs = (): number | undefined =>
    v.state === 'verifying' && v.fixedAt
      ? Date.parse(v.fixedAt) + rules.verifyWithinMs * (c.unverifiedWindows + 1)
      : undefined;

  const riskReminderMs = (): number | undefined =>
    v.state === 'risk-accepted' && v.riskAccepted && !c.riskReminderSent
      ? Date.parse(v.riskAccepted.until) - rules.riskExpiryReminderMs
      : undefined;

  const nextWakeMs = (): number | undefined => {
    const times: number[] = [];
    if (clockRuns.includes(v.state)) {
      const next = nextEscalation(rules.ladder, c.clock, v.escalationLevel);
      if (next) times.push(next.atMs);
    }
    if (v.state === 'snoozed' && v.snoozedUntil) times.push(Date.parse(v.snoozedUntil));
    if (v.state === 'risk-accepted' && v.riskAccepted) {
      times.push(Date.parse(v.riskAccepted.until));
      const reminder = riskReminderMs();
      if (reminder !== undefined) times.push(reminder);
    }
    const verify = verifyDeadlineMs();
    if (verify !== undefined) times.push(verify);
    return times.length ? Math.min(...times) : undefined;
  };

  const onTime = async (): Promise<void> => {
    const now = Date.now();
    if (v.state === 'snoozed' && v.snoozedUntil && Date.parse(v.snoozedUntil) <= now) {
      await requestDecision(
        `the snooze until ${v.snoozedUntil} ended`,
        `snooze-ended:${v.exposureId}:${c.seq}`,
      );
      return;
    }
    if (v.state === 'risk-accepted' && v.riskAccepted) {
      const acc = v.riskAccepted;
      if (Date.parse(acc.until) <= now) {
        await transition('reopened', `the risk acceptance by ${acc.by} ended on ${acc.until}`);
        await requestDecision(
          `the risk acceptance by ${acc.by} ended`,
          `acceptance-ended:${v.exposureId}:${c.seq}`,
        );
        return;
      }
      const reminder = riskReminderMs();
      if (reminder !== undefined && reminder <= now) {
        c.riskReminderSent = true;
        const outcome = await notify(
          'remote',
          'reminder',
          `${v.exposureId}:${c.lifecycleKey}:acceptance-expiring:${acc.until}`,
          ['owner', 'securityLead'],
          `The risk acceptance of ${v.weaknessKey} on asset ${v.assetId} by ${acc.by} ends on ${acc.until}; renew it or plan the fix`,
        );
        await record('acceptance-expiring', `risk acceptance by ${acc.by} ends on ${acc.until}`, {
          evidence: { notification: outcome },
        });
      }
      return;
    }
    const verify = verifyDeadlineMs();
    if (verify !== undefined && verify <= now) {
      c.unverifiedWindows++;
      v.breaches.push({ at: iso(now), kind: 'fix-not-verified', level: c.unverifiedWindows });
      const outcome = await notify(
        'remote',
        'escalation',
        `${v.exposureId}:${c.lifecycleKey}:fix-not-verified:${c.unverifiedWindows}`,
        ['owner', 'channel', 'manager'],
        `Fix not verified: no scan after ${v.fixedAt} has covered asset ${v.assetId} for ${v.weaknessKey}`,
        1,
      );
      await record(
        'fix-not-verified',
        `no scan after the fix of ${v.fixedAt} proved ${v.weaknessKey} gone within the verification window`,
        {
          evidence: { notification: outcome, window: c.unverifiedWindows },
        },
      );
      await commentOnTicket(
        `Fix not verified: no scan after ${v.fixedAt} has shown ${v.weaknessKey} gone; a re-scan is requested again.`,
      );
      c.rescanRequestedForFixMs = undefined; // ask again
      return;
    }
    if (clockRuns.includes(v.state)) {
      const due = dueEscalation(rules.ladder, c.clock, v.escalationLevel, now);
      if (due) {
        v.escalationLevel = due.level;
        const breach = isBreach(due.step);
        const dueAt = iso(effectiveDue(c.clock, now));
        if (breach && !v.breaches.some((b) => b.kind === 'sla' && b.at >= iso(c.clock.startMs))) {
          v.breaches.push({ at: iso(now), kind: 'sla', level: due.level });
        }
        const unit = v.remediationUnitId ?? v.exposureId;
        const outcome = await notify(
          'remote',
          due.level === 0 && !breach ? 'reminder' : 'escalation',
          `${unit}:sla:${due.level}:${dueAt.slice(0, 10)}`,
          due.step.notify,
          breach
            ? `SLA ${due.step.afterDueMs ? 'breached and past its grace period' : 'breached'}: ${v.priority} ${v.weaknessKey} on asset ${v.assetId} was due ${dueAt}`
            : `Reminder: ${v.priority} ${v.weaknessKey} on asset ${v.assetId} is due ${dueAt}`,
          due.level,
        );
        await record(
          breach ? 'sla-escalated' : 'sla-reminder',
          `${breach ? 'SLA breached' : 'SLA reminder'}: level ${due.level} to ${due.step.notify.join(', ')} (due ${dueAt})`,
          {
            evidence: { level: due.level, audiences: due.step.notify, dueAt, notification: outcome },
          },
        );
        if (breach)
          await commentOnTicket(`SLA breached (due ${dueAt}); escalated to ${due.step.notify.join(', ')}.`);
      }
    }
  };

  // ---- remediation and verification ----------------------------------------------------------

  /** What a patch that ended means for this exposure: verifying after a success, else waiting on. */
  const patchEnded = async (patch: PatchOutcome, evidence: unknown, escalate: boolean): Promise<void> => {
    if (v.state !== 'remediating') return;
    if (patch.ok && patch.finishedAt) {
      v.fixedAt = patch.finishedAt;
      await transition('verifying', `patch finished at ${patch.finishedAt}: verifying by re-scan`, {
        evidence: { patch: evidence },
      });
    } else if (patch.ok === false && escalate) {
      await notify(
        'remote',
        'escalation',
        `${v.remediationUnitId ?? v.exposureId}:patch-failed:${c.approvedAtMs ?? 0}`,
        ['owner', 'channel'],
        `Patch failed for ${v.weaknessKey} on asset ${v.assetId}: ${patch.summary}`,
        1,
      );
    }
  };

  const patchFinished = async (item: Extract<InboxItem, { kind: 'patchRolloutFinished' }>) => {
    if (item.rolloutId !== c.patchRolloutId) return; // another round's rollout, or not ours
    c.patchRolloutId = undefined;
    v.patchRolloutId = undefined;
    if (v.state !== 'remediating') return;
    if (item.status === 'succeeded')
      // A failed rollout has escalated by itself (workflows/patch.ts).
      await patchEnded(
        { ok: true, summary: item.summary, ...(item.finishedAt ? { finishedAt: item.finishedAt } : {}) },
        { rolloutId: item.rolloutId, status: item.status, summary: item.summary },
        false,
      );
    else
      await record(
        `patch-rollout-${item.status}`,
        `patch rollout ${item.rolloutId} ${item.status}: the exposure stays in remediation (ticket, a later approval, or a scan showing it gone)`,
        { evidence: { rolloutId: item.rolloutId, summary: item.summary } },
      );
  };

  /**
   * The unit's patch rollout (workflows/patch.ts) as a child: plan, approval, maintenance window,
   * canary, the rest. The first exposure of the unit to get here starts it; the others join it.
   * Every exposure of the unit, this one included, hears the end as a signal (so the wait survives
   * continue-as-new, and the loop keeps running SLA timers and handling scans meanwhile).
   */
  const startPatchRollout = async (
    req: {
      exposureId: string;
      scope: string;
      unitId?: string;
    },
    eventKey = nextKey(),
  ): Promise<void> => {
    const join = await remote.joinPatchRollout({
      ...req,
      since: iso(c.approvedAtMs ?? Date.now()),
      eventKey,
    });
    if (join.skipped || !join.rolloutId) return;
    if (join.unitId) v.remediationUnitId = join.unitId;
    c.patchRolloutId = join.rolloutId;
    v.patchRolloutId = join.rolloutId;
    if (join.finished) {
      enqueue({ kind: 'patchRolloutFinished', rolloutId: join.rolloutId, ...join.finished });
      return;
    }
    try {
      await startChild(patchRollout, {
        workflowId: join.rolloutId,
        args: [
          {
            unitId: join.unitId!,
            scope: v.scope,
            targets: join.targets ?? [],
            exposures: join.exposures ?? [],
            ...(v.owner ? { owner: v.owner } : {}),
            // The exposures request their verifying re-scan themselves (one per unit and fix time).
            requestRescan: false,
            ...(input.heartbeatTimeoutMs ? { heartbeatTimeoutMs: input.heartbeatTimeoutMs } : {}),
          },
        ],
        // A rollout outlives the run that started it (continue-as-new, another exposure closing).
        parentClosePolicy: ParentClosePolicy.ABANDON,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      });
    } catch (err) {
      if (!(err instanceof Error && err.name === 'WorkflowExecutionAlreadyStartedError')) throw err;
      // Another exposure of the unit started it: wait for its end, unless it has already ended.
      const again = await remote.joinPatchRollout({
        ...req,
        unitId: join.unitId,
        since: iso(c.approvedAtMs ?? Date.now()),
        eventKey: nextKey(),
      });
      if (again.finished && again.rolloutId === join.rolloutId)
        enqueue({ kind: 'patchRolloutFinished', rolloutId: join.rolloutId, ...again.finished });
    }
  };

  const openTicket = async (
    req: { exposureId: string; scope: string; unitId?: string },
    eventKey: string,
  ) => {
    const ticket = await remote.openTicket({ ...req, eventKey });
    if (
      ticket.ticket &&
      !v.tickets.some((t) => t.system === ticket.ticket!.system && t.key === ticket.ticket!.key)
    )
      v.tickets.push(ticket.ticket);
  };

  const remediate = async (): Promise<void> => {
    c.remediationStarted = true;
    const req = { exposureId: v.exposureId, scope: v.scope, unitId: v.remediationUnitId };
    // Revision 1: a local activity first says which steps the scope has configured (and records the
    // others as skipped), so an approval in a scope without a ticket system or patch executor
    // schedules no activity and no extra workflow task for them.
    if (revision >= 1) {
      const ticketEventKey = nextKey();
      const patchEventKey = nextKey();
      const route = await local.remediationRoute({ ...req, ticketEventKey, patchEventKey });
      if (route.tickets) await openTicket(req, ticketEventKey);
      if (v.state !== 'remediating' || !route.patch) return;
      await startPatchRollout(req, patchEventKey);
      changed();
      return;
    }
    await openTicket(req, nextKey());
    if (v.state !== 'remediating') return;
    // Added after histories were recorded: runs that patched with the direct activity replay it.
    if (patched('patch-rollout-child')) {
      await startPatchRollout(req);
      changed();
      return;
    }
    const patch = await patching.applyPatch({ ...req, eventKey: nextKey() });
    await patchEnded(patch, patch, true);
    changed();
  };

  const verify = async (): Promise<void> => {
    const fixedMs = v.fixedAt ? Date.parse(v.fixedAt) : Date.now();
    c.rescanRequestedForFixMs = fixedMs;
    await remote.requestRescan({
      requestId: `${v.remediationUnitId ?? v.exposureId}:${fixedMs}:${c.unverifiedWindows}`,
      exposureId: v.exposureId,
      scope: v.scope,
      assetId: v.assetId,
      weaknessKey: v.weaknessKey,
      notBefore: iso(fixedMs),
      eventKey: nextKey(),
    });
    changed();
  };

  const closeOut = async (): Promise<void> => {
    await remote.updateTicket({
      exposureId: v.exposureId,
      scope: v.scope,
      unitId: v.remediationUnitId,
      action: 'close-if-done',
      text:
        v.state === 'resolved'
          ? `${v.weaknessKey} verified fixed by scan ${v.verifiedBy?.scanId} at ${v.verifiedBy?.at}`
          : `${v.weaknessKey} closed as ${v.state}`,
      eventKey: nextKey(),
    });
  };

  // ---- the lifecycle ------------------------------------------------------------------------

  if (!input.carried && !input.decisionRequested) {
    if (!input.triageRecorded)
      await record('triaged', `${input.triage.priority}: due ${input.triage.slaDue}`, {
        from: 'open',
        inputs: input.triage,
      });
    if (input.reopenedFrom) {
      await transition('reopened', reopenedReason(input.triage.scanId, v.weaknessKey, input.reopenedFrom), {
        evidence: { scanId: input.triage.scanId, at: input.triage.observedAt },
      });
    }
    // Validation evidence: the scan that saw it, the exploitation and reachability the triage found.
    await transition('validated', validatedReason(input.triage.scanId, input.triage.reasons), {
      evidence: { scanId: input.triage.scanId, at: input.triage.observedAt, reasons: input.triage.reasons },
    });
    await requestDecision(decisionWhy(input.reopenedFrom), `scan:${input.triage.scanId}`);
  }
  if (!input.carried && rules.autoApprove && v.state === 'awaiting-decision') {
    await apply({
      kind: 'approve',
      actor: { personId: 'system', via: 'api' },
      comment: 'the scope approves fixes automatically',
    });
  }

  /**
   * Revision 1: the main loop's wake-up timer, kept across loop turns while the wake time stays the
   * same (a decision or a signal usually leaves the next escalation where it was), so a change does
   * not cancel one timer and start another. `fired` is read by the loop's condition.
   */
  let wakeAtMs: number | undefined;
  let wakeFired = false;
  let wakeScope: CancellationScope | undefined;
  const wakeAt = (atMs: number | undefined): void => {
    if (atMs === wakeAtMs && !wakeFired) return;
    wakeScope?.cancel();
    wakeScope = undefined;
    wakeAtMs = atMs;
    wakeFired = false;
    if (atMs === undefined) return;
    const scope = new CancellationScope();
    wakeScope = scope;
    scope
      .run(() => sleep(Math.max(1, atMs - Date.now())))
      .then(
        () => {
          if (wakeScope === scope) wakeFired = true;
        },
        () => undefined, // cancelled: another wake time replaced it
      );
  };

  const historyLimit = input.historyLimit ?? DEFAULT_HISTORY_LIMIT;
  let closedOut = false;
  for (;;) {
    while (c.inbox.length > 0) await handle(c.inbox.shift()!);

    if (terminalStates.includes(v.state)) {
      if (revision >= 1) wakeAt(undefined); // nothing is due in a closed lifecycle
      if (!closedOut) {
        closedOut = true;
        await closeOut();
        continue; // signals may have arrived while closing out
      }
      // Finish when all handlers are done; a reopen that raced the close is handled above.
      await condition(allHandlersFinished);
      if (c.inbox.length === 0 && terminalStates.includes(v.state)) return viewNow();
      continue;
    }
    closedOut = false;

    if (v.state === 'remediating' && !c.remediationStarted) {
      // An approval's handler is still recording (a local activity) when the loop sees the new
      // state. Started at once, the remediation's local activity ran beside it, and which of the
      // two resumed first differed between the first run and a replay (when both results arrive in
      // one activation): the update's completion and the ticket's activity swapped places, a
      // nondeterminism error after a worker restart. Waiting for the handler fixes the order.
      if (patched('remediate-after-handlers') && !allHandlersFinished()) {
        await condition(allHandlersFinished);
        continue;
      }
      await remediate();
      continue;
    }
    if (v.state === 'verifying' && c.rescanRequestedForFixMs === undefined) {
      await verify();
      continue;
    }

    const info = workflowInfo();
    if (info.historyLength > historyLimit || info.continueAsNewSuggested) {
      await condition(allHandlersFinished);
      if (c.inbox.length === 0) {
        return await continueAsNew<typeof exposureWorkflow>({
          ...input,
          triageRecorded: true,
          reopenedFrom: undefined,
          carried: c,
        });
      }
      continue;
    }

    const seen = version;
    const wake = nextWakeMs();
    if (revision >= 1) {
      wakeAt(wake);
      await condition(() => version !== seen || wakeFired);
      if (wakeFired) {
        wakeAt(undefined);
        await onTime();
      }
    } else if (wake === undefined) await condition(() => version !== seen);
    else {
      const woke = await condition(() => version !== seen, Math.max(1, wake - Date.now()));
      if (!woke) await onTime();
    }
  }
}
