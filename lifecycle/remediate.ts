// Remediation side effects of a campaign, each once whatever the retries: its ticket (one per
// campaign), what its patch rollout covers (one target per asset), ticket comments, close and reopen,
// the verifying re-scan of the assets fixed at one time, and handing reassigned exposures over to
// their new owner's campaign. Each records what it did, or that nothing is configured to do it, on
// the exposures concerned.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import type { Deps } from '../runtime/deps.ts';
import type { PatchExecutor, PatchTarget } from '../domain/ports.ts';
import { UnknownIntegrationError } from '../domain/ports.ts';
import { terminalStates } from '../domain/exposure.ts';
import { compareVersions } from '../domain/versions.ts';
import type {
  CampaignRescanRequest,
  CampaignTicketRequest,
  MoveOutcome,
  MoveRequest,
  RemediateOutcome,
  RemediateRequest,
  RescanOutcome,
  TicketUpdateOutcome,
} from '../contracts/lifecycle.ts';
import { assignCampaigns, campaignSummary, readCampaign } from './campaigns.ts';
import { admitToCampaigns, type CampaignStartOptions } from './campaignStart.ts';
import { dispatchScan } from './dispatch.ts';
import { recordEach } from './notify.ts';

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

/**
 * The patch targets of some of a campaign's exposures, one per asset: its host, the packages its
 * exposures need upgraded, the advisories the scanners named that the executor applies (KBs,
 * errata), and the CVEs.
 */
export async function patchTargets(
  deps: Deps,
  exposureIds: string[],
  executor: PatchExecutor,
): Promise<{
  targets: PatchTarget[];
  exposures: { exposureId: string; assetId: number; weaknessKey: string }[];
}> {
  const { rows } = await deps.pool.query<{
    id: string;
    asset_id: number;
    vuln_key: string;
    host: string;
    package_name: string | null;
    fixed_version: string | null;
    text: string | null;
  }>(
    `select e.id, e.asset_id, e.vuln_key,
            coalesce(a.fqdn, a.hostname, a.ips[1], a.image_repo, a.identity_key) as host,
            o.package_name, o.fixed_version,
            concat_ws(' ', array_to_string(v.aliases, ' '), v.reported_solution) as text
       from exposures e
       join assets a on a.id = e.asset_id
       left join vulnerabilities v on v.key = e.vuln_key
       left join lateral (
         select package_name, fixed_version from observations o where o.exposure_id = e.id
          order by o.present desc, o.last_seen desc limit 1) o on true
      where e.id = any($1::text[])
      order by e.asset_id, e.id`,
    [exposureIds],
  );
  type Target = PatchTarget & { packageMap: Map<string, { name: string; fixedVersion?: string }> };
  const byAsset = new Map<number, Target>();
  for (const r of rows) {
    const t: Target = byAsset.get(r.asset_id) ?? {
      assetId: r.asset_id,
      host: r.host,
      packages: [],
      cves: [],
      packageMap: new Map(),
    };
    if (r.package_name) {
      const held = t.packageMap.get(r.package_name);
      // The highest fixed version any exposure on the host needs.
      if (
        !held ||
        (r.fixed_version && (!held.fixedVersion || compareVersions(held.fixedVersion, r.fixed_version) < 0))
      )
        t.packageMap.set(r.package_name, {
          name: r.package_name,
          ...(r.fixed_version ? { fixedVersion: r.fixed_version } : {}),
        });
    }
    // Each executor recognises its own kind only (a KB means nothing to Satellite, and the reverse).
    const advisories = r.text && executor.advisoriesIn ? executor.advisoriesIn(r.text) : [];
    if (advisories.length) t.advisories = [...new Set([...(t.advisories ?? []), ...advisories])].sort();
    if (/^CVE-/.test(r.vuln_key)) t.cves.push(r.vuln_key);
    byAsset.set(r.asset_id, t);
  }
  return {
    targets: [...byAsset.values()].map(({ packageMap, ...t }) => ({
      ...t,
      packages: [...packageMap.values()],
    })),
    exposures: rows.map((r) => ({ exposureId: r.id, assetId: r.asset_id, weaknessKey: r.vuln_key })),
  };
}

