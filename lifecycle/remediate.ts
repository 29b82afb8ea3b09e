// Remediation side effects, each once per remediation unit whatever the retries: the unit's ticket,
// its patch job, ticket comments/close/reopen, and the verifying re-scan. Each records what it did,
// or that nothing is configured to do it, in the exposure's audit trail.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Deps } from '../runtime/deps.ts';
import type { PatchExecutor, PatchTarget } from '../domain/ports.ts';
import type {
  MoveToOwnerRequest,
  PatchOutcome,
  PatchRolloutJoin,
  PatchRolloutJoinRequest,
  RemediationRequest,
  RemediationRoute,
  RemediationRouteRequest,
  RescanOutcome,
  RescanRequestInput,
  TicketOutcome,
  TicketUpdateOutcome,
  TicketUpdateRequest,
} from '../contracts/lifecycle.ts';
import { dispatchScan } from './dispatch.ts';
import { appendEvent } from './events.ts';
import { UnknownIntegrationError } from '../domain/ports.ts';
import { assignUnits, readUnit, unitSummary } from './units.ts';

function integrationsFor(deps: Deps, scope: string) {
  try {
    return deps.integrations.forScope(scope);
  } catch (err) {
    // A misconfigured scope does not fix itself on retry.
    if (err instanceof UnknownIntegrationError)
      throw ApplicationFailure.nonRetryable(err.message, 'ConfigError');
    throw err;
  }
}

async function ensureUnit(deps: Deps, req: RemediationRequest): Promise<string> {
  if (req.unitId) return req.unitId;
  const assigned = await assignUnits(deps.pool, deps.config, [req.exposureId]);
  const unitId = assigned.get(req.exposureId)?.unitId;
  if (!unitId)
    throw ApplicationFailure.nonRetryable(
      `exposure ${req.exposureId} does not exist in the database`,
      'NotFound',
    );
  return unitId;
}

/** Record that the scope has no ticket system, so no ticket is opened; returns the reason. */
async function ticketSkipped(deps: Deps, exposureId: string, scope: string, key: string) {
  const reason = `no ticket system configured for scope ${scope} (scopes[].tickets.system)`;
  await appendEvent(deps.pool, { key, exposureId, type: 'ticket-skipped', reason });
  return reason;
}

/** Record that the scope has no patch executor, so nothing is patched; returns the reason. */
async function patchSkipped(deps: Deps, exposureId: string, scope: string, key: string) {
  const reason = `no patch executor configured for scope ${scope} (scopes[].patch.executor): waiting for the owner's fix (ticket) or a scan showing it gone`;
  await appendEvent(deps.pool, { key, exposureId, type: 'patch-skipped', reason });
  return reason;
}

/**
 * Which remediation steps the exposure's scope has configured right now (a ticket system, a patch
 * executor). Runs as a local activity, in the workflow task of the approval: a step that is not
 * configured is recorded as skipped here, so the workflow schedules no activity for it.
 */
export async function remediationRoute(deps: Deps, req: RemediationRouteRequest): Promise<RemediationRoute> {
  const { tickets, patch } = integrationsFor(deps, req.scope);
  if (!tickets) await ticketSkipped(deps, req.exposureId, req.scope, req.ticketEventKey);
  if (!patch) await patchSkipped(deps, req.exposureId, req.scope, req.patchEventKey);
  return { tickets: tickets !== undefined, patch: patch !== undefined };
}

export async function openTicket(deps: Deps, req: RemediationRequest): Promise<TicketOutcome> {
  const { tickets } = integrationsFor(deps, req.scope);
  if (!tickets) {
    const skipped = await ticketSkipped(deps, req.exposureId, req.scope, req.eventKey);
    return { skipped };
  }
  const unitId = await ensureUnit(deps, req);
  const summary = await unitSummary(deps.pool, unitId);
  if (!summary)
    throw ApplicationFailure.nonRetryable(`remediation unit ${unitId} does not exist`, 'NotFound');
  const ticket = await tickets.upsert(summary);
  await deps.pool.query('update remediation_units set ticket = $2, updated_at = now() where id = $1', [
    unitId,
    JSON.stringify(ticket),
  ]);
  await appendEvent(deps.pool, {
    key: req.eventKey,
    exposureId: req.exposureId,
    type: 'ticket-opened',
    reason: `ticket ${ticket.key} in ${ticket.system} for "${summary.action}" (${summary.exposures.length} exposure(s))`,
    data: { ticket, unitId },
  });
  return { ticket };
}

