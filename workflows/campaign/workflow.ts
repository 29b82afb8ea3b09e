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
// recorded what it did — which the main loop does at once, also while it waits for an outside
// system (a slow ticket system delays the campaign's ticket, not the answer to a decision). Closed
// exposures leave the state once their close-out is done; the workflow ends when it holds none, and
// continues as new before its history grows large.
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
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  startChild,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import type { CampaignActivities } from '../../activities/campaign.ts';
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
  generationTag,
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
  return await new CampaignRun(input).run();
}

/** Outside systems (chat, tickets, scanners) the campaign calls through ordinary activities. */
type Remote = Pick<
  CampaignActivities,
  | 'askOwner'
  | 'notifyCampaign'
  | 'remediateCampaign'
  | 'updateCampaignTicket'
  | 'requestCampaignRescan'
  | 'moveExposures'
>;

/** One run of a campaign workflow: its state, its handlers and its main loop. */
class CampaignRun {
  // Calls to outside systems are ordinary activities: each has its own retries and timeouts, and
  // none holds up a workflow task.
  private readonly remote: Remote;
  private readonly ref: { campaignId: string; shard: number; scope: string; owner?: string };
  private readonly wfId = workflowInfo().workflowId;
  /** This chain of runs' tag, when an earlier chain of the same workflow id may have used its keys. */
  private readonly generation: string | undefined;
  /** What the keys of this chain's requests start with: the workflow id, tagged in a later generation. */
  private readonly chain: string;
  private readonly rules: CampaignWorkflowInput['rules'];
  private readonly cells: Map<string, Cell>;
  private readonly inbox: InboxItem[];
  private turnNo: number;
  private round: number;
  private ticket: CampaignCarried['ticket'];
  /** Cells reassigned away, with the new owner and who reassigned them; they leave after recording. */
  private readonly leaving = new Map<string, { to: string; by: string }>();
  /** Bumped on every change the main loop has to look at. */
  private version = 0;
  private turn: Turn;
  /** Records taken into turns so far, and how many of them are written (a handler waits for its own). */
  private taken = 0;
  private written = 0;
  // One wake-up timer, kept while the wake time stays the same (a decision or a signal usually leaves
  // the next deadline where it was), so a change does not cancel one timer and start another.
  private wakeAtMs: number | undefined;
  private wakeFired = false;
  private wakeScope: CancellationScope | undefined;

  constructor(private readonly input: CampaignWorkflowInput) {
    this.remote = proxyActivities<Remote>({
      startToCloseTimeout: '5 minutes',
      heartbeatTimeout: input.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_MS,
      retry: { initialInterval: '2 seconds', maximumInterval: '5 minutes', backoffCoefficient: 2 },
    });
    this.ref = {
      campaignId: input.campaignId,
      shard: input.shard,
      scope: input.scope,
      ...(input.owner ? { owner: input.owner } : {}),
    };
    this.rules = input.rules;
    this.generation = input.laterGeneration ? generationTag(workflowInfo().firstExecutionRunId) : undefined;
    this.chain = this.generation ? `${this.wfId}.${this.generation}` : this.wfId;
    const carried: CampaignCarried = input.carried ?? { cells: [], turn: 0, round: 0, inbox: [] };
    this.cells = new Map<string, Cell>(carried.cells.map((c) => [c.id, c]));
    this.inbox = [...carried.inbox];
    this.turnNo = carried.turn;
    this.round = carried.round;
    this.ticket = carried.ticket;
    this.turn = new Turn(this.ref);
  }

  private changed(): void {
    this.version++;
  }

  /** Apply one event to one cell, keeping what it asks for in the current turn. */
  private apply(cell: Cell, event: CellEvent): Cell {
    const r = step(cell, event, { nowMs: Date.now(), rules: this.rules });
    this.cells.set(r.cell.id, r.cell);
    this.turn.take(r.cell, r.effects, Date.now());
    this.taken += r.effects.filter((e) => e.kind === 'record').length;
    this.changed();
    return r.cell;
  }

  // ---- admissions -------------------------------------------------------------------------------