/**
 * An approval round: the campaign's ticket (opened once, updated after), and what the round's patch
 * rollout covers. Steps the scope has not configured are recorded as skipped.
 */
export async function remediateCampaign(deps: Deps, req: RemediateRequest): Promise<RemediateOutcome> {
  const { tickets, patch } = integrationsFor(deps, req.scope);
  const out: RemediateOutcome = {};
  if (tickets) {
    const summary = await campaignSummary(deps.pool, req.campaignId);
    if (!summary)
      throw ApplicationFailure.nonRetryable(`campaign ${req.campaignId} does not exist`, 'NotFound');
    const ticket = await tickets.upsert(summary);
    await deps.pool.query('update campaigns set ticket = $2, updated_at = now() where id = $1', [
      req.campaignId,
      JSON.stringify(ticket),
    ]);
    out.ticket = ticket;
    await recordEach(
      deps.pool,
      `${req.key}:ticket`,
      req.exposureIds,
      'ticket-opened',
      `ticket ${ticket.key} in ${ticket.system} for "${summary.action}" (${summary.totals.exposures} exposure(s))`,
      { ticket, campaignId: req.campaignId },
    );
  } else {
    out.ticketSkipped = `no ticket system configured for scope ${req.scope} (scopes[].tickets.system)`;
    await recordEach(
      deps.pool,
      `${req.key}:ticket`,
      req.exposureIds,
      'ticket-skipped',
      out.ticketSkipped,
      {},
    );
  }
  if (patch) {
    out.patch = await patchTargets(deps, req.exposureIds, patch);
    await recordEach(
      deps.pool,
      `${req.key}:patch`,
      req.exposureIds,
      'patch-requested',
      `patch rollout (${patch.name}) for round ${req.round} of campaign ${req.campaignId}, ${out.patch.targets.length} host(s): plan, approval, maintenance window, canary, the rest`,
      { campaignId: req.campaignId, round: req.round, executor: patch.name },
    );
  } else {
    out.patchSkipped = `no patch executor configured for scope ${req.scope} (scopes[].patch.executor): waiting for the owner's fix (ticket) or a scan showing it gone`;
    await recordEach(deps.pool, `${req.key}:patch`, req.exposureIds, 'patch-skipped', out.patchSkipped, {});
  }
  return out;
}

export async function updateCampaignTicket(
  deps: Deps,
  req: CampaignTicketRequest,
): Promise<TicketUpdateOutcome> {
  const campaign = await readCampaign(deps.pool, req.campaignId);
  const { tickets } = integrationsFor(deps, req.scope);
  const verb = req.action.replace('-if-done', '');
  const skip = async (skipped: string): Promise<TicketUpdateOutcome> => {
    await recordEach(deps.pool, req.key, req.exposureIds, 'ticket-skipped', skipped, {});
    return { done: false, skipped };
  };
  if (!tickets) return await skip(`no ticket system configured for scope ${req.scope}: nothing to ${verb}`);
  if (!campaign?.ticket) return await skip(`the campaign has no ticket to ${verb}`);
  const ticket = campaign.ticket;
  if (req.action === 'close-if-done') {
    const open = await deps.pool.query<{ n: number }>(
      `select count(*)::int as n from exposures where campaign_id = $1 and state <> all($2::text[])`,
      [campaign.id, terminalStates],
    );
    const n = open.rows[0]?.n ?? 0;
    if (n > 0)
      return await skip(`ticket ${ticket.key} stays open: ${n} exposure(s) of the campaign are still open`);
    await tickets.close(ticket, req.text);
  } else if (req.action === 'refresh') {
    // The ticket system updates it in place, and sends nothing when the rendering is unchanged.
    const summary = await campaignSummary(deps.pool, campaign.id);
    if (!summary) return await skip(`campaign ${campaign.id} has no exposures to render`);
    await tickets.upsert(summary);
  } else if (req.action === 'reopen') await tickets.reopen(ticket, req.text);
  else await tickets.comment(ticket, req.text, req.key);
  await recordEach(
    deps.pool,
    req.key,
    req.exposureIds,
    req.action === 'close-if-done'
      ? 'ticket-closed'
      : req.action === 'reopen'
        ? 'ticket-reopened'
        : req.action === 'refresh'
          ? 'ticket-updated'
          : 'ticket-commented',
    `ticket ${ticket.key}: ${req.text}`,
    { ticket },
  );
  return { done: true };
}