interface PatchRecord {
  claimedBy: string;
  plan?: unknown;
  result?: { ok: boolean; finishedAt: string; hosts: { host: string; ok: boolean; output: string }[] };
}

/**
 * The patch targets of a unit: its asset, the packages its exposures need upgraded, the advisories
 * the scanners named for them that the executor applies (KBs, errata), and the CVEs.
 */
export async function patchTargets(
  deps: Deps,
  unitId: string,
  executor: PatchExecutor,
): Promise<PatchTarget[]> {
  const unit = await readUnit(deps.pool, unitId);
  const summary = await unitSummary(deps.pool, unitId);
  if (!unit || !summary) return [];
  const packages = new Map<string, { name: string; fixedVersion?: string }>();
  for (const e of summary.exposures)
    if (e.package)
      packages.set(e.package.name, {
        name: e.package.name,
        ...(e.package.fixedVersion ? { fixedVersion: e.package.fixedVersion } : {}),
      });
  const { rows } = await deps.pool.query<{ text: string | null }>(
    `select concat_ws(' ', array_to_string(v.aliases, ' '), v.reported_solution) as text
       from exposures e join vulnerabilities v on v.key = e.vuln_key
      where e.remediation_unit_id = $1`,
    [unitId],
  );
  // Each executor recognises its own kind only (a KB means nothing to Satellite, and the reverse).
  const advisories = [
    ...new Set(rows.flatMap((r) => (r.text && executor.advisoriesIn ? executor.advisoriesIn(r.text) : []))),
  ].sort();
  return [
    {
      assetId: unit.assetId,
      host: unit.host,
      packages: [...packages.values()],
      ...(advisories.length ? { advisories } : {}),
      cves: summary.exposures.map((e) => e.weaknessKey).filter((k) => /^CVE-/.test(k)),
    },
  ];
}

export async function applyPatch(deps: Deps, req: RemediationRequest): Promise<PatchOutcome> {
  const { patch } = integrationsFor(deps, req.scope);
  if (!patch) {
    const skipped = await patchSkipped(deps, req.exposureId, req.scope, req.eventKey);
    return { summary: skipped, skipped };
  }
  const unitId = await ensureUnit(deps, req);
  const ctx = Context.current();
  const me = `${ctx.info.workflowExecution?.workflowId ?? 'standalone'}/${ctx.info.activityId}`;
  // One patch job per unit: the first exposure to get here claims it; the others (and the
  // claimer's own retries after a crash) find the record and wait for, or reuse, its result.
  const claim = await deps.pool.query<{ patch: PatchRecord }>(
    `update remediation_units set patch = coalesce(patch, $2::jsonb), updated_at = now() where id = $1 returning patch`,
    [unitId, JSON.stringify({ claimedBy: me })],
  );
  let record = claim.rows[0]?.patch;
  if (!record) throw ApplicationFailure.nonRetryable(`remediation unit ${unitId} does not exist`, 'NotFound');
  if (!record.result && record.claimedBy !== me) {
    for (;;) {
      ctx.heartbeat('waiting for the unit patch job of another exposure');
      await ctx.sleep(2_000);
      record = (
        await deps.pool.query<{ patch: PatchRecord }>('select patch from remediation_units where id = $1', [
          unitId,
        ])
      ).rows[0]!.patch;
      if (record.result) break;
    }
  }
  if (!record.result) {
    // An interrupted apply is run again: package upgrades are idempotent in effect, and the
    // executor's own contract keys the job by unit id.
    const plan = await patch.plan(unitId, await patchTargets(deps, unitId, patch));
    const result = await patch.apply(plan);
    record = { claimedBy: me, plan, result };
    await deps.pool.query('update remediation_units set patch = $2, updated_at = now() where id = $1', [
      unitId,
      JSON.stringify(record),
    ]);
  }
  const result = record.result!;
  const summary = result.hosts
    .map((h) => `${h.host}: ${h.ok ? 'ok' : 'FAILED'} — ${h.output.split('\n')[0]}`)
    .join('; ');
  await appendEvent(deps.pool, {
    key: req.eventKey,
    exposureId: req.exposureId,
    type: result.ok ? 'patch-applied' : 'patch-failed',
    reason: `${patch.name} patch of unit ${unitId} ${result.ok ? 'finished' : 'failed'} at ${result.finishedAt}: ${summary}`,
    data: { unitId, executor: patch.name, plan: record.plan, result },
  });
  return { ok: result.ok, finishedAt: result.finishedAt, summary };
}

