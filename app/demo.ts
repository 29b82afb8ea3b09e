// The demo behind `ctem demo`: the campaign story on bundled sample data, on the embedded stack,
// told step by step. It starts PostgreSQL, Temporal and the worker as `ctem up` does (in a scratch
// folder, on free ports, so it never touches a real deployment), loads a one-entry excerpt of CISA's
// KEV catalog, ingests a scan of a web shop's three container images, files its ten exposures into
// three campaigns (one fix each, across the images), asks the owner at once only for the urgent one
// and puts the rest in her daily queue, takes an exception (a risk accepted on one legacy image) and
// one decision per campaign, rolls each fix out canary first with the demo executor (which changes no
// machine and says so), re-scans by importing the bundled "after the fixes" report, verifies,
// resolves, prints the record, and stops everything.
import { mkdtemp, readFile, rm, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseConfig, type Config } from '../domain/config.ts';
import type { Actor, ExposureState } from '../domain/exposure.ts';
import { decideCampaign, decideExposures, recordRefusal } from '../lifecycle/decide.ts';
import { dispatchScan } from '../lifecycle/dispatch.ts';
import { sendDailyQueues } from '../lifecycle/queue.ts';
import { campaignSummary } from '../lifecycle/campaigns.ts';
import { ingestFile } from '../ingest/file.ts';
import { loadKev } from '../intel/kev.ts';
import { campaignQuery, campaignWorkflowId } from '../contracts/campaign.ts';
import { approvePatchUpdate, patchRolloutQuery, type PatchRolloutView } from '../contracts/patch.ts';
import { startStack, type Stack } from './stack.ts';
import { createLogger } from '../runtime/log.ts';
import { freePort } from '../runtime/ports.ts';
import { projectRoot } from '../runtime/paths.ts';
import { UserError } from '../cli/errors.ts';
import type { DemoOptions, DemoResult } from '../cli/services.ts';
import { exposureTimeline } from '../lifecycle/queries.ts';

export const demoDir = path.join(projectRoot, 'demo');
const FIRST_SCAN = 'scans/shop-before-fix.trivy-k8s.json';
const KEV_EXCERPT = 'feeds/kev-excerpt.json';

/**
 * The seam where ingest meets the lifecycle: import a report, then admit what it changed into its
 * campaigns. `ctem ingest` and the scan connectors do the same two steps.
 */
