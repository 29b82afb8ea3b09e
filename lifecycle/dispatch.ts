// From a scan's diff to the campaigns it concerns — only exposures whose state changes (new, gone,
// back, retired, seen again while a fix is being verified); "still here" signals nothing. Per batch:
// one query for current states; triage, admission rows and campaign placement set-based; then one
// start (eager where the client shares a worker's connection) or one signal per campaign workflow,
// never one per exposure; the owner asked once per campaign at once when the notification policy
// calls it urgent (else the daily queue lists it); last, the admissions' records in one statement.
// A backlog import (`baseline`) asks nobody: each owner gets one summary at the end.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { pino } from 'pino';
import type { Config } from '../domain/config.ts';
import type { Clock } from '../domain/clock.ts';
import type { Integrations } from '../domain/ports.ts';
import { awaitingDecisionReason, decisionWhy, validatedReason } from '../domain/exposureAdmission.ts';
import { terminalStates, type ExposureState } from '../domain/exposure.ts';
import { newCell } from '../domain/lifecycle.ts';
import type { Pool, PoolClient } from '../runtime/pool.ts';
import { inTransaction } from '../runtime/pool.ts';
import type { Deps } from '../runtime/deps.ts';
import {
  campaignWorkflowId,
  scanChangesSignal,
  type Admission,
  type ScanChange,
} from '../contracts/campaign.ts';
import type { NotifyOutcome } from '../contracts/lifecycle.ts';
import { systemClock } from '../runtime/clock.ts';
import { Triage, type TriageResult } from './triage.ts';
import { assignCampaigns, type CampaignPlace } from './campaigns.ts';
import { admitToCampaigns, inParallel, type CampaignStartOptions } from './campaignStart.ts';
import { onboardingBaseline, onboardingGraceMs } from './settings.ts';
import { askOnAdmission, sendOnboardingSummaries } from './admissionNotices.ts';

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

export interface DispatchOptions extends CampaignStartOptions {
  /** Changes handled per database round (default 2,000). */
  batchSize?: number;
  /** Called after each batch (activities heartbeat from it). */
  onProgress?: (done: number, total: number) => void;
  /**
   * A backlog import: exposures are filed into campaigns silently (nobody is asked at once), and each
   * owner gets one summary of what was filed for them.
   */
  baseline?: boolean;
  /** Exposures one campaign workflow holds at most (default 1,000). */
  shardCap?: number;
}

export interface DispatchResult {
  /** Campaign workflows started. */
  started: number;
  /** Of those, started eagerly: their first task came back in the start response. */
  eagerlyStarted: number;
  /** Campaign workflows told (admissions or scan changes). */
  signalled: number;
  /** Exposures admitted into campaigns. */
  admitted: number;
  /** Campaigns whose owner was asked at once (urgent under the notification policy). */
  asked: number;
  /** Changes that need no workflow (a false positive seen again, a change already dispatched…). */
  skipped: number;
  /** Where the time went, in ms. */
  phasesMs: { read: number; triage: number; record: number; temporal: number; notify: number };
}

/** Exposure rows whose lifecycle is closed; a change on them may start a new one. */
const closed: readonly ExposureState[] = ['resolved', 'retired'];

