// From a scan's diff to the exposure workflows it concerns — only those whose state changes (new,
// gone, back, retired, seen again while a fix is being verified); "still here" signals nothing.
// Per batch: one query for current states, triage and remediation units set-based, the "triaged"
// transitions written in two statements, then the workflows started (conflict policy USE_EXISTING,
// eagerly when the client shares a worker's connection) unit by unit, each unit's owner asked once
// as soon as its workflows exist, or signalled, with bounded concurrency; last, the new exposures'
// records in one statement.
import { WorkflowIdConflictPolicy, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';
import { authorizationContext } from '../domain/authorization.ts';
import type { Config } from '../domain/config.ts';
import type { Clock } from '../domain/clock.ts';
import type { Integrations } from '../domain/ports.ts';
import {
  awaitingDecisionReason,
  decisionRequestKey,
  decisionWhy,
  validatedReason,
} from '../domain/exposureAdmission.ts';
import { exposureWorkflowId, terminalStates, type ExposureState } from '../domain/exposure.ts';
import { pino } from 'pino';
import type { Pool, PoolClient } from '../runtime/pool.ts';
import type { Deps } from '../runtime/deps.ts';
import { LIFECYCLE_REVISION, type ExposureWorkflowInput } from '../contracts/exposureInput.ts';
import { absentSignal, exposureWorkflowType, observedSignal } from '../contracts/exposure.ts';
import { lifecycleRulesFor } from './settings.ts';
import { Triage, type TriageResult } from './triage.ts';
import { assignUnits } from './units.ts';
import { notificationEvent, sendNotification } from './notify.ts';
import { systemClock } from '../runtime/clock.ts';

export type ChangeKind = 'new' | 'gone' | 'reappeared' | 'retired' | 'seen';

export interface ExposureChange {
  exposureId: string;
  change: ChangeKind;
  scanId: number;
  /** ISO time of the scan. */
  at: string;
}

export interface DispatchDeps {
  pool: Pool;
  config: Config;
  baseDir: string;
  /** The notifiers the owners are asked through. */
  integrations: Integrations;
  log?: Logger;
  /** What time it is for the triage's deadlines (default: the system clock). */
  clock?: Clock;
}

export interface DispatchOptions {
  taskQueue: string;
  /** Changes handled per database round (default 1,000). */
  batchSize?: number;
  /** Temporal requests in flight at once (default 64). */
  concurrency?: number;
  /** Called after each batch (activities heartbeat from it). */
  onProgress?: (done: number, total: number) => void;
  /** Passed to every started workflow (tests lower it to exercise continue-as-new). */
  historyLimit?: number;
  /** Passed to every started workflow (tests lower it to see a killed worker sooner). */
  heartbeatTimeoutMs?: number;
}

export interface DispatchResult {
  started: number;
  /** Of those, started eagerly: their first task came back in the start response. */
  eagerlyStarted: number;
  signalled: number;
  /** Changes that need no workflow (a false positive seen again, a change already dispatched…). */
  skipped: number;
  /** Where the time went, in ms. */
  phasesMs: { read: number; triage: number; record: number; temporal: number; notify: number };
}

/** Exposure rows whose lifecycle is closed; a change on them may start a new one. */
const closed: readonly ExposureState[] = ['resolved', 'retired'];

async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(runners);
}

/** The diff of one scan as ingest recorded it (exposures.first_scan_id and scan_changes). */
export async function scanChangeList(pool: Pool, scanId: number): Promise<ExposureChange[]> {
  const { rows } = await pool.query<{ exposure_id: string; change: ChangeKind; at: Date }>(
    `with scan as (select id, coalesce(finished_at, started_at, imported_at) as at from scans where id = $1)
     select e.id as exposure_id, 'new' as change, scan.at from exposures e, scan where e.first_scan_id = scan.id
     union all
     select c.exposure_id, c.change, scan.at from scan_changes c, scan where c.scan_id = scan.id
     union all
     -- Still seen by this scan while its fix is being verified: the fix did not work.
     select e.id, 'seen', scan.at from exposures e, scan
      where e.last_scan_id = scan.id and e.present and e.state = 'verifying' and e.first_scan_id <> scan.id
     union all
     -- Covered by this scan and still not seen while its fix is being verified: the evidence the
     -- workflow waits for, although nothing changed (it was already absent from an earlier scan,
     -- one that ran before the fix and so proved nothing).
     select e.id, 'gone', scan.at
       from scan
       join scans s on s.id = scan.id
       join scan_assets sa on sa.scan_id = scan.id
       join exposures e on e.asset_id = sa.asset_id
      where e.state = 'verifying' and not e.present
        and (s.covered_keys is null or e.vuln_key = any(s.covered_keys))
        and not exists (select 1 from scan_changes c where c.scan_id = scan.id and c.exposure_id = e.id)
     order by 1, 2`,
    [scanId],
  );
  return rows.map((r) => ({ exposureId: r.exposure_id, change: r.change, scanId, at: r.at.toISOString() }));
}