const closedStates = ['resolved', 'false-positive', 'retired'];

/** Rollout id of a unit's n-th rollout (workflows/patch.ts patchRolloutWorkflowId; not imported: workflow code). */
function rolloutIdOf(unitId: string, attempt: number): string {
  return attempt === 1 ? `patch-${unitId}` : `patch-${unitId}-${attempt}`;
}

/**
 * The patch rollout an approved exposure takes part in: the unit's running one, the one that
 * already succeeded with this exposure in it, or a new attempt (after a failed, rejected or blocked
 * one that ended before this approval). The id is computed from the rows, so two exposures of the
 * unit asking at once get the same id and only one of them starts it.
 */
export async function joinPatchRollout(deps: Deps, req: PatchRolloutJoinRequest): Promise<PatchRolloutJoin> {
  const { patch } = integrationsFor(deps, req.scope);
  if (!patch) {
    const skipped = await patchSkipped(deps, req.exposureId, req.scope, req.eventKey);
    return { skipped };
  }
  const unitId = await ensureUnit(deps, req);
  const { rows } = await deps.pool.query<{
    id: string;
    status: string;
    outcome: string | null;
    exposure_ids: string[];
    finished_at: Date | null;
  }>(
    'select id, status, outcome, exposure_ids, finished_at from patch_rollouts where unit_id = $1 order by created_at desc, id desc',
    [unitId],
  );
  const latest = rows[0];
  const sinceMs = Date.parse(req.since);
  let rolloutId = rolloutIdOf(unitId, rows.length + 1);
  let finished: PatchRolloutJoin['finished'];
  if (latest) {
    const ended = latest.finished_at !== null;
    const current = !ended || latest.finished_at!.getTime() >= sinceMs;
    const alreadyFixed = latest.status === 'succeeded' && latest.exposure_ids.includes(req.exposureId);
    if (current || alreadyFixed) {
      rolloutId = latest.id;
      if (ended)
        finished = {
          status:
            latest.status === 'awaiting-approval' || latest.status === 'approved'
              ? 'failed'
              : (latest.status as 'succeeded' | 'failed' | 'blocked' | 'rejected'),
          summary: latest.outcome ?? latest.status,
          finishedAt: latest.finished_at!.toISOString(),
        };
    }
  }
  if (!finished)
    // A running rollout tells the exposures on its row when it ends: this one too, if it came late.
    await deps.pool.query(
      `update patch_rollouts set exposure_ids = array_append(exposure_ids, $2), updated_at = now()
        where id = $1 and finished_at is null and not ($2 = any(exposure_ids))`,
      [rolloutId, req.exposureId],
    );
  const targets = await patchTargets(deps, unitId, patch);
  const { rows: members } = await deps.pool.query<{ id: string; asset_id: number; vuln_key: string }>(
    `select id, asset_id, vuln_key from exposures
      where (remediation_unit_id = $1 and state <> all($2::text[])) or id = $3 order by id`,
    [unitId, closedStates, req.exposureId],
  );
  await appendEvent(deps.pool, {
    key: req.eventKey,
    exposureId: req.exposureId,
    type: 'patch-requested',
    reason: finished
      ? `the unit's patch rollout ${rolloutId} already ended: ${finished.status}`
      : `patch rollout ${rolloutId} (${patch.name}) for unit ${unitId}: plan, approval, maintenance window, canary, the rest`,
    data: { rolloutId, unitId, executor: patch.name },
  });
  return {
    rolloutId,
    unitId,
    targets,
    exposures: members.map((m) => ({ exposureId: m.id, assetId: m.asset_id, weaknessKey: m.vuln_key })),
    ...(finished ? { finished } : {}),
  };
}