/** The lifecycle a scan starts for an exposure (new, or back after it closed). */
export function lifecycleOf(scanId: number): string {
  return `s${scanId}`;
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
     -- campaign waits for, although nothing changed (it was already absent from an earlier scan,
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

interface Judged extends TriageResult {
  scanId: number;
  at: string;
  reopenedFrom?: ExposureState;
}

interface EventRow {
  exposureId: string;
  /** ISO time; the batch's time, so its events sort before anything its campaigns record later. */
  at?: string;
  type: string;
  reason: string;
  data: Record<string, unknown>;
  key: string;
}

async function insertEvents(db: Pool | PoolClient, events: EventRow[]): Promise<void> {
  if (events.length === 0) return;
  await db.query(
    `insert into events (exposure_id, at, type, actor, reason, data, idempotency_key)
     select r."exposureId", coalesce(r.at, now()), r.type, 'system', r.reason, r.data, r.key
       from jsonb_to_recordset($1::jsonb) as r("exposureId" text, at timestamptz, type text, reason text, data jsonb, key text)
     on conflict (idempotency_key) do nothing`,
    [JSON.stringify(events)],
  );
}

/**
 * The rows of a new lifecycle: triaged and placed, in the state the campaign starts them in. Only
 * rows no lifecycle has moved on yet: a retried dispatch never moves a live row back.
 */
async function writeAdmitted(db: PoolClient, rows: (Judged & { state: ExposureState; lifecycle: string })[]) {
  await db.query(
    `update exposures e set state = j.state, priority = j.outcome, sla_due = j."slaDue", sla_start = j."slaStart",
            reasons = j.reasons, policy_version = j."policyVersion", policy_hash = j."policyHash", decided_at = now(),
            cvss_contextual = j."contextualCvss", kev = coalesce(j.kev, false),
            lifecycle_seq = 0, workflow_run = j.lifecycle, resolved_at = null, fixed_at = null, verified_at = null,
            verified_scan_id = null, exposure_seconds = null, escalation_level = -1, sla_breached_at = null,
            sla_paused = false, snoozed_until = null, risk_accepted_until = null, risk_accepted_by = null,
            updated_at = now()
       from jsonb_to_recordset($1::jsonb) as j("exposureId" text, state text, outcome text, "slaDue" timestamptz,
            "slaStart" timestamptz, reasons jsonb, "policyVersion" text, "policyHash" text, "contextualCvss" real,
            kev boolean, lifecycle text)
      where e.id = j."exposureId"
        and (e.state in ('open', 'resolved', 'retired') or e.workflow_run is null
             or (e.workflow_run = j.lifecycle and e.lifecycle_seq = 0))`,
    [JSON.stringify(rows)],
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
      inputs: { reasons: j.reasons, slaDue: j.slaDue, slaStart: j.slaStart, policyHash: j.policyHash },
      evidence: { scanId: j.scanId, at: j.at },
    },
    key: `${j.exposureId}:triaged:${j.scanId}`,
  };
}

/** A new exposure's admission: triaged → validated → (asked or queued) → awaiting-decision. */
function admissionEvents(
  j: Judged,
  notice: { type: string; reason: string; data: Record<string, unknown> },
): EventRow[] {
  return [
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
    { exposureId: j.exposureId, ...notice, key: `${j.exposureId}:notified:${j.scanId}` },
    {
      exposureId: j.exposureId,
      type: 'awaiting-decision',
      reason: awaitingDecisionReason(decisionWhy()),
      data: { from: 'validated', to: 'awaiting-decision', policyVersion: j.policyVersion },
      key: `${j.exposureId}:awaiting-decision:${j.scanId}`,
    },
  ];
}

/** What every batch of one dispatch shares. */
interface Dispatch {
  pool: Pool;
  config: Config;
  /** The dispatch's deps as the notification functions take them. */
  activityDeps: Deps;
  client: Client;
  opts: DispatchOptions;
  triage: Triage;
  result: DispatchResult;
  /** Scope → when its onboarding started (ctem first learned of an exposure in it). */
  onboarding: Map<string, number>;
  /** Scopes whose first import this is, and which treat it as a backlog import (onboardingBaseline). */
  baselineScopes: Set<string>;
}

interface Admit {
  change: ExposureChange;
  reopenedFrom?: ExposureState;
}

interface Tell {
  change: ExposureChange;
  kind: ScanChange['kind'];
  place: { campaignId: string; shard: number };
}

interface BatchRow {
  id: string;
  state: ExposureState;
  workflow_run: string | null;
  lifecycle_seq: number;
  campaign_id: string | null;
  campaign_shard: number | null;
  learned_at: Date;
  scope: string | null;
}

/** A batch's exposures as they stand, and its changes already dispatched (scan|exposure|change). */
async function readBatchState(pool: Pool, batch: ExposureChange[]) {
  const ids = [...new Set(batch.map((c) => c.exposureId))];
  const [{ rows: current }, { rows: done }] = await Promise.all([
    pool.query<BatchRow>(
      `select id, state, workflow_run, lifecycle_seq, campaign_id, campaign_shard, learned_at, scope
         from exposures where id = any($1::text[])`,
      [ids],
    ),
    pool.query<{ exposure_id: string; scan_id: number; change: string }>(
      'select exposure_id, scan_id, change from lifecycle_dispatches where exposure_id = any($1::text[])',
      [ids],
    ),
  ]);
  return {
    stateOf: new Map(current.map((r) => [r.id, r])),
    already: new Set(done.map((d) => `${d.scan_id}|${d.exposure_id}|${d.change}`)),
  };
}

/** Which changes admit an exposure into its campaign and which tell its campaign; the rest are skipped. */
function sortChanges(
  batch: ExposureChange[],
  { stateOf, already }: Awaited<ReturnType<typeof readBatchState>>,
  result: DispatchResult,
): { admits: Admit[]; tells: Tell[] } {
  const admits: Admit[] = [];
  const tells: Tell[] = [];
  for (const change of batch) {
    const row = stateOf.get(change.exposureId);
    if (!row || already.has(`${change.scanId}|${change.exposureId}|${change.change}`)) {
      result.skipped++;
      continue;
    }
    const live = row.state !== 'open' && !terminalStates.includes(row.state);
    const place =
      row.campaign_id !== null && row.campaign_shard !== null
        ? { campaignId: row.campaign_id, shard: row.campaign_shard }
        : undefined;
    const tell = (kind: ScanChange['kind']) => {
      if (place) tells.push({ change, kind, place });
      // A lifecycle of the previous release not yet migrated (ctem migrate lifecycles).
      else result.skipped++;
    };
    switch (change.change) {
      case 'new':
        // New, or admitted by a dispatch that did not finish (its campaign keeps the first admission).
        if (
          row.state === 'open' ||
          (row.workflow_run === lifecycleOf(change.scanId) && row.lifecycle_seq === 0)
        )
          admits.push({ change });
        else result.skipped++;
        break;
      case 'reappeared':
        if (closed.includes(row.state)) admits.push({ change, reopenedFrom: row.state });
        else if (live) tell('observed');
        else result.skipped++; // false positive: the scanner keeps reporting it, as expected
        break;
      case 'gone':
        if (live) tell('absent');
        else result.skipped++;
        break;
      case 'retired':
        // Ingest already closed the row as retired; a running lifecycle still has to hear it.
        if (row.workflow_run !== null || live) tell('retired');
        else result.skipped++;
        break;
      case 'seen':
        if (live) tell('observed');
        else result.skipped++;
        break;
    }
  }
  return { admits, tells };
}

/** When each admitted exposure's SLA clock starts: now, or after its scope's onboarding grace. */
async function clockStarts(
  d: Dispatch,
  admits: Admit[],
  rows: Map<string, BatchRow>,
): Promise<Map<string, { at: Date; because: string }>> {
  const now = d.activityDeps.clock();
  const scopes = [...new Set(admits.map((a) => rows.get(a.change.exposureId)?.scope ?? 'unscoped'))];
  const missing = scopes.filter((s) => !d.onboarding.has(s) && onboardingGraceMs(d.config, s) > 0);
  if (missing.length) {
    const { rows: firsts } = await d.pool.query<{ scope: string; first: Date }>(
      'select scope, min(learned_at) as first from exposures where scope = any($1::text[]) group by scope',
      [missing],
    );
    for (const f of firsts) d.onboarding.set(f.scope, f.first.getTime());
  }
  const out = new Map<string, { at: Date; because: string }>();
  for (const a of admits) {
    const row = rows.get(a.change.exposureId)!;
    const scope = row.scope ?? 'unscoped';
    // A new exposure's clock starts when ctem learned of it; one back after it closed, now.
    const learned = a.reopenedFrom ? now : row.learned_at.getTime();
    const grace = onboardingGraceMs(d.config, scope);
    const graceEnds = grace > 0 ? (d.onboarding.get(scope) ?? learned) + grace : 0;
    out.set(
      a.change.exposureId,
      graceEnds > learned
        ? { at: new Date(graceEnds), because: `the end of scope ${scope}'s onboarding grace` }
        : { at: new Date(learned), because: a.reopenedFrom ? 'it came back' : 'ctem learned of it' },
    );
  }
  return out;
}

/** A batch after its database work: triaged, written, placed; ready for its campaigns. */
interface Prepared {
  batch: ExposureChange[];
  judged: Judged[];
  places: Map<string, CampaignPlace>;
  tells: Tell[];
}

/** The database half of a batch: current states, triage, the admitted rows and their campaigns. */
async function prepareBatch(d: Dispatch, batch: ExposureChange[]): Promise<Prepared> {
  const { pool, result, config } = d;
  let t = performance.now();
  const state = await readBatchState(pool, batch);
  result.phasesMs.read += performance.now() - t;
  const { admits, tells } = sortChanges(batch, state, result);

  t = performance.now();
  const starts = await clockStarts(d, admits, state.stateOf);
  const judged: Judged[] = [];
  const admitOf = new Map(admits.map((a) => [a.change.exposureId, a]));
  for (const j of await d.triage.triage(
    pool,
    [...admitOf.keys()],
    new Date(d.activityDeps.clock()),
    starts,
  )) {
    const a = admitOf.get(j.exposureId)!;
    judged.push({
      ...j,
      scanId: a.change.scanId,
      at: a.change.at,
      ...(a.reopenedFrom ? { reopenedFrom: a.reopenedFrom } : {}),
    });
  }
  result.phasesMs.triage += performance.now() - t;

  t = performance.now();
  await inTransaction(pool, async (db) => {
    await writeAdmitted(
      db,
      judged.map((j) => ({
        ...j,
        state: j.reopenedFrom ? 'triaged' : 'awaiting-decision',
        lifecycle: lifecycleOf(j.scanId),
      })),
    );
    // A lifecycle back after it closed is told by its campaign (reopened → validated → asked).
    await insertEvents(db, judged.filter((j) => j.reopenedFrom).map(triagedEvent));
  });
  const places = await assignCampaigns(
    pool,
    config,
    judged.map((j) => j.exposureId),
    {
      ...(d.opts.shardCap ? { shardCap: d.opts.shardCap } : {}),
    },
  );
  result.phasesMs.record += performance.now() - t;
  return { batch, judged, places, tells };
}

/**
 * The Temporal half of a batch: one start or signal per campaign workflow, the owners asked where
 * the policy says so, then the admissions' records and the batch marked dispatched.
 */
async function admitBatch(d: Dispatch, { batch, judged, places, tells }: Prepared): Promise<Judged[]> {
  const { pool, result } = d;
  let t = performance.now();
  const items = judged
    .filter((j) => places.has(j.exposureId))
    .map((j) => ({ place: places.get(j.exposureId)!, admission: admissionOf(j) }));
  const judgedOf = new Map(judged.map((j) => [j.exposureId, j]));
  const notices = new Map<string, { type: string; reason: string; data: Record<string, unknown> }>();
  // The owner is asked once per campaign, when every shard workflow of it holds its admissions: a
  // campaign split over shards is one message, not one per shard.
  const asking = new Map<string, { workflows: Set<string>; fresh: Judged[] }>();
  for (const { place } of items) {
    const a = asking.get(place.campaignId) ?? { workflows: new Set<string>(), fresh: [] };
    a.workflows.add(campaignWorkflowId(place.campaignId, place.shard));
    asking.set(place.campaignId, a);
  }
  let notifyMs = 0;
  const admitted = await admitToCampaigns(
    d.activityDeps,
    d.client,
    items,
    d.opts,
    async (workflowId, place, admissions) => {
      const a = asking.get(place.campaignId)!;
      a.fresh.push(...admissions.filter((x) => x.how === 'new').map((x) => judgedOf.get(x.cell.id)!));
      a.workflows.delete(workflowId);
      if (a.workflows.size > 0 || a.fresh.length === 0) return;
      const n = performance.now();
      const notice = await askOnAdmission(d.activityDeps, place, a.fresh, {
        baseline: d.opts.baseline === true || d.baselineScopes.has(place.scope),
      });
      if (notice.outcome?.sent === 'now' && !notice.outcome.alreadySent) result.asked++;
      for (const j of a.fresh) notices.set(j.exposureId, notice.event);
      notifyMs += performance.now() - n;
    },
  );
  result.started += admitted.started;
  result.eagerlyStarted += admitted.eagerlyStarted;
  result.signalled += admitted.signalled;
  result.admitted += items.length;
  await tellCampaigns(d, tells);
  const notifyShare = notifyMs / Math.max(1, Math.min(d.opts.concurrency ?? 64, places.size));
  result.phasesMs.notify += notifyShare;
  result.phasesMs.temporal += performance.now() - t - notifyShare;

  t = performance.now();
  const events = judged
    .filter((j) => !j.reopenedFrom && notices.has(j.exposureId))
    .flatMap((j) => admissionEvents(j, notices.get(j.exposureId)!));
  // Milliseconds apart, in order, all before anything the campaigns record.
  const batchAt = d.activityDeps.clock();
  await insertEvents(
    pool,
    events.map((e, i) => ({ ...e, at: new Date(batchAt - events.length + i).toISOString() })),
  );
  await pool.query(
    `insert into lifecycle_dispatches (scan_id, exposure_id, change)
     select c."scanId", c."exposureId", c.change from jsonb_to_recordset($1::jsonb) as c("scanId" bigint, "exposureId" text, change text)
     on conflict do nothing`,
    [JSON.stringify(batch.map((c) => ({ scanId: c.scanId, exposureId: c.exposureId, change: c.change })))],
  );
  result.phasesMs.record += performance.now() - t;
  return judged.filter((j) => !j.reopenedFrom);
}

/**
 * The changes in an order that keeps each campaign's exposures together (scope, then the package or
 * weakness, then the asset), so a batch holds whole campaigns: one start each, few signals.
 */
async function orderedByFix(pool: Pool, changes: ExposureChange[]): Promise<ExposureChange[]> {
  const ids = [...new Set(changes.map((c) => c.exposureId))];
  const { rows } = await pool.query<{ id: string; key: string }>(
    `select e.id, concat_ws('|', coalesce(e.scope, ''), o.package_type, coalesce(o.package_name, e.vuln_key),
                            lpad(e.asset_id::text, 12, '0')) as key
       from exposures e
       left join lateral (
         select package_type, package_name from observations o where o.exposure_id = e.id
          order by o.present desc, o.last_seen desc limit 1) o on true
      where e.id = any($1::text[])`,
    [ids],
  );
  const keyOf = new Map(rows.map((r) => [r.id, r.key]));
  return [...changes].sort((a, b) => {
    const ka = keyOf.get(a.exposureId) ?? '';
    const kb = keyOf.get(b.exposureId) ?? '';
    return ka < kb ? -1 : ka > kb ? 1 : a.change < b.change ? -1 : a.change > b.change ? 1 : 0;
  });
}

function admissionOf(j: Judged): Admission {
  const cell = newCell({
    id: j.exposureId,
    assetId: j.assetId,
    weaknessKey: j.weaknessKey,
    state: j.reopenedFrom ? 'triaged' : 'awaiting-decision',
    priority: j.priority,
    policyVersion: j.policyVersion,
    contextualCvss: j.contextualCvss,
    kev: j.kev,
    slaStartMs: Date.parse(j.slaStart),
    slaDueMs: Date.parse(j.slaDue),
    firstSeen: j.firstSeen,
    observedAtMs: Date.parse(j.at),
    seq: 0,
    lifecycle: lifecycleOf(j.scanId),
  });
  return j.reopenedFrom
    ? {
        cell,
        how: 'reopened',
        evidence: { scanId: j.scanId, at: j.at, from: j.reopenedFrom, reasons: j.reasons },
      }
    : { cell, how: 'new' };
}

/** Tells running campaigns what the scan saw: one signal per campaign workflow. */
async function tellCampaigns(d: Dispatch, tells: Tell[]): Promise<void> {
  const byWorkflow = new Map<string, ScanChange[]>();
  for (const t of tells) {
    const id = campaignWorkflowId(t.place.campaignId, t.place.shard);
    const list = byWorkflow.get(id) ?? [];
    list.push({ exposureId: t.change.exposureId, kind: t.kind, scanId: t.change.scanId, at: t.change.at });
    byWorkflow.set(id, list);
  }
  await inParallel([...byWorkflow], d.opts.concurrency ?? 64, async ([workflowId, changes]) => {
    try {
      await d.client.workflow.getHandle(workflowId).signal(scanChangesSignal, changes);
      d.result.signalled++;
    } catch (err) {
      // The campaign has ended: every exposure it held closed, nothing is waiting for this news.
      if (err instanceof WorkflowNotFoundError) d.result.skipped += changes.length;
      else throw err;
    }
  });
}

export async function dispatchChanges(
  deps: DispatchDeps,
  client: Client,
  changes: ExposureChange[],
  opts: DispatchOptions,
): Promise<DispatchResult> {
  const { pool, config } = deps;
  const batchSize = opts.batchSize ?? 2_000;
  const result: DispatchResult = {
    started: 0,
    eagerlyStarted: 0,
    signalled: 0,
    admitted: 0,
    asked: 0,
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
    triage: new Triage(config, deps.baseDir),
    result,
    onboarding: new Map(),
    baselineScopes: await firstImports(pool, config),
  };
  const fresh: Judged[] = [];
  const ordered = changes.length > batchSize ? await orderedByFix(pool, changes) : changes;
  // Two stages in a pipeline: the next batch's database work runs while this one's campaigns are
  // started; the campaigns of one batch are admitted only after the previous batch's.
  let admitting: Promise<void> = Promise.resolve();
  let failed = false;
  for (let offset = 0; offset < ordered.length && !failed; offset += batchSize) {
    const prepared = await prepareBatch(d, ordered.slice(offset, offset + batchSize));
    const done = Math.min(offset + batchSize, ordered.length);
    admitting = admitting.then(async () => {
      fresh.push(...(await admitBatch(d, prepared)));
      opts.onProgress?.(done, ordered.length);
    });
    // A failure stops the dispatch before the remaining batches' database work; it is rethrown below.
    admitting.catch(() => {
      failed = true;
    });
  }
  await admitting;
  const filed = opts.baseline ? fresh : fresh.filter((j) => d.baselineScopes.has(j.scope));
  if (filed.length)
    await sendOnboardingSummaries(
      d.activityDeps,
      [...new Set(filed.map((j) => j.scanId))],
      filed.map((j) => j.exposureId),
    );
  deps.log?.info({ ...result, changes: changes.length }, 'lifecycle dispatch');
  return result;
}

/** Scopes set to treat their first import as a backlog import, that have no campaign yet. */
async function firstImports(pool: Pool, config: Config): Promise<Set<string>> {
  const candidates = config.scopes.filter((s) => onboardingBaseline(config, s.name)).map((s) => s.name);
  if (candidates.length === 0) return new Set();
  const { rows } = await pool.query<{ scope: string }>(
    `select distinct scope from exposures where scope = any($1::text[]) and campaign_id is not null`,
    [candidates],
  );
  const started = new Set(rows.map((r) => r.scope));
  return new Set(candidates.filter((s) => !started.has(s)));
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

export type { NotifyOutcome, CampaignPlace };