/** Marks a row the dispatcher wrote for a workflow that has not written it yet. */
const DISPATCH_RUN = 'dispatch:';

interface Judged extends TriageResult {
  scanId: number;
  at: string;
}

/** The row every triaged exposure gets, and its "triaged" event: one statement each for the batch. */
async function writeTriaged(
  db: PoolClient,
  rows: Judged[],
  state: 'triaged' | 'awaiting-decision',
  run: string | null,
): Promise<void> {
  // Only rows no lifecycle has written yet: a retried dispatch never moves a live row back.
  await db.query(
    `update exposures e set state = $2, priority = j.outcome, sla_due = j."slaDue", reasons = j.reasons,
            policy_version = j."policyVersion", policy_hash = j."policyHash", decided_at = now(),
            cvss_contextual = j."contextualCvss", kev = coalesce(j.kev, false),
            lifecycle_seq = 0, workflow_run = $3, resolved_at = null, fixed_at = null, verified_at = null,
            verified_scan_id = null, exposure_seconds = null, escalation_level = -1, sla_breached_at = null,
            sla_paused = false, snoozed_until = null, risk_accepted_until = null, risk_accepted_by = null,
            updated_at = now()
       from jsonb_to_recordset($1::jsonb) as j("exposureId" text, outcome text, "slaDue" timestamptz, reasons jsonb,
            "policyVersion" text, "policyHash" text, "contextualCvss" real, kev boolean)
      where e.id = j."exposureId"
        and (e.state in ('open', 'resolved', 'retired') or e.workflow_run is null or e.workflow_run like '${DISPATCH_RUN}%')`,
    [JSON.stringify(rows), state, run],
  );
}

interface EventRow {
  exposureId: string;
  /** ISO time; the batch's time, so its events sort before anything its workflows record later. */
  at?: string;
  type: string;
  reason: string;
  data: Record<string, unknown>;
  key: string;
}

async function insertEvents(db: PoolClient, events: EventRow[]): Promise<void> {
  await db.query(
    `insert into events (exposure_id, at, type, actor, reason, data, idempotency_key)
     select r."exposureId", coalesce(r.at, now()), r.type, 'system', r.reason, r.data, r.key
       from jsonb_to_recordset($1::jsonb) as r("exposureId" text, at timestamptz, type text, reason text, data jsonb, key text)
     on conflict (idempotency_key) do nothing`,
    [JSON.stringify(events)],
  );
}

function triagedEvent(j: Judged): EventRow {
  return {
    exposureId: j.exposureId,
    type: 'triaged',
    reason: `${j.priority}: ${j.summary}`,
    data: {
      from: 'open',
      to: 'triaged',
      policyVersion: j.policyVersion,
      inputs: { reasons: j.reasons, slaDue: j.slaDue, policyHash: j.policyHash },
      evidence: { scanId: j.scanId, at: j.at },
    },
    key: `${j.exposureId}:triaged:${j.scanId}`,
  };
}