export async function updateTicket(deps: Deps, req: TicketUpdateRequest): Promise<TicketUpdateOutcome> {
  const unit = req.unitId ? await readUnit(deps.pool, req.unitId) : undefined;
  const { tickets } = integrationsFor(deps, req.scope);
  const skip = async (skipped: string): Promise<TicketUpdateOutcome> => {
    await appendEvent(deps.pool, {
      key: req.eventKey,
      exposureId: req.exposureId,
      type: 'ticket-skipped',
      reason: skipped,
    });
    return { done: false, skipped };
  };
  if (!tickets)
    return await skip(
      `no ticket system configured for scope ${req.scope}: nothing to ${req.action.replace('-if-done', '')}`,
    );
  if (!unit?.ticket) return await skip(`the unit has no ticket to ${req.action.replace('-if-done', '')}`);
  const ticket = {
    system: unit.ticket.system,
    key: unit.ticket.key,
    ...(unit.ticket.url ? { url: unit.ticket.url } : {}),
  };
  if (req.action === 'close-if-done') {
    const open = await deps.pool.query<{ n: number }>(
      `select count(*)::int as n from exposures
        where remediation_unit_id = $1 and state not in ('resolved', 'false-positive', 'retired')`,
      [unit.id],
    );
    if ((open.rows[0]?.n ?? 0) > 0)
      return await skip(
        `ticket ${ticket.key} stays open: ${open.rows[0]!.n} exposure(s) of the unit are still open`,
      );
    await tickets.close(ticket, req.text);
  } else if (req.action === 'refresh') {
    // The ticket system updates it in place, and sends nothing when the rendering is unchanged.
    const summary = await unitSummary(deps.pool, unit.id);
    if (!summary) return await skip(`remediation unit ${unit.id} has no exposures to render`);
    await tickets.upsert(summary);
  } else if (req.action === 'reopen') await tickets.reopen(ticket, req.text);
  else await tickets.comment(ticket, req.text, req.eventKey);
  await appendEvent(deps.pool, {
    key: req.eventKey,
    exposureId: req.exposureId,
    type:
      req.action === 'close-if-done'
        ? 'ticket-closed'
        : req.action === 'reopen'
          ? 'ticket-reopened'
          : req.action === 'refresh'
            ? 'ticket-updated'
            : 'ticket-commented',
    reason: `ticket ${ticket.key}: ${req.text}`,
    data: { ticket },
  });
  return { done: true };
}

export async function requestRescan(deps: Deps, req: RescanRequestInput): Promise<RescanOutcome> {
  // One request per id, whoever asks: the exposures of a unit share the id, and may ask together.
  const client = await deps.pool.connect();
  let ticket: RescanOutcome;
  try {
    await client.query('begin');
    await client.query('select pg_advisory_xact_lock(hashtextextended($1, 7426006))', [req.requestId]);
    const prior = await client.query<{ ticket: RescanOutcome }>(
      'select ticket from rescan_requests where request_id = $1',
      [req.requestId],
    );
    if (prior.rows[0]) ticket = prior.rows[0].ticket;
    else {
      const { scanner } = integrationsFor(deps, req.scope);
      ticket = scanner
        ? await scanner.rescan({
            requestId: req.requestId,
            scope: req.scope,
            assetIds: [req.assetId],
            weaknessKeys: [req.weaknessKey],
            notBefore: req.notBefore,
          })
        : {
            requestId: req.requestId,
            status: 'unavailable',
            detail: `no scan connector configured for scope ${req.scope} (scopes[].scan.connector): the next imported scan covering the asset verifies the fix`,
          };
      await client.query(
        `insert into rescan_requests (request_id, exposure_id, scope, not_before, ticket) values ($1, $2, $3, $4, $5)`,
        [req.requestId, req.exposureId, req.scope, req.notBefore, JSON.stringify(ticket)],
      );
    }
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
  await appendEvent(deps.pool, {
    key: req.eventKey,
    exposureId: req.exposureId,
    type: ticket.status === 'unavailable' ? 'rescan-unavailable' : 'rescan-requested',
    reason:
      ticket.status === 'unavailable'
        ? (ticket.detail ?? 'no targeted re-scan is available')
        : `targeted re-scan ${ticket.requestId} ${ticket.status}${ticket.scanId ? ` (scan ${ticket.scanId})` : ''}; only a scan after ${req.notBefore} counts`,
    data: { ticket, notBefore: req.notBefore },
  });
  // A connector that already imported its report: hand what it changed to the workflows now (a
  // retry dispatches nothing twice). Queued scans are dispatched by whoever imports them.
  if (ticket.status === 'done' && ticket.scanId !== undefined) {
    const ctx = Context.current();
    await dispatchScan(deps, ctx.client, ticket.scanId, { taskQueue: ctx.info.taskQueue });
  }
  return ticket;
}

export async function moveToOwner(deps: Deps, req: MoveToOwnerRequest): Promise<{ unitId: string }> {
  const assigned = await assignUnits(deps.pool, deps.config, [req.exposureId], req.owner);
  const unitId = assigned.get(req.exposureId)?.unitId;
  if (!unitId)
    throw ApplicationFailure.nonRetryable(
      `exposure ${req.exposureId} does not exist in the database`,
      'NotFound',
    );
  return { unitId };
}
