// One workflow per campaign (one fix, in one scope, for one owner, across its assets), holding the
// lifecycles of its exposures: each keeps its own state, SLA clock and escalation level, decisions
// and evidence (domain/lifecycle.ts, a pure reducer); the campaign turns what they ask for into one
// record write, one decision request, one ticket, one patch rollout, one re-scan and one message per
// topic for all of them.
//
// Messages: exposures arrive through `admit` (or the start input), scans, re-scores, ticket changes
// and rollout ends as signals, queued and handled by the main loop in order; decisions through the
// validated `decide` update, for the whole campaign or some of its exposures. A handler never runs an
// activity: it changes the cells at once (so the answer is exact) and waits until the main loop has
// recorded what it did. Closed exposures leave the state once their close-out is done; the workflow
// ends when it holds none, and continues as new before its history grows large.
//
// Versioning: this code is replayed against recorded histories (test/lifecycle/replay.test.ts). A
// change that alters the commands an existing history produced must be guarded with
// `patched('<id>')` (see Temporal's patching API); changing only an activity's arguments or
// options, or a query, needs no guard.
import {
  ActivityFailure,
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  ParentClosePolicy,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  startChild,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import type { CampaignActivities } from '../../activities/campaign.ts';
import type { LifecycleRecord } from '../../contracts/lifecycle.ts';
import { admittedIn, refusal } from '../../domain/decisionAdmission.ts';
import { terminalStates, type Decision } from '../../domain/exposure.ts';
import { nextWake, step, type Cell, type CellEvent } from '../../domain/lifecycle.ts';
import { patchRolloutWorkflowId } from '../../contracts/patch.ts';
import { patchRollout } from '../patch.ts';
import {
  admitSignal,
  campaignQuery,
  decideUpdate,
  exposureQuery,
  exposuresQuery,
  patchRolloutFinishedSignal,
  rescoredSignal,
  scanChangesSignal,
  ticketChangedSignal,
  type Admission,
  type CampaignCarried,
  type CampaignDecision,
  type CampaignDecisionResult,
  type CampaignWorkflowInput,
  type InboxItem,
} from '../../contracts/campaign.ts';
import { Turn } from './turn.ts';
import { campaignView, exposureView } from './views.ts';

// Recording runs as a local activity, in the workflow task that changed the cells; its writes are
// batched across workflows (lifecycle/records.ts).
const local = proxyLocalActivities<Pick<CampaignActivities, 'recordLifecycle'>>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', backoffCoefficient: 2 },
});

/** Heartbeat timeout of the activities that call outside systems (they heartbeat while waiting). */
const DEFAULT_HEARTBEAT_MS = 60_000;
const DEFAULT_HISTORY_LIMIT = 5_000;
/** Continue as new before the history's size approaches Temporal's limits (50 MB by default). */
const HISTORY_BYTES_LIMIT = 8 * 1024 * 1024;