async function inTransaction(pool: Pool, fn: (c: PoolClient) => Promise<void>): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('begin');
    await fn(c);
    await c.query('commit');
  } catch (err) {
    await c.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

/** What every batch of one dispatch shares. */
interface Dispatch {
  pool: Pool;
  config: Config;
  /** The dispatch's deps as the notification activities take them. */
  activityDeps: Deps;
  client: Client;
  opts: DispatchOptions;
  concurrency: number;
  triage: Triage;
  result: DispatchResult;
}

interface Start {
  change: ExposureChange;
  reopenedFrom?: ExposureState;
}

interface Signal {
  change: ExposureChange;
  kind: 'observed' | 'absent' | 'retired';
}

type Units = Awaited<ReturnType<typeof assignUnits>>;

type NotificationOutcome = Awaited<ReturnType<typeof sendNotification>>;

interface ExposureRow {
  id: string;
  state: ExposureState;
  workflow_run: string | null;
}

/** A batch's exposures as they stand, and its changes already dispatched (scan|exposure|change). */
interface BatchState {
  stateOf: Map<string, ExposureRow>;
  already: Set<string>;
}

async function readBatchState(pool: Pool, batch: ExposureChange[]): Promise<BatchState> {
  const ids = [...new Set(batch.map((c) => c.exposureId))];
  const [{ rows: current }, { rows: done }] = await Promise.all([
    pool.query<ExposureRow>('select id, state, workflow_run from exposures where id = any($1::text[])', [
      ids,
    ]),
    pool.query<{ exposure_id: string; scan_id: number; change: string }>(
      'select exposure_id, scan_id, change from lifecycle_dispatches where exposure_id = any($1::text[])',
      [ids],
    ),
  ]);
  const stateOf = new Map(current.map((r) => [r.id, r]));
  const already = new Set(done.map((d) => `${d.scan_id}|${d.exposure_id}|${d.change}`));
  return { stateOf, already };
}

/** Which changes start a workflow and which signal one; the rest are counted as skipped. */
function sortChanges(
  batch: ExposureChange[],
  { stateOf, already }: BatchState,
  result: DispatchResult,
): { starts: Start[]; signals: Signal[] } {
  const starts: Start[] = [];
  const signals: Signal[] = [];
  for (const change of batch) {
    const row = stateOf.get(change.exposureId);
    if (!row || already.has(`${change.scanId}|${change.exposureId}|${change.change}`)) {
      result.skipped++;
      continue;
    }
    // No workflow has written this row: none started, or the dispatcher wrote it and its start
    // may not have happened (a retry after a crash; starting again is harmless, USE_EXISTING).
    const notStarted =
      row.state === 'open' || row.workflow_run === null || row.workflow_run.startsWith(DISPATCH_RUN);
    const live = row.state !== 'open' && !terminalStates.includes(row.state);
    switch (change.change) {
      case 'new':
        if (notStarted) starts.push({ change });
        else result.skipped++;
        break;
      case 'reappeared':
        if (closed.includes(row.state)) starts.push({ change, reopenedFrom: row.state });
        else if (live) signals.push({ change, kind: 'observed' });
        else result.skipped++; // false positive: the scanner keeps reporting it, as expected
        break;
      case 'gone':
        if (live) signals.push({ change, kind: 'absent' });
        else result.skipped++;
        break;
      case 'retired':
        // Ingest already closed the row as retired; a running lifecycle still has to hear it.
        if (row.workflow_run !== null || live) signals.push({ change, kind: 'retired' });
        else result.skipped++;
        break;
      case 'seen':
        if (live) signals.push({ change, kind: 'observed' });
        else result.skipped++;
        break;
    }
  }
  return { starts, signals };
}

/** The triage of every exposure to start, with the change that starts it, and their units. */
async function triageStarts(
  d: Dispatch,
  starts: Start[],
): Promise<{ triaged: Map<string, Judged>; units: Units }> {
  const startIds = starts.map((s) => s.change.exposureId);
  const triaged = new Map<string, Judged>();
  for (const j of await d.triage.triage(d.pool, startIds, new Date(d.activityDeps.clock())))
    triaged.set(j.exposureId, { ...j, scanId: 0, at: '' });
  for (const s of starts) {
    const j = triaged.get(s.change.exposureId);
    if (j) triaged.set(j.exposureId, { ...j, scanId: s.change.scanId, at: s.change.at });
  }
  const units = await assignUnits(d.pool, d.config, startIds);
  return { triaged, units };
}

/** Writes the triaged rows; returns the new exposures (those not reopened), whose owners are asked. */
async function recordTriaged(pool: Pool, starts: Start[], triaged: Map<string, Judged>): Promise<Judged[]> {
  // A lifecycle coming back after it closed is told by its workflow (reopened → validated → asked).
  const reopened = starts
    .filter((s) => s.reopenedFrom && triaged.has(s.change.exposureId))
    .map((s) => triaged.get(s.change.exposureId)!);
  if (reopened.length)
    await inTransaction(pool, async (c) => {
      await writeTriaged(c, reopened, 'triaged', null);
      await insertEvents(c, reopened.map(triagedEvent));
    });
  // New exposures get their row (priority, deadline, awaiting-decision) before anyone is told: the
  // decision request describes the unit from these rows. Their events follow the notification.
  const fresh = starts
    .filter((s) => !s.reopenedFrom && triaged.has(s.change.exposureId))
    .map((s) => triaged.get(s.change.exposureId)!);
  if (fresh.length)
    await inTransaction(pool, async (c) => {
      await writeTriaged(c, fresh, 'awaiting-decision', `${DISPATCH_RUN}${fresh[0]!.scanId}`);
    });
  return fresh;
}

/** Starts one exposure's workflow from its triage; one per batch, as it memoizes per scope. */
function workflowStarter(
  d: Dispatch,
  triaged: Map<string, Judged>,
  units: Units,
): (start: Start) => Promise<void> {
  const { config, client, opts, result } = d;
  const authByScope = new Map<string, ReturnType<typeof authorizationContext>>();
  const rulesByScope = new Map<string, ReturnType<typeof lifecycleRulesFor>>();
  const scopeParts = (scope: string) => {
    if (!authByScope.has(scope)) {
      authByScope.set(scope, authorizationContext(config, scope));
      rulesByScope.set(scope, lifecycleRulesFor(config, scope));
    }
    return { authorization: authByScope.get(scope)!, rules: rulesByScope.get(scope)! };
  };
  // A client on a worker's own connection (an activity's, or a process that runs the worker) asks
  // for eager start: the server hands the new workflow's first task straight back in the start
  // response to that worker, skipping the task queue. Any other client starts them as usual.
  const eager = client.connection instanceof NativeConnection;
  return async ({ change, reopenedFrom }: Start): Promise<void> => {
    const j = triaged.get(change.exposureId);
    if (!j) return;
    const unit = units.get(change.exposureId);
    const input: ExposureWorkflowInput = {
      exposureId: j.exposureId,
      scope: j.scope,
      assetId: j.assetId,
      weaknessKey: j.weaknessKey,
      firstSeen: j.firstSeen,
      ...(unit?.owner ? { owner: unit.owner } : {}),
      ...(unit ? { remediationUnitId: unit.unitId } : {}),
      triage: {
        priority: j.priority,
        slaDue: j.slaDue,
        reasons: j.reasons,
        policyVersion: j.policyVersion,
        contextualCvss: j.contextualCvss,
        kev: j.kev,
        scanId: change.scanId,
        observedAt: change.at,
      },
      triageRecorded: true,
      revision: LIFECYCLE_REVISION,
      // New exposures are validated and their owners asked here, set-based, per unit: the
      // workflow starts waiting for the decision, with no activity to run first.
      ...(reopenedFrom ? { reopenedFrom } : { decisionRequested: true }),
      ...scopeParts(j.scope),
      ...(opts.historyLimit ? { historyLimit: opts.historyLimit } : {}),
      ...(opts.heartbeatTimeoutMs ? { heartbeatTimeoutMs: opts.heartbeatTimeoutMs } : {}),
    };
    const workflowId = exposureWorkflowId(j.exposureId);
    if (reopenedFrom)
      // Back after it was closed: start a new lifecycle, or tell the one still closing out.
      await client.workflow.signalWithStart(exposureWorkflowType, {
        workflowId,
        taskQueue: opts.taskQueue,
        args: [input],
        signal: observedSignal,
        signalArgs: [{ scanId: change.scanId, at: change.at }],
      });
    else {
      const handle = await client.workflow.start(exposureWorkflowType, {
        workflowId,
        taskQueue: opts.taskQueue,
        args: [input],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        ...(eager ? { requestEagerStart: true } : {}),
      });
      if (handle.eagerlyStarted) result.eagerlyStarted++;
    }
    result.started++;
  };
}

/** The new exposures by remediation unit (an exposure without one is its own). */
function groupByUnit(fresh: Judged[], units: Units): Map<string, Judged[]> {
  const byUnit = new Map<string, Judged[]>();
  for (const j of fresh) {
    const unitId = units.get(j.exposureId)?.unitId ?? j.exposureId;
    const members = byUnit.get(unitId);
    if (members) members.push(j);
    else byUnit.set(unitId, [j]);
  }
  return byUnit;
}

/**
 * New exposures go unit by unit: a unit's workflows are started, then its owner is asked once,
 * while other units are still starting (the owner's answer finds every workflow there). The
 * exposures reopened after closing start alongside; their workflows ask for themselves.
 * Returns each unit's notification and the notifications' summed time.
 */
async function startAndAsk(
  d: Dispatch,
  starts: Start[],
  startOne: (start: Start) => Promise<void>,
  byUnit: Map<string, Judged[]>,
  units: Units,
): Promise<{ outcomes: Map<string, NotificationOutcome>; notifyMs: number }> {
  const startOf = new Map(starts.map((s) => [s.change.exposureId, s]));
  const outcomes = new Map<string, NotificationOutcome>();
  let notifyMs = 0;
  await Promise.all([
    inParallel(
      starts.filter((s) => s.reopenedFrom),
      Math.max(1, d.concurrency >> 2),
      startOne,
    ),
    inParallel([...byUnit.entries()], d.concurrency, async ([unitId, members]) => {
      for (const j of members) await startOne(startOf.get(j.exposureId)!);
      const n = performance.now();
      const first = members[0]!;
      const unit = units.get(first.exposureId);
      outcomes.set(
        unitId,
        await sendNotification(d.activityDeps, {
          key: decisionRequestKey(unitId, first.scanId),
          kind: 'decision-request',
          scope: first.scope,
          ...(unit?.owner ? { owner: unit.owner } : {}),
          ...(unit ? { unitId: unit.unitId } : {}),
          exposureId: first.exposureId,
          audiences: ['owner'],
          text: 'a decision is needed (new exposure)',
        }),
      );
      notifyMs += performance.now() - n;
    }),
  ]);
  return { outcomes, notifyMs };
}

/** Tells running lifecycles what the scan saw. */
async function signalWorkflows(d: Dispatch, signals: Signal[]): Promise<void> {
  const { client, result } = d;
  await inParallel(signals, d.concurrency, async ({ change, kind }) => {
    const handle = client.workflow.getHandle(exposureWorkflowId(change.exposureId));
    try {
      if (kind === 'observed') await handle.signal(observedSignal, { scanId: change.scanId, at: change.at });
      else
        await handle.signal(absentSignal, {
          scanId: change.scanId,
          at: change.at,
          ...(kind === 'retired' ? { assetRetired: true } : {}),
        });
      result.signalled++;
    } catch (err) {
      // Its lifecycle has already closed: nothing is waiting for this news.
      if (err instanceof WorkflowNotFoundError) result.skipped++;
      else throw err;
    }
  });
}

/** A unit's new exposures' events: triaged → validated → notified (with the receipt) → awaiting-decision. */
function decisionRequestedEvents(
  unitId: string,
  members: Judged[],
  outcome: NotificationOutcome,
): EventRow[] {
  const events: EventRow[] = [];
  const { channels: _channels, ...receipt } = outcome;
  const notice = notificationEvent('decision-request', outcome);
  for (const j of members) {
    events.push(
      triagedEvent(j),
      {
        exposureId: j.exposureId,
        type: 'validated',
        reason: validatedReason(j.scanId, j.reasons),
        data: {
          from: 'triaged',
          to: 'validated',
          policyVersion: j.policyVersion,
          evidence: { scanId: j.scanId, at: j.at, reasons: j.reasons },
        },
        key: `${j.exposureId}:validated:${j.scanId}`,
      },
      {
        exposureId: j.exposureId,
        type: notice.type,
        reason: notice.reason,
        data: {
          notificationKey: decisionRequestKey(unitId, j.scanId),
          kind: 'decision-request',
          audiences: ['owner'],
          receipt,
        },
        key: `${j.exposureId}:notified:${j.scanId}`,
      },
      {
        exposureId: j.exposureId,
        type: 'awaiting-decision',
        reason: awaitingDecisionReason(decisionWhy()),
        data: {
          from: 'validated',
          to: 'awaiting-decision',
          policyVersion: j.policyVersion,
          evidence: { notification: receipt },
        },
        key: `${j.exposureId}:awaiting-decision:${j.scanId}`,
      },
    );
  }
  return events;
}

/** Record triaged → validated → notified → awaiting-decision for every new exposure at once. */
async function recordDecisionRequests(
  pool: Pool,
  byUnit: Map<string, Judged[]>,
  outcomes: Map<string, NotificationOutcome>,
  batchAt: number,
): Promise<void> {
  await inTransaction(pool, async (c) => {
    const events = [...byUnit].flatMap(([unitId, members]) =>
      decisionRequestedEvents(unitId, members, outcomes.get(unitId)!),
    );
    // Milliseconds apart, in order, all before the workflows started.
    await insertEvents(
      c,
      events.map((e, i) => ({ ...e, at: new Date(batchAt - events.length + i).toISOString() })),
    );
  });
}

/** The batch's changes, marked dispatched: a retry skips them. */
async function recordDispatched(pool: Pool, batch: ExposureChange[]): Promise<void> {
  await pool.query(
    `insert into lifecycle_dispatches (scan_id, exposure_id, change)
     select c."scanId", c."exposureId", c.change from jsonb_to_recordset($1::jsonb) as c("scanId" bigint, "exposureId" text, change text)
     on conflict do nothing`,
    [JSON.stringify(batch.map((c) => ({ scanId: c.scanId, exposureId: c.exposureId, change: c.change })))],
  );
}

async function dispatchBatch(d: Dispatch, batch: ExposureChange[]): Promise<void> {
  const { pool, result } = d;
  let t = performance.now();
  const state = await readBatchState(pool, batch);
  result.phasesMs.read += performance.now() - t;
  const { starts, signals } = sortChanges(batch, state, result);

  t = performance.now();
  const { triaged, units } = await triageStarts(d, starts);
  result.phasesMs.triage += performance.now() - t;

  t = performance.now();
  const fresh = await recordTriaged(pool, starts, triaged);
  result.phasesMs.record += performance.now() - t;

  t = performance.now();
  const batchAt = d.activityDeps.clock();
  const startOne = workflowStarter(d, triaged, units);
  const byUnit = groupByUnit(fresh, units);
  const { outcomes, notifyMs } = await startAndAsk(d, starts, startOne, byUnit, units);
  await signalWorkflows(d, signals);
  // Wall time of the starts with the notifications among them; notify is the notifications'
  // summed time divided by the concurrency, an estimate of their share.
  const notifyShare = notifyMs / Math.max(1, Math.min(d.concurrency, byUnit.size));
  result.phasesMs.notify += notifyShare;
  result.phasesMs.temporal += performance.now() - t - notifyShare;

  t = performance.now();
  if (fresh.length) await recordDecisionRequests(pool, byUnit, outcomes, batchAt);
  result.phasesMs.record += performance.now() - t;

  await recordDispatched(pool, batch);
}

export async function dispatchChanges(
  deps: DispatchDeps,
  client: Client,
  changes: ExposureChange[],
  opts: DispatchOptions,
): Promise<DispatchResult> {
  const { pool, config } = deps;
  const batchSize = opts.batchSize ?? 1_000;
  const result: DispatchResult = {
    started: 0,
    eagerlyStarted: 0,
    signalled: 0,
    skipped: 0,
    phasesMs: { read: 0, triage: 0, record: 0, temporal: 0, notify: 0 },
  };
  const d: Dispatch = {
    pool,
    config,
    activityDeps: {
      ...deps,
      log: deps.log ?? pino({ level: 'silent' }),
      workerName: 'dispatch',
      clock: deps.clock ?? systemClock,
    },
    client,
    opts,
    concurrency: opts.concurrency ?? 64,
    triage: new Triage(config, deps.baseDir),
    result,
  };

  for (let offset = 0; offset < changes.length; offset += batchSize) {
    await dispatchBatch(d, changes.slice(offset, offset + batchSize));
    opts.onProgress?.(Math.min(offset + batchSize, changes.length), changes.length);
  }
  deps.log?.info({ ...result, changes: changes.length }, 'lifecycle dispatch');
  return result;
}

/** Dispatch everything one ingested scan changed. */
export async function dispatchScan(
  deps: DispatchDeps,
  client: Client,
  scanId: number,
  opts: DispatchOptions,
): Promise<DispatchResult & { changes: number }> {
  const changes = await scanChangeList(deps.pool, scanId);
  return { ...(await dispatchChanges(deps, client, changes, opts)), changes: changes.length };
}