export async function ingestAndDispatch(stack: Stack, config: Config, baseDir: string, file: string) {
  const summary = await ingestFile(stack.pool, path.resolve(baseDir, file), {
    scopes: config.scopes,
    scanTime: new Date(),
  });
  const dispatched = await dispatchScan({ ...stack.deps, baseDir }, stack.client, summary.scanId, {
    taskQueue: config.temporal.taskQueue,
  });
  return { summary, dispatched };
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline)
      throw new UserError(`ctem demo: ${what} did not happen within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function rowStates(stack: Stack, ids: string[]): Promise<Map<string, string>> {
  const { rows } = await stack.pool.query<{ id: string; state: string }>(
    'select id, state from exposures where id = any($1::text[])',
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r.state]));
}

interface DemoCampaign {
  id: string;
  action: string;
  priority: string;
  exposures: string[];
  assets: number;
}

async function campaignsOf(stack: Stack, ids: string[]): Promise<DemoCampaign[]> {
  const { rows } = await stack.pool.query<{ campaign_id: string; ids: string[] }>(
    `select campaign_id, array_agg(id order by id) as ids from exposures
      where id = any($1::text[]) group by campaign_id order by campaign_id`,
    [ids],
  );
  const out: DemoCampaign[] = [];
  for (const r of rows) {
    const s = (await campaignSummary(stack.pool, r.campaign_id))!;
    out.push({ id: s.id, action: s.action, priority: s.priority, exposures: r.ids, assets: s.totals.assets });
  }
  return out.sort((a, b) => a.action.localeCompare(b.action));
}

/** Steps 6 and 7: each campaign's rollout, its plan approved by the security lead, then the re-scan. */
async function rolloutsAndVerification(
  stack: Stack,
  campaigns: DemoCampaign[],
  out: (line: string) => void,
  stepTimeout: number,
): Promise<void> {
  const client = stack.client;
  for (const c of campaigns) {
    const rolloutId = `patch-${c.id}-r1`;
    const handle = client.workflow.getHandle(rolloutId);
    let plan: PatchRolloutView | undefined;
    await waitFor(`the plan of ${rolloutId}`, stepTimeout, async () => {
      plan = await handle.query(patchRolloutQuery);
      return plan.status === 'awaiting-approval';
    });
    const canary = plan!.hosts.filter((h) => h.canary).map((h) => h.host);
    out(
      canary.length > 0 && plan!.hosts.length > canary.length
        ? `   - ${c.action}: ${plan!.hosts.length} image(s), canary first (${canary.join(', ')}), then the rest`
        : `   - ${c.action}: ${plan!.hosts.length} image(s), all at once (${plan!.hosts.length === 1 ? 'a single image needs no canary' : 'no canary configured'})`,
    );
    out(`     plan: ${plan!.plan?.summary.split('\n')[0]}`);
    const approver = plan!.approvers[0]!;
    await handle.executeUpdate(approvePatchUpdate, {
      args: [{ actor: { personId: approver, via: 'cli' }, comment: 'in tonight’s window' }],
    });
    out(`     ${approver} approves the plan (window: ${plan!.window || 'any time'})`);
  }
  out('');
  out(
    '7. Verification: the demo scan connector imports the bundled after-fix report as each targeted re-scan',
  );
  const ids = campaigns.flatMap((c) => c.exposures);
  try {
    await waitFor('verification of every fixed exposure', stepTimeout, async () => {
      const states = await rowStates(stack, ids);
      return ids.every((id) => ['resolved', 'risk-accepted'].includes(states.get(id) ?? ''));
    });
  } catch (err) {
    // Say where each exposure got stuck before giving up.
    for (const id of ids) {
      const t = await exposureTimeline(stack.pool, id);
      out(
        `   ${id} is ${t?.state}; last: ${t?.timeline
          .slice(-3)
          .map((e) => `${e.type} (${e.reason})`)
          .join('; ')}`,
      );
    }
    throw err;
  }
  const { rows: jobs } = await stack.pool.query<{ host: string; output: string }>(
    `select distinct j.host, j.output from patch_jobs j where j.campaign_id = any($1::text[]) order by 1, 2`,
    [campaigns.map((c) => c.id)],
  );
  for (const j of jobs) out(`   evidence from ${j.host}: ${j.output}`);
}

export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  const out = opts.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const stepTimeout = opts.stepTimeoutMs ?? 120_000;
  const config = parseConfig(await readFile(path.join(demoDir, 'ctem.yaml'), 'utf8'), 'demo/ctem.yaml');
  config.http.port = 0;
  config.metrics.port = 0;
  const home = await mkdtemp(path.join(os.tmpdir(), 'ctem-demo-'));
  // PostgreSQL runs as the postgres user when we are root: it must be able to enter the folder.
  await chmod(home, 0o755);
  const log = createLogger('ctem-demo', process.env.CTEM_LOG_LEVEL ?? 'error');

  out(`1. Starting the embedded stack (PostgreSQL, Temporal dev server, worker) in ${home}`);
  const [pgPort, temporalPort] = [await freePort(), await freePort()];
  const stack = await startStack({
    config,
    baseDir: demoDir,
    home,
    log,
    env: {
      ...process.env,
      CTEM_PG_PORT: String(pgPort),
      CTEM_TEMPORAL_PORT: String(temporalPort),
      CTEM_TEMPORAL_UI: '0',
    },
    onProgress: (s) => out(`   ${s}…`),
  });
  try {
    const client = stack.client;
    out(`   up: Temporal on ${stack.info.temporal.address}, PostgreSQL on 127.0.0.1:${pgPort}`);

    out('');
    const kev = await loadKev(stack.pool, path.join(demoDir, KEV_EXCERPT));
    out(
      `2. Threat intel: ${path.join('demo', KEV_EXCERPT)}, an excerpt of CISA's KEV catalog (${kev.records} entry, version ${kev.sourceVersion ?? '?'})`,
    );
    out(`   Ingesting the bundled scan ${path.join('demo', FIRST_SCAN)}: the shop's three container images`);
    out('   The urgent campaign is sent to its owner at once (console notifier):');
    const first = await ingestAndDispatch(stack, config, demoDir, FIRST_SCAN);
    const { rows: created } = await stack.pool.query<{ id: string }>(
      'select id from exposures where first_scan_id = $1 order by id',
      [first.summary.scanId],
    );
    const ids = created.map((r) => r.id);
    out(
      `   scan ${first.summary.scanId}: ${first.summary.findings} findings on ${first.summary.assets.covered} image(s), ${first.summary.exposures.new} new exposures`,
    );

    out('');
    out(`3. Campaigns: one fix, in one scope, for one owner, across every image it applies to`);
    await waitFor('every campaign to hold its exposures', stepTimeout, async () => {
      const states = await rowStates(stack, ids);
      return ids.every((id) => states.get(id) === 'awaiting-decision');
    });
    const campaigns = await campaignsOf(stack, ids);
    out(
      `   ${ids.length} exposures → ${campaigns.length} campaigns, ${first.dispatched.started} durable workflows (one per campaign, not per exposure):`,
    );
    for (const c of campaigns) {
      const v = await client.workflow.getHandle(campaignWorkflowId(c.id, 1)).query(campaignQuery);
      out(
        `   - ${c.priority}: ${c.action} — ${c.exposures.length} exposure(s); next deadline ${v.nextDue?.slice(0, 10)} (SLA clocks start when ctem learned of them)`,
      );
    }

    out('');
    out(
      "4. dana's daily queue (09:00): one message, every campaign waiting for her (the urgent one marked as sent at once), bulk actions",
    );
    const nine = new Date(stack.deps.clock());
    nine.setUTCHours(9, 0, 0, 0);
    if (nine.getTime() <= stack.deps.clock()) nine.setUTCDate(nine.getUTCDate() + 1);
    await sendDailyQueues({ ...stack.deps, clock: () => nine.getTime() });

    out('');
    out(
      '5. Decisions, through the decision API the Slack and Teams bots use: one per campaign, exceptions per exposure',
    );
    const as = (personId: string): Actor => ({ personId, via: 'cli' });
    const openssl = campaigns.find((c) => c.action.includes('openssl'))!;
    const intruder = { kind: 'approve' as const, actor: as('max') };
    const refused = await decideCampaign(client, stack.pool, openssl.id, intruder);
    if (refused.applied.length === 0) {
      for (const id of openssl.exposures)
        await recordRefusal(stack.pool, { exposureId: id, decision: intruder, reason: refused.reason ?? '' });
      out(`   max tries to approve "${openssl.action}": refused — ${refused.reason}`);
    }
    const expat = campaigns.find((c) => c.action.includes('libexpat1'))!;
    const { rows: adminRows } = await stack.pool.query<{ id: string }>(
      `select e.id from exposures e join assets a on a.id = e.asset_id
        where e.id = any($1::text[]) and a.image_repo like '%/shop/admin'`,
      [expat.exposures],
    );
    const exception = adminRows[0]!.id;
    const until = new Date(stack.deps.clock() + 30 * 86_400_000).toISOString();
    const accepted = await decideExposures(client, stack.pool, [exception], {
      kind: 'acceptRisk',
      actor: as('sam'),
      justification: 'legacy admin image, reachable only from the office VPN; replaced next quarter',
      expires: until,
    });
    out(
      `   sam accepts the risk of ${exception} (the legacy admin image) until ${until.slice(0, 10)}: ${
        accepted.get(exception)?.ok ? 'risk-accepted' : 'refused'
      }`,
    );
    for (const c of campaigns) {
      const r = await decideCampaign(client, stack.pool, c.id, {
        kind: 'approve',
        actor: as('dana'),
        comment: 'patch in tonight’s window',
      });
      out(`   dana approves "${c.action}": ${r.applied.length} exposure(s) now remediating`);
    }

    out('');
    out(
      '6. Remediation per campaign: a ticket (none configured here: recorded as such) and one patch rollout',
    );
    out('   across its images with the demo executor; its plan (dry run) goes to the scope security lead:');
    await rolloutsAndVerification(stack, campaigns, out, stepTimeout);

    out('');
    out('8. Result');
    const result: DemoResult['exposures'] = [];
    for (const id of ids) {
      const t = (await exposureTimeline(stack.pool, id))!;
      result.push({
        id,
        state: t.state as ExposureState,
        priority: t.priority ?? '-',
        exposureSeconds: t.exposureSeconds === null ? null : Number(t.exposureSeconds),
      });
      out(
        t.state === 'resolved'
          ? `   ${id}: resolved, verified by scan ${t.verified?.scanId} at ${t.verified?.at}`
          : `   ${id}: ${t.state}${t.riskAccepted ? ` by ${t.riskAccepted.by} until ${t.riskAccepted.until}` : ''}`,
      );
    }
    out('');
    out(`   The record of ${ids[0]} (what \`ctem exposure show\` prints):`);
    const t = (await exposureTimeline(stack.pool, ids[0]!))!;
    for (const e of t.timeline)
      out(`   ${e.at.slice(11, 23)}  ${e.type.padEnd(20)} ${e.actor.padEnd(7)} ${e.reason ?? ''}`);
    out('');
    const resolved = result.filter((r) => r.state === 'resolved').length;
    out(
      `Done: ${resolved} of ${ids.length} exposures verified fixed by a re-scan, in ${campaigns.length} campaigns; ${
        result.filter((r) => r.state === 'risk-accepted').length
      } risk accepted until it expires.`,
    );
    return { exposures: result, home };
  } finally {
    out('Stopping the stack…');
    await stack.stop();
    if (!opts.keep) await rm(home, { recursive: true, force: true });
    else out(`State kept in ${home}`);
  }
}