  private admit(a: Admission): void {
    const held = this.cells.get(a.cell.id);
    switch (a.how) {
      case 'new':
      case 'migrated':
        if (held) return; // a retried dispatch or migration
        this.cells.set(a.cell.id, a.cell);
        if (a.how === 'new' && this.rules.autoApprove && a.cell.state === 'awaiting-decision')
          this.apply(a.cell, {
            kind: 'decision',
            decision: {
              kind: 'approve',
              actor: { personId: 'system', via: 'api' },
              comment: 'the scope approves fixes automatically',
            },
          });
        this.changed();
        return;
      case 'reopened':
        if (held && !terminalStates.includes(held.state)) {
          // Still open here: the news is only that a scan sees it.
          if (a.evidence)
            this.apply(held, { kind: 'observed', scanId: a.evidence.scanId, at: a.evidence.at });
          return;
        }
        this.apply(a.cell, {
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
        this.apply(a.cell, { kind: 'movedIn', by: a.by ?? 'someone', owner: this.input.owner ?? 'nobody' });
        return;
    }
  }

  private handle(item: InboxItem): void {
    switch (item.kind) {
      case 'admit':
        for (const a of item.admissions) this.admit(a);
        return;
      case 'scanChanges':
        for (const ch of item.changes) {
          const cell = this.cells.get(ch.exposureId);
          if (!cell) continue;
          this.apply(
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
          const cell = this.cells.get(r.exposureId);
          if (cell) this.apply(cell, { kind: 'rescored', ...r });
        }
        return;
      case 'ticketChanged': {
        const { change } = item;
        if (change.ticket.system && change.ticket.key && !this.ticket) this.ticket = change.ticket;
        for (const id of change.exposureIds) {
          const cell = this.cells.get(id);
          if (cell)
            this.apply(cell, {
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
        for (const cell of [...this.cells.values()])
          if (cell.rollout === item.end.rolloutId) this.apply(cell, { kind: 'patchFinished', ...item.end });
        return;
    }
  }

  // ---- decisions --------------------------------------------------------------------------------

  /** The cells a decision is for, each admitted or refused with the validator's sentence. */
  private judge(req: CampaignDecision) {
    const d: Decision = req.decision;
    const now = Date.now();
    const subject = (c: Cell) => ({
      state: c.state,
      priority: c.priority,
      ...(this.input.owner ? { owner: this.input.owner } : {}),
    });
    const targets = req.exposureIds
      ? req.exposureIds.map((id) => ({ id, cell: this.cells.get(id) }))
      : [...this.cells.values()]
          .filter((c) => !this.leaving.has(c.id) && admittedIn[d.kind]?.includes(c.state))
          .map((cell) => ({ id: cell.id, cell }));
    const admitted: Cell[] = [];
    const refused: CampaignDecisionResult['refused'] = [];
    for (const { id, cell } of targets) {
      if (!cell || this.leaving.has(id)) {
        refused.push({
          exposureId: id,
          reason: `exposure ${id} is not in campaign ${this.input.campaignId} (any more)`,
        });
        continue;
      }
      const why = refusal(d, subject(cell), this.input.authorization, this.rules, now);
      if (why) refused.push({ exposureId: id, reason: why });
      else admitted.push(cell);
    }
    return { admitted, refused, targets: targets.length };
  }

  private validateDecision(req: CampaignDecision): void {
    if (!req || typeof req !== 'object' || !req.decision || typeof req.decision !== 'object')
      throw new Error('a decision update carries { decision, exposureIds? }');
    if (req.exposureIds !== undefined && (!Array.isArray(req.exposureIds) || req.exposureIds.length === 0))
      throw new Error('exposureIds, when given, lists at least one exposure');
    const { admitted, refused, targets } = this.judge(req);
    if (admitted.length > 0) return;
    if (refused[0]) throw new Error(refused[0].reason);
    if (targets === 0)
      throw new Error(
        `nothing in campaign ${this.input.campaignId} can take "${String(req.decision.kind)}" now: ${
          describeStates([...this.cells.values()]) || 'it holds no open exposure'
        }`,
      );
  }

  private async decide(req: CampaignDecision): Promise<CampaignDecisionResult> {
    const { admitted, refused } = this.judge(req);
    const d = req.decision;
    for (const cell of admitted) {
      const after = this.apply(cell, { kind: 'decision', decision: d });
      if (d.kind === 'reassign') this.leaving.set(after.id, { to: d.to, by: d.actor.personId });
    }
    const mine = this.taken;
    await condition(() => this.written >= mine);
    return {
      applied: admitted.map((c) => ({ exposureId: c.id, state: this.cells.get(c.id)?.state ?? c.state })),
      refused,
    };
  }

  private installHandlers(): void {
    const { input } = this;
    setHandler(decideUpdate, (req) => this.decide(req), { validator: (req) => this.validateDecision(req) });
    setHandler(campaignQuery, () =>
      campaignView(input, [...this.cells.values()], {
        round: this.round,
        ...(this.ticket ? { ticket: this.ticket } : {}),
        wakeAtMs: this.wakeAtMs,
      }),
    );
    setHandler(exposureQuery, (id: string) => {
      const cell = this.cells.get(id);
      return cell ? exposureView(input, cell, Date.now()) : null;
    });
    setHandler(exposuresQuery, () => [...this.cells.values()].map((c) => exposureView(input, c, Date.now())));
    const enqueue = (item: InboxItem) => {
      this.inbox.push(item);
      this.changed();
    };
    setHandler(admitSignal, (admissions) => enqueue({ kind: 'admit', admissions }));
    setHandler(scanChangesSignal, (changes) => enqueue({ kind: 'scanChanges', changes }));
    setHandler(rescoredSignal, (rescores) => enqueue({ kind: 'rescored', rescores }));
    setHandler(ticketChangedSignal, (change) => enqueue({ kind: 'ticketChanged', change }));
    setHandler(patchRolloutFinishedSignal, (end) => enqueue({ kind: 'patchRolloutFinished', end }));
  }

  // ---- the turn's side effects ------------------------------------------------------------------

  /** Write the records taken so far (only the main loop writes, one write at a time). */
  private async writeRecords(t: Turn): Promise<void> {
    const upTo = this.taken;
    const records = t.takeRecords(Date.now());
    if (records.length) await local.recordLifecycle(records);
    this.written = upTo;
  }

  /**
   * Wait for a call to an outside system, writing meanwhile the records of what handlers and signals
   * changed: a decision is answered once its record is written, not once the call returns. What the
   * new records ask for is done by the next turn.
   */
  private async meanwhile<T>(work: Promise<T>): Promise<T> {
    let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
    void work.then(
      (value) => (outcome = { ok: true, value }),
      (error: unknown) => (outcome = { ok: false, error }),
    );
    for (;;) {
      await condition(() => outcome !== undefined || this.turn.hasRecords());
      if (this.turn.hasRecords()) await this.writeRecords(this.turn);
      else if (outcome?.ok) return outcome.value;
      else if (outcome) throw outcome.error;
    }
  }

  /**
   * A side effect that failed for good (a configuration error, a refusal by the outside system) is
   * recorded on the exposures it was for; the campaign goes on (transient failures are retried by
   * Temporal and never reach here).
   */
  private async attempt<T>(
    what: string,
    exposureIds: string[],
    call: () => Promise<T>,
  ): Promise<T | undefined> {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      const reason = `${what} failed: ${err.cause?.message ?? err.message}`;
      for (const id of exposureIds) {
        const cell = this.cells.get(id);
        if (cell) this.apply(cell, { kind: 'note', type: 'side-effect-failed', reason });
      }
      return undefined;
    }
  }

  /** Write the turn's records, then do what it asked for: one request per kind and topic. */
  private async flush(): Promise<void> {
    const { ref, remote, chain } = this;
    const t = this.turn;
    this.turn = new Turn(ref);
    await this.writeRecords(t);
    if (!t.hasRequests()) return;
    const n = ++this.turnNo;
    const key = (what: string) => `${chain}:${n}:${what}`;
    const calls: Promise<unknown>[] = [];
    if (t.asks.size) {
      const exposureIds = [...t.asks.keys()];
      calls.push(
        this.attempt('the decision request', exposureIds, () =>
          remote.askOwner({ ...ref, key: key('ask'), exposureIds, why: [...new Set(t.asks.values())] }),
        ),
      );
    }
    for (const [topic, n2] of t.notices)
      calls.push(
        this.attempt(`the ${n2.notification}`, n2.exposureIds, () =>
          remote.notifyCampaign({
            ...ref,
            key: `${this.input.campaignId}:${topic}:${chain}:${n}`,
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
        this.attempt(`the ticket ${action}`, req.exposureIds, () =>
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
        this.attempt('the verifying re-scan', req.exposureIds, () =>
          remote.requestCampaignRescan({
            ...ref,
            requestId: `${chain}:${Date.parse(fixedAt)}:${req.window}`,
            key: key(`rescan-${Date.parse(fixedAt)}`),
            exposureIds: req.exposureIds,
            assetIds: [...new Set(req.assetIds)],
            weaknessKeys: [...new Set(req.weaknessKeys)],
            notBefore: fixedAt,
          }),
        ),
      );
    await this.meanwhile(Promise.all(calls));
  }

  /** An approval round: the campaign's ticket, then its patch rollout as a child (canary first). */
  private async remediate(approved: Cell[]): Promise<void> {
    const { input, cells } = this;
    const round = ++this.round;
    for (const c of approved) cells.set(c.id, { ...c, toRemediate: undefined });
    const ids = approved.map((c) => c.id);
    const outcome = await this.meanwhile(
      this.attempt('remediation', ids, () =>
        this.remote.remediateCampaign({
          ...this.ref,
          key: `${this.chain}:round:${round}`,
          round,
          exposureIds: ids,
        }),
      ),
    );
    if (!outcome) return;
    if (outcome.ticket) this.ticket = outcome.ticket;
    // Exposures that left remediation meanwhile (a scan showed them gone) are not patched.
    const waiting = ids.filter((id) => cells.get(id)?.state === 'remediating');
    if (!outcome.patch || waiting.length === 0) return;
    const rolloutId = patchRolloutWorkflowId(input.campaignId, input.shard, round, this.generation);
    const exposures = outcome.patch.exposures.filter((e) => waiting.includes(e.exposureId));
    const assets = new Set(exposures.map((e) => e.assetId));
    const targets = outcome.patch.targets.filter((t) => assets.has(t.assetId));
    if (exposures.length === 0 || targets.length === 0) return;
    for (const id of waiting) cells.set(id, { ...cells.get(id)!, rollout: rolloutId });
    this.changed();
    try {
      await this.meanwhile(
        startChild(patchRollout, {
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
              reportTo: this.wfId,
              ...(input.heartbeatTimeoutMs ? { heartbeatTimeoutMs: input.heartbeatTimeoutMs } : {}),
            },
          ],
          // A rollout outlives the run that started it (continue-as-new).
          parentClosePolicy: ParentClosePolicy.ABANDON,
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        }),
      );
    } catch (err) {
      // Started by an earlier run of this campaign: its end arrives as a signal all the same.
      if (!(err instanceof Error && err.name === 'WorkflowExecutionAlreadyStartedError')) throw err;
    }
  }

  /** Reassigned exposures go to the new owner's campaign; they leave this one once it has them. */
  private async move(): Promise<void> {
    const byOwner = new Map<string, { by: string; cells: Cell[] }>();
    for (const [id, m] of this.leaving) {
      const cell = this.cells.get(id);
      if (!cell) continue;
      const group = byOwner.get(m.to) ?? { by: m.by, cells: [] };
      // A rollout of this campaign reports here, not to the new one: the cell waits for none there.
      group.cells.push({ ...cell, toRemediate: undefined, rollout: undefined });
      byOwner.set(m.to, group);
    }
    for (const [to, g] of byOwner) {
      await this.meanwhile(
        this.remote.moveExposures({
          ...this.ref,
          key: `${this.chain}:move:${g.cells[0]!.id}:${g.cells[0]!.seq}`,
          to,
          by: g.by,
          cells: g.cells,
        }),
      );
      for (const c of g.cells) {
        this.cells.delete(c.id);
        this.leaving.delete(c.id);
      }
    }
    this.leaving.clear();
    this.changed();
  }

  /** Closed exposures: the campaign's ticket closes when none is left open; they leave the state. */
  private async closeOut(closed: Cell[]): Promise<void> {
    await this.meanwhile(
      this.attempt(
        'closing the ticket',
        closed.map((c) => c.id),
        () =>
          this.remote.updateCampaignTicket({
            ...this.ref,
            key: `${this.chain}:close:${closed.map((c) => `${c.id}@${c.seq}`).sort()[0]}`,
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
      ),
    );
    for (const c of closed) this.cells.delete(c.id);
    this.changed();
  }

  // ---- the main loop ----------------------------------------------------------------------------

  private wakeAt(atMs: number | undefined): void {
    if (atMs === this.wakeAtMs && !this.wakeFired) return;
    this.wakeScope?.cancel();
    this.wakeScope = undefined;
    this.wakeAtMs = atMs;
    this.wakeFired = false;
    if (atMs === undefined) return;
    const scope = new CancellationScope();
    this.wakeScope = scope;
    scope
      .run(() => sleep(Math.max(1, atMs - Date.now())))
      .then(
        () => {
          if (this.wakeScope === scope) this.wakeFired = true;
        },
        () => undefined, // cancelled: another wake time replaced it
      );
  }

  private nextWakeMs(): number | undefined {
    let next: number | undefined;
    for (const c of this.cells.values()) {
      const t = nextWake(c, this.rules);
      if (t !== undefined && (next === undefined || t < next)) next = t;
    }
    return next;
  }

  /** The next piece of work the loop owes, done; false when there is none (the loop then waits). */
  private async work(): Promise<boolean> {
    while (this.inbox.length > 0) this.handle(this.inbox.shift()!);
    if (!this.turn.isEmpty()) {
      await this.flush();
      return true;
    }
    if (this.leaving.size > 0) {
      await this.move();
      return true;
    }
    const cells = [...this.cells.values()];
    const approved = cells.filter((c) => c.toRemediate && c.state === 'remediating');
    if (approved.length > 0) {
      await this.remediate(approved);
      return true;
    }
    const closed = cells.filter((c) => terminalStates.includes(c.state));
    if (closed.length > 0) {
      await this.closeOut(closed);
      return true;
    }
    return false;
  }

  /** True when the history is long enough to continue as new. */
  private historyFull(): boolean {
    const info = workflowInfo();
    return (
      info.historyLength > (this.input.historyLimit ?? DEFAULT_HISTORY_LIMIT) ||
      info.historySize > HISTORY_BYTES_LIMIT ||
      info.continueAsNewSuggested
    );
  }

  /** Continue as new with everything this run holds, the messages not yet handled included. */
  private async continueNow(): Promise<never> {
    return await continueAsNew<typeof campaignWorkflow>({
      ...this.input,
      admissions: [],
      carried: {
        cells: [...this.cells.values()],
        turn: this.turnNo,
        round: this.round,
        inbox: [...this.inbox],
        ...(this.ticket ? { ticket: this.ticket } : {}),
      },
    });
  }

  async run(): Promise<void> {
    for (const a of this.input.admissions) this.admit(a);
    this.installHandlers();
    for (;;) {
      if (await this.work()) {
        // A campaign that never runs out of work (a message arriving during each round's records)
        // still continues as new when its history is full, carrying the messages it has not handled.
        if (
          this.historyFull() &&
          allHandlersFinished() &&
          this.turn.isEmpty() &&
          this.leaving.size === 0 &&
          this.cells.size > 0 &&
          patched('continue-as-new-while-busy')
        )
          return await this.continueNow();
        continue;
      }
      if (this.cells.size === 0) {
        this.wakeAt(undefined);
        // Finish when all handlers are done; an admission that raced the end is handled above.
        await condition(allHandlersFinished);
        if (this.inbox.length === 0 && this.cells.size === 0 && this.turn.isEmpty()) return;
        continue;
      }
      if (this.historyFull()) {
        // A handler still running waits for its records: the loop writes them first.
        await condition(() => allHandlersFinished() || !this.turn.isEmpty());
        if (
          allHandlersFinished() &&
          this.inbox.length === 0 &&
          this.turn.isEmpty() &&
          this.leaving.size === 0
        ) {
          return await this.continueNow();
        }
        continue;
      }
      const seen = this.version;
      this.wakeAt(this.nextWakeMs());
      await condition(() => this.version !== seen || this.wakeFired);
      if (this.wakeFired) {
        this.wakeAt(undefined);
        const now = Date.now();
        for (const c of [...this.cells.values()]) {
          const t = nextWake(c, this.rules);
          if (t !== undefined && t <= now) this.apply(c, { kind: 'time' });
        }
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