/** One targeted re-scan of the assets a fix reached, once per request id whoever asks. */
export async function requestCampaignRescan(
  deps: Deps,
  req: CampaignRescanRequest,
  client?: Client,
  taskQueue?: string,
): Promise<RescanOutcome> {
  const db = await deps.pool.connect();
  let ticket: RescanOutcome;
  try {
    await db.query('begin');
    await db.query('select pg_advisory_xact_lock(hashtextextended($1, 7426006))', [req.requestId]);
    const prior = await db.query<{ ticket: RescanOutcome }>(
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
            assetIds: req.assetIds,
            weaknessKeys: req.weaknessKeys,
            notBefore: req.notBefore,
          })
        : {
            requestId: req.requestId,
            status: 'unavailable',
            detail: `no scan connector configured for scope ${req.scope} (scopes[].scan.connector): the next imported scan covering the assets verifies the fix`,
          };
      await db.query(
        `insert into rescan_requests (request_id, exposure_id, scope, not_before, ticket) values ($1, $2, $3, $4, $5)`,
        [
          req.requestId,
          req.exposureIds[0] ?? req.campaignId,
          req.scope,
          req.notBefore,
          JSON.stringify(ticket),
        ],
      );
    }
    await db.query('commit');
  } catch (err) {
    await db.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    db.release();
  }
  await recordEach(
    deps.pool,
    req.key,
    req.exposureIds,
    ticket.status === 'unavailable' ? 'rescan-unavailable' : 'rescan-requested',
    ticket.status === 'unavailable'
      ? (ticket.detail ?? 'no targeted re-scan is available')
      : `targeted re-scan ${ticket.requestId} of ${req.assetIds.length} asset(s) ${ticket.status}${ticket.scanId ? ` (scan ${ticket.scanId})` : ''}; only a scan after ${req.notBefore} counts`,
    { ticket, notBefore: req.notBefore },
  );
  // A connector that already imported its report: hand what it changed to the campaigns now (a
  // retry dispatches nothing twice). Queued scans are dispatched by whoever imports them.
  if (ticket.status === 'done' && ticket.scanId !== undefined && client && taskQueue)
    await dispatchScan(deps, client, ticket.scanId, { taskQueue });
  return ticket;
}

/**
 * Reassigned exposures join their new owner's campaign (same fix, same scope): their rows move, and
 * the target campaign is started or told. Exactly once: the target keeps a cell it already holds.
 */
export async function moveExposures(
  deps: Deps,
  client: Client,
  req: MoveRequest,
  opts: CampaignStartOptions,
): Promise<MoveOutcome> {
  const ids = req.cells.map((c) => c.id);
  const places = await assignCampaigns(deps.pool, deps.config, ids, { ownerOverride: req.to });
  const byCell = new Map(req.cells.map((c) => [c.id, c]));
  await admitToCampaigns(
    deps,
    client,
    [...places].map(([id, place]) => ({
      place,
      admission: { cell: byCell.get(id)!, how: 'moved', by: req.by },
    })),
    opts,
  );
  return {
    moved: [...places].map(([exposureId, p]) => ({ exposureId, campaignId: p.campaignId, shard: p.shard })),
  };
}

/** The activity context's client and task queue, for activities that start or signal workflows. */
export function activityClient(): { client: Client; taskQueue: string } {
  const ctx = Context.current();
  return { client: ctx.client, taskQueue: ctx.info.taskQueue };
}
