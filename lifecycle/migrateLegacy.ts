// Moving the lifecycles of the previous release into campaigns. That release ran one workflow per
// exposure ("exposure-<id>", type exposureWorkflow); this one holds exposures in campaign workflows
// and no longer runs that type, so those workflows wait, doing nothing, until they are moved:
//   1. each running exposure workflow's exposure is read from PostgreSQL (its row is the read model
//      the old workflow kept current: state, deadline, escalation level, snooze, risk acceptance, fix);
//   2. it is placed in its campaign and admitted there as it stood (`migrated`), keeping its
//      lifecycle's idempotency prefix and sequence, so its records continue where they stopped;
//   3. the old workflow is terminated, saying where the lifecycle went.
// Re-runnable: a campaign keeps an exposure it already holds; a terminated workflow is no longer
// listed. Closed exposures' workflows (closing out) are just terminated. A workflow that had not yet
// triaged its exposure (row still `open`) is replaced by a fresh dispatch of the exposure as new:
// triaged set-based and admitted to its campaign as this release does for a new finding.
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Deps } from '../runtime/deps.ts';
import { terminalStates, type ExposureState } from '../domain/exposure.ts';
import type { Cell } from '../domain/lifecycle.ts';
import { startClock, pauseClock } from '../domain/sla.ts';
import type { Admission } from '../contracts/campaign.ts';
import { assignCampaigns } from './campaigns.ts';
import { admitToCampaigns, type CampaignStartOptions } from './campaignStart.ts';
import { outcomeLabel } from './triage.ts';
import { dispatchChanges, type DispatchDeps } from './dispatch.ts';
import { recordEach } from './notify.ts';

const LEGACY_TYPE = 'exposureWorkflow';
const LEGACY_PREFIX = 'exposure-';

export interface MigrationResult {
  /** Running workflows of the previous release found. */
  found: number;
  /** Exposures admitted into campaigns. */
  moved: number;
  /** Closed ones (their old workflow was only closing out), terminated with nothing to move. */
  closed: number;
  /** Workflows whose exposure has no row (nothing to move them with): terminated, listed here. */
  orphans: string[];
  /** Campaign workflows started or told. */
  campaigns: number;
}

interface LegacyRow {
  id: string;
  asset_id: number;
  vuln_key: string;
  state: ExposureState;
  first_scan_id: number | null;
  priority: string | null;
  sla_due: Date | null;
  sla_paused: boolean;
  first_seen: Date;
  last_seen: Date;
  policy_version: string | null;
  escalation_level: number;
  snoozed_until: Date | null;
  risk_accepted_until: Date | null;
  risk_accepted_by: string | null;
  justification: string | null;
  fixed_at: Date | null;
  sla_breached_at: Date | null;
  workflow_run: string | null;
  lifecycle_seq: number;
  cvss_contextual: number | null;
  kev: boolean;
}

/** Running exposure workflows of the previous release. */
export async function legacyLifecycles(client: Client): Promise<string[]> {
  const ids: string[] = [];
  for await (const w of client.workflow.list({
    query: `WorkflowType = '${LEGACY_TYPE}' AND ExecutionStatus = 'Running'`,
  }))
    ids.push(w.workflowId);
  return ids;
}

/** The cell a legacy lifecycle continues as, from the row its workflow kept current. */
export function cellFromRow(r: LegacyRow, nowMs: number): Cell {
  const dueMs = (r.sla_due ?? r.first_seen).getTime();
  // The old clock started at the scanner's first sighting; its deadline (pauses included) is kept.
  let clock = startClock(Math.min(r.first_seen.getTime(), dueMs), dueMs);
  if (r.sla_paused) clock = pauseClock(clock, nowMs);
  return {
    id: r.id,
    assetId: Number(r.asset_id),
    weaknessKey: r.vuln_key,
    state: r.state,
    priority: outcomeLabel(r.priority ?? 'track'),
    policyVersion: r.policy_version ?? 'unknown',
    ...(r.cvss_contextual !== null ? { contextualCvss: r.cvss_contextual } : {}),
    kev: r.kev,
    clock,
    level: r.escalation_level,
    seq: r.lifecycle_seq,
    lifecycle: r.workflow_run ?? `legacy-${r.id}`,
    firstSeen: r.first_seen.toISOString(),
    lastObservedMs: r.last_seen.getTime(),
    ...(r.state === 'snoozed' && r.snoozed_until ? { snoozedUntil: r.snoozed_until.toISOString() } : {}),
    ...(r.state === 'risk-accepted' && r.risk_accepted_until
      ? {
          riskAccepted: {
            by: r.risk_accepted_by ?? 'unknown',
            until: r.risk_accepted_until.toISOString(),
            justification: r.justification ?? '(recorded by the previous release)',
          },
        }
      : {}),
    ...(r.fixed_at && (r.state === 'verifying' || r.state === 'remediating')
      ? { fixedAt: r.fixed_at.toISOString() }
      : {}),
    unverifiedWindows: 0,
    ...(r.sla_breached_at ? { slaBreachedAt: r.sla_breached_at.toISOString() } : {}),
  };
}