export async function campaignWorkflow(input: CampaignWorkflowInput): Promise<void> {
  const heartbeatTimeout = input.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_MS;
  // Calls to outside systems (chat, tickets, scanners) are ordinary activities: each has its own
  // retries and timeouts, and none holds up a workflow task.
  const remote = proxyActivities<
    Pick<
      CampaignActivities,
      | 'askOwner'
      | 'notifyCampaign'
      | 'remediateCampaign'
      | 'updateCampaignTicket'
      | 'requestCampaignRescan'
      | 'moveExposures'
    >
  >({
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout,
    retry: { initialInterval: '2 seconds', maximumInterval: '5 minutes', backoffCoefficient: 2 },
  });
  const ref = {
    campaignId: input.campaignId,
    shard: input.shard,
    scope: input.scope,
    ...(input.owner ? { owner: input.owner } : {}),
  };
  const wfId = workflowInfo().workflowId;
  const rules = input.rules;
  const carried: CampaignCarried = input.carried ?? { cells: [], turn: 0, round: 0, inbox: [] };
  const cells = new Map<string, Cell>(carried.cells.map((c) => [c.id, c]));
  const inbox: InboxItem[] = [...carried.inbox];
  let turnNo = carried.turn;
  let round = carried.round;
  let ticket = carried.ticket;
  /** Cells reassigned away, with the new owner and who reassigned them; they leave after recording. */
  const leaving = new Map<string, { to: string; by: string }>();

  /** Bumped on every change the main loop has to look at. */
  let version = 0;
  const changed = () => {
    version++;
  };
  let turn = new Turn(ref);
  /** Turns opened so far, and the last one whose records are written (handlers wait for theirs). */
  let openTurn = 1;
  let recordedTurn = 0;

  /** Apply one event to one cell, keeping what it asks for in the current turn. */
  const apply = (cell: Cell, event: CellEvent): Cell => {
    const r = step(cell, event, { nowMs: Date.now(), rules });
    cells.set(r.cell.id, r.cell);
    turn.take(r.cell, r.effects, Date.now());
    changed();
    return r.cell;
  };

  // ---- admissions -------------------------------------------------------------------------------

  const admit = (a: Admission): void => {
    const held = cells.get(a.cell.id);
    switch (a.how) {
      case 'new':
      case 'migrated':
        if (held) return; // a retried dispatch or migration
        cells.set(a.cell.id, a.cell);
        if (a.how === 'new' && rules.autoApprove && a.cell.state === 'awaiting-decision')
          apply(a.cell, {
            kind: 'decision',
            decision: {
              kind: 'approve',
              actor: { personId: 'system', via: 'api' },
              comment: 'the scope approves fixes automatically',
            },
          });
        changed();
        return;
      case 'reopened':
        if (held && !terminalStates.includes(held.state)) {
          // Still open here: the news is only that a scan sees it.
          if (a.evidence) apply(held, { kind: 'observed', scanId: a.evidence.scanId, at: a.evidence.at });
          return;
        }
        apply(a.cell, {
          kind: 'reopened',
          scanId: a.evidence?.scanId ?? 0,
          at: a.evidence?.at ?? new Date(Date.now()).toISOString(),
          from: a.evidence?.from ?? 'resolved',
          ...(a.evidence?.reasons ? { reasons: a.evidence.reasons } : {}),
        });
        return;
      case 'moved':
        // Exactly once: a retried hand-over finds the cell here already (same lifecycle, same or later step).
        if (held && held.lifecycle === a.cell.lifecycle && held.seq >= a.cell.seq) return;
        apply(a.cell, { kind: 'movedIn', by: a.by ?? 'someone', owner: input.owner ?? 'nobody' });
        return;
    }
  };

  const handle = (item: InboxItem): void => {
    switch (item.kind) {
      case 'admit':
        for (const a of item.admissions) admit(a);
        return;
      case 'scanChanges':
        for (const ch of item.changes) {
          const cell = cells.get(ch.exposureId);
          if (!cell) continue;
          apply(
            cell,
            ch.kind === 'observed'
              ? { kind: 'observed', scanId: ch.scanId, at: ch.at }
              : {
                  kind: 'absent',
                  scanId: ch.scanId,
                  at: ch.at,
                  ...(ch.kind === 'retired' ? { assetRetired: true } : {}),
                },
          );
        }
        return;
      case 'rescored':
        for (const r of item.rescores) {
          const cell = cells.get(r.exposureId);
          if (cell) apply(cell, { kind: 'rescored', ...r });
        }
        return;
      case 'ticketChanged': {
        const { change } = item;
        if (change.ticket.system && change.ticket.key && !ticket) ticket = change.ticket;
        for (const id of change.exposureIds) {
          const cell = cells.get(id);
          if (cell)
            apply(cell, {
              kind: 'ticketChanged',
              ticket: { system: change.ticket.system, key: change.ticket.key },
              status: change.status,
              at: change.at,
              ...(change.by ? { by: change.by } : {}),
            });
        }
        return;
      }
      case 'patchRolloutFinished':
        for (const cell of [...cells.values()])
          if (cell.rollout === item.end.rolloutId) apply(cell, { kind: 'patchFinished', ...item.end });
        return;
    }
  };

  for (const a of input.admissions) admit(a);

  // ---- decisions --------------------------------------------------------------------------------

  /** The cells a decision is for, each admitted or refused with the validator's sentence. */
  const judge = (req: CampaignDecision) => {
    const d: Decision = req.decision;
    const now = Date.now();
    const subject = (c: Cell) => ({
      state: c.state,
      priority: c.priority,
      ...(input.owner ? { owner: input.owner } : {}),
    });
    const targets = req.exposureIds
      ? req.exposureIds.map((id) => ({ id, cell: cells.get(id) }))
      : [...cells.values()]
          .filter((c) => !leaving.has(c.id) && admittedIn[d.kind]?.includes(c.state))
          .map((cell) => ({ id: cell.id, cell }));
    const admitted: Cell[] = [];
    const refused: CampaignDecisionResult['refused'] = [];
    for (const { id, cell } of targets) {
      if (!cell || leaving.has(id)) {
        refused.push({
          exposureId: id,
          reason: `exposure ${id} is not in campaign ${input.campaignId} (any more)`,
        });
        continue;
      }
      const why = refusal(d, subject(cell), input.authorization, rules, now);
      if (why) refused.push({ exposureId: id, reason: why });
      else admitted.push(cell);
    }
    return { admitted, refused, targets: targets.length };
  };

  const validateDecision = (req: CampaignDecision): void => {
    if (!req || typeof req !== 'object' || !req.decision || typeof req.decision !== 'object')
      throw new Error('a decision update carries { decision, exposureIds? }');
    if (req.exposureIds !== undefined && (!Array.isArray(req.exposureIds) || req.exposureIds.length === 0))
      throw new Error('exposureIds, when given, lists at least one exposure');
    const { admitted, refused, targets } = judge(req);
    if (admitted.length > 0) return;
    if (refused[0]) throw new Error(refused[0].reason);
    if (targets === 0)
      throw new Error(
        `nothing in campaign ${input.campaignId} can take "${String(req.decision.kind)}" now: ${
          describeStates([...cells.values()]) || 'it holds no open exposure'
        }`,
      );
  };

  const decide = async (req: CampaignDecision): Promise<CampaignDecisionResult> => {
    const mine = openTurn;
    const { admitted, refused } = judge(req);
    const d = req.decision;
    for (const cell of admitted) {
      const after = apply(cell, { kind: 'decision', decision: d });
      if (d.kind === 'reassign') leaving.set(after.id, { to: d.to, by: d.actor.personId });
    }
    await condition(() => recordedTurn >= mine);
    return {
      applied: admitted.map((c) => ({ exposureId: c.id, state: cells.get(c.id)?.state ?? c.state })),
      refused,
    };
  };

  setHandler(decideUpdate, decide, { validator: validateDecision });
  setHandler(campaignQuery, () =>
    campaignView(input, [...cells.values()], { round, ...(ticket ? { ticket } : {}), wakeAtMs }),
  );
  setHandler(exposureQuery, (id: string) => {
    const cell = cells.get(id);
    return cell ? exposureView(input, cell, Date.now()) : null;
  });
  setHandler(exposuresQuery, () => [...cells.values()].map((c) => exposureView(input, c, Date.now())));

  const enqueue = (item: InboxItem) => {
    inbox.push(item);
    changed();
  };
  setHandler(admitSignal, (admissions) => enqueue({ kind: 'admit', admissions }));
  setHandler(scanChangesSignal, (changes) => enqueue({ kind: 'scanChanges', changes }));
  setHandler(rescoredSignal, (rescores) => enqueue({ kind: 'rescored', rescores }));
  setHandler(ticketChangedSignal, (change) => enqueue({ kind: 'ticketChanged', change }));
  setHandler(patchRolloutFinishedSignal, (end) => enqueue({ kind: 'patchRolloutFinished', end }));

  // ---- the turn's side effects ------------------------------------------------------------------

  /**
   * A side effect that failed for good (a configuration error, a refusal by the outside system) is
   * recorded on the exposures it was for; the campaign goes on (transient failures are retried by
   * Temporal and never reach here).
   */
  const attempt = async <T>(
    what: string,
    exposureIds: string[],
    call: () => Promise<T>,
  ): Promise<T | undefined> => {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      const reason = `${what} failed: ${err.cause?.message ?? err.message}`;
      for (const id of exposureIds) {
        const cell = cells.get(id);
        if (cell) apply(cell, { kind: 'note', type: 'side-effect-failed', reason });
      }
      return undefined;
    }
  };

  /** Write the turn's records, then do what it asked for: one request per kind and topic. */
  const flush = async (): Promise<void> => {
    const t = turn;
    const closing = openTurn;
    turn = new Turn(ref);
    openTurn++;
    const records: LifecycleRecord[] = t.records(Date.now());
    if (records.length) await local.recordLifecycle(records);
    recordedTurn = closing;
    if (!t.hasRequests()) return;
    const n = ++turnNo;
    const key = (what: string) => `${wfId}:${n}:${what}`;
    const calls: Promise<unknown>[] = [];
    if (t.asks.size) {
      const exposureIds = [...t.asks.keys()];
      calls.push(
        attempt('the decision request', exposureIds, () =>
          remote.askOwner({ ...ref, key: key('ask'), exposureIds, why: [...new Set(t.asks.values())] }),
        ),
      );
    }
    for (const [topic, n2] of t.notices)
      calls.push(
        attempt(`the ${n2.notification}`, n2.exposureIds, () =>
          remote.notifyCampaign({
            ...ref,
            key: `${input.campaignId}:${topic}:${wfId}:${n}`,
            kind: n2.notification,
            level: n2.level,
            audiences: n2.audiences,
            lines: n2.lines,
            exposureIds: n2.exposureIds,
          }),
        ),
      );
    for (const [action, req] of t.tickets)
      calls.push(
        attempt(`the ticket ${action}`, req.exposureIds, () =>
          remote.updateCampaignTicket({
            ...ref,
            key: key(`ticket-${action}`),
            action,
            text: req.texts.join('\n'),
            exposureIds: req.exposureIds,
          }),
        ),
      );
    for (const [fixedAt, req] of t.rescans)
      calls.push(
        attempt('the verifying re-scan', req.exposureIds, () =>
          remote.requestCampaignRescan({
            ...ref,
            requestId: `${wfId}:${Date.parse(fixedAt)}:${req.window}`,
            key: key(`rescan-${Date.parse(fixedAt)}`),
            exposureIds: req.exposureIds,
            assetIds: [...new Set(req.assetIds)],
            weaknessKeys: [...new Set(req.weaknessKeys)],
            notBefore: fixedAt,
          }),
        ),
      );
    await Promise.all(calls);
  };

  /** An approval round: the campaign's ticket, then its patch rollout as a child (canary first). */
  const remediate = async (approved: Cell[]): Promise<void> => {
    round++;
    for (const c of approved) cells.set(c.id, { ...c, toRemediate: undefined });
    const ids = approved.map((c) => c.id);
    const outcome = await attempt('remediation', ids, () =>
      remote.remediateCampaign({ ...ref, key: `${wfId}:round:${round}`, round, exposureIds: ids }),
    );
    if (!outcome) return;
    if (outcome.ticket) ticket = outcome.ticket;
    // Exposures that left remediation meanwhile (a scan showed them gone) are not patched.
    const waiting = ids.filter((id) => cells.get(id)?.state === 'remediating');
    if (!outcome.patch || waiting.length === 0) return;
    const rolloutId = patchRolloutWorkflowId(input.campaignId, input.shard, round);
    const exposures = outcome.patch.exposures.filter((e) => waiting.includes(e.exposureId));
    const assets = new Set(exposures.map((e) => e.assetId));
    const targets = outcome.patch.targets.filter((t) => assets.has(t.assetId));
    if (exposures.length === 0 || targets.length === 0) return;
    for (const id of waiting) cells.set(id, { ...cells.get(id)!, rollout: rolloutId });
    changed();
    try {
      await startChild(patchRollout, {
        workflowId: rolloutId,
        args: [
          {
            campaignId: input.campaignId,
            scope: input.scope,
            targets,
            exposures,
            ...(input.owner ? { owner: input.owner } : {}),
            // The campaign requests its verifying re-scan itself (one per fix time).
            requestRescan: false,
            reportTo: wfId,
            ...(input.heartbeatTimeoutMs ? { heartbeatTimeoutMs: input.heartbeatTimeoutMs } : {}),
          },
        ],
        // A rollout outlives the run that started it (continue-as-new).
        parentClosePolicy: ParentClosePolicy.ABANDON,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      });
    } catch (err) {
      // Started by an earlier run of this campaign: its end arrives as a signal all the same.
      if (!(err instanceof Error && err.name === 'WorkflowExecutionAlreadyStartedError')) throw err;
    }
  };

  /** Reassigned exposures go to the new owner's campaign; they leave this one once it has them. */
  const move = async (): Promise<void> => {
    const byOwner = new Map<string, { by: string; cells: Cell[] }>();
    for (const [id, m] of leaving) {
      const cell = cells.get(id);
      if (!cell) continue;
      const group = byOwner.get(m.to) ?? { by: m.by, cells: [] };
      group.cells.push({ ...cell, toRemediate: undefined });
      byOwner.set(m.to, group);
    }
    for (const [to, g] of byOwner) {
      await remote.moveExposures({
        ...ref,
        key: `${wfId}:move:${g.cells[0]!.id}:${g.cells[0]!.seq}`,
        to,
        by: g.by,
        cells: g.cells,
      });
      for (const c of g.cells) {
        cells.delete(c.id);
        leaving.delete(c.id);
      }
    }
    leaving.clear();
    changed();
  };

  /** Closed exposures: the campaign's ticket closes when none is left open; they leave the state. */
  const closeOut = async (closed: Cell[]): Promise<void> => {
    await attempt(
      'closing the ticket',
      closed.map((c) => c.id),
      () =>
        remote.updateCampaignTicket({
          ...ref,
          key: `${wfId}:close:${closed.map((c) => `${c.id}@${c.seq}`).sort()[0]}`,
          action: 'close-if-done',
          text: closed
            .map((c) =>
              c.state === 'resolved'
                ? `${c.weaknessKey} on asset ${c.assetId} verified fixed by scan ${c.verifiedBy?.scanId} at ${c.verifiedBy?.at}`
                : `${c.weaknessKey} on asset ${c.assetId} closed as ${c.state}`,
            )
            .join('\n'),
          exposureIds: closed.map((c) => c.id),
        }),
    );
    for (const c of closed) cells.delete(c.id);
    changed();
  };

  // ---- the main loop ----------------------------------------------------------------------------

  // One wake-up timer, kept while the wake time stays the same (a decision or a signal usually leaves
  // the next deadline where it was), so a change does not cancel one timer and start another.
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
  const nextWakeMs = (): number | undefined => {
    let next: number | undefined;
    for (const c of cells.values()) {
      const t = nextWake(c, rules);
      if (t !== undefined && (next === undefined || t < next)) next = t;
    }
    return next;
  };

  const historyLimit = input.historyLimit ?? DEFAULT_HISTORY_LIMIT;
  for (;;) {
    while (inbox.length > 0) handle(inbox.shift()!);
    if (!turn.isEmpty()) {
      await flush();
      continue;
    }
    if (leaving.size > 0) {
      await move();
      continue;
    }
    const approved = [...cells.values()].filter((c) => c.toRemediate && c.state === 'remediating');
    if (approved.length > 0) {
      await remediate(approved);
      continue;
    }
    const closed = [...cells.values()].filter((c) => terminalStates.includes(c.state));
    if (closed.length > 0) {
      await closeOut(closed);
      continue;
    }
    if (cells.size === 0) {
      wakeAt(undefined);
      // Finish when all handlers are done; an admission that raced the end is handled above.
      await condition(allHandlersFinished);
      if (inbox.length === 0 && cells.size === 0 && turn.isEmpty()) return;
      continue;
    }

    const info = workflowInfo();
    if (
      info.historyLength > historyLimit ||
      info.historySize > HISTORY_BYTES_LIMIT ||
      info.continueAsNewSuggested
    ) {
      await condition(allHandlersFinished);
      if (inbox.length === 0 && turn.isEmpty() && leaving.size === 0) {
        return await continueAsNew<typeof campaignWorkflow>({
          ...input,
          admissions: [],
          carried: {
            cells: [...cells.values()],
            turn: turnNo,
            round,
            inbox: [],
            ...(ticket ? { ticket } : {}),
          },
        });
      }
      continue;
    }

    const seen = version;
    wakeAt(nextWakeMs());
    await condition(() => version !== seen || wakeFired);
    if (wakeFired) {
      wakeAt(undefined);
      const now = Date.now();
      for (const c of [...cells.values()]) {
        const t = nextWake(c, rules);
        if (t !== undefined && t <= now) apply(c, { kind: 'time' });
      }
    }
  }
}

/** "3 remediating, 1 verifying": what a campaign holds, for a refusal that names no exposure. */
function describeStates(cells: Cell[]): string {
  const counts = new Map<string, number>();
  for (const c of cells) counts.set(c.state, (counts.get(c.state) ?? 0) + 1);
  return [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
}