async function readRows(deps: Deps, ids: string[]): Promise<LegacyRow[]> {
  const { rows } = await deps.pool.query<LegacyRow>(
    `select e.id, e.asset_id, e.vuln_key, e.state, e.first_scan_id, e.priority, e.sla_due, e.sla_paused, e.first_seen, e.last_seen,
            e.policy_version, e.escalation_level, e.snoozed_until, e.risk_accepted_until, e.risk_accepted_by,
            e.fixed_at, e.sla_breached_at, e.workflow_run, e.lifecycle_seq, e.cvss_contextual, e.kev,
            (select ev.data -> 'inputs' ->> 'justification' from events ev
              where ev.exposure_id = e.id and ev.type = 'acceptRisk' order by ev.id desc limit 1) as justification
       from exposures e where e.id = any($1::text[])`,
    [ids],
  );
  return rows;
}

async function terminate(client: Client, workflowId: string, reason: string): Promise<void> {
  try {
    await client.workflow.getHandle(workflowId).terminate(reason);
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
}

/** Move every running lifecycle of the previous release into its campaign. */
export async function migrateLegacyLifecycles(
  deps: Deps & DispatchDeps,
  client: Client,
  opts: CampaignStartOptions & { batchSize?: number; onProgress?: (done: number, total: number) => void },
): Promise<MigrationResult> {
  const workflowIds = await legacyLifecycles(client);
  const result: MigrationResult = {
    found: workflowIds.length,
    moved: 0,
    closed: 0,
    orphans: [],
    campaigns: 0,
  };
  const batchSize = opts.batchSize ?? 500;
  for (let i = 0; i < workflowIds.length; i += batchSize) {
    const batch = workflowIds.slice(i, i + batchSize);
    const ids = batch.map((w) => w.slice(LEGACY_PREFIX.length));
    const rows = new Map((await readRows(deps, ids)).map((r) => [r.id, r]));
    const open = [...rows.values()].filter((r) => !terminalStates.includes(r.state) && r.state !== 'open');
    const places = await assignCampaigns(
      deps.pool,
      deps.config,
      open.map((r) => r.id),
    );
    const now = deps.clock();
    const items = open
      .filter((r) => places.has(r.id))
      .map((r) => ({
        place: places.get(r.id)!,
        admission: { cell: cellFromRow(r, now), how: 'migrated' } satisfies Admission,
      }));
    const admitted = await admitToCampaigns(deps, client, items, opts);
    result.campaigns += admitted.started + admitted.signalled;
    result.moved += items.length;
    const untriaged = [...rows.values()].filter((r) => r.state === 'open' && r.first_scan_id !== null);
    if (untriaged.length > 0) {
      // The previous release recorded their dispatch; this release dispatches them again, once.
      await deps.pool.query(
        `delete from lifecycle_dispatches where change = 'new' and exposure_id = any($1::text[])`,
        [untriaged.map((r) => r.id)],
      );
      const again = await dispatchChanges(
        deps,
        client,
        untriaged.map((r) => ({
          exposureId: r.id,
          change: 'new' as const,
          scanId: Number(r.first_scan_id),
          at: r.first_seen.toISOString(),
        })),
        opts,
      );
      result.moved += again.admitted;
      result.campaigns += again.started + again.signalled;
    }
    const redispatched = new Set(untriaged.map((r) => r.id));
    for (const { place, admission } of items)
      await recordEach(
        deps.pool,
        `migrated:${admission.cell.lifecycle}`,
        [admission.cell.id],
        'migrated',
        `lifecycle of the previous release moved, as it stood (${admission.cell.state}), into campaign ${place.campaignId}`,
        { campaignId: place.campaignId, shard: place.shard },
      );
    for (const [k, workflowId] of batch.entries()) {
      const id = ids[k]!;
      const row = rows.get(id);
      const place = places.get(id);
      if (!row) result.orphans.push(workflowId);
      else if (!place && !redispatched.has(id)) result.closed++;
      await terminate(
        client,
        workflowId,
        place
          ? `migrated to campaign ${place.campaignId} (ctem migrate lifecycles)`
          : redispatched.has(id)
            ? 'not yet triaged: dispatched again as a new exposure into its campaign (ctem migrate lifecycles)'
            : row
              ? `closed (${row.state}): nothing to migrate`
              : 'its exposure is not in the database: nothing to migrate',
      );
    }
    opts.onProgress?.(Math.min(i + batchSize, workflowIds.length), workflowIds.length);
  }
  return result;
}
