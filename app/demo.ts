// The demo behind `ctem demo`: the whole loop on bundled sample data, on the embedded stack, told
// step by step.
// It starts PostgreSQL, Temporal and the worker as `ctem up` does (in a scratch folder, on free
// ports, so it never touches a real deployment), ingests a bundled scan, triages, asks the owner,
// takes the owner's approval through the decision API, shows the patch plan to the approver and
// takes theirs, patches with the demo executor (which changes no machine and says so), re-scans by importing the bundled "after the fix" report,
// verifies, resolves, prints the record, and stops everything.
import { mkdtemp, readFile, rm, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { parseConfig, type Config } from '../domain/config.ts';
import { exposureWorkflowId, type ExposureState } from '../domain/exposure.ts';
import type { Pool } from '../runtime/pool.ts';
import { applyDecision, recordRefusal } from '../lifecycle/decide.ts';
import { dispatchScan } from '../lifecycle/dispatch.ts';
import { ingestFile } from '../ingest/file.ts';
import { exposureStateQuery, type ExposureView } from '../contracts/exposure.ts';
import { approvePatchUpdate, patchRolloutQuery, type PatchRolloutView } from '../contracts/patch.ts';
import { startStack, type Stack } from './stack.ts';
import { createLogger } from '../runtime/log.ts';
import { freePort } from '../runtime/ports.ts';
import { projectRoot } from '../runtime/paths.ts';
import { UserError } from '../cli/errors.ts';
import type { DemoOptions, DemoResult } from '../cli/services.ts';
import { exposureTimeline } from '../lifecycle/queries.ts';

export const demoDir = path.join(projectRoot, 'demo');
const FIRST_SCAN = 'scans/web-before-fix.trivy.json';

/**
 * The seam where ingest meets the lifecycle: import a report, then start or signal the workflows
 * of exactly what it changed. `ctem ingest` and the scan connectors do the same two steps.
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

async function views(client: Client, ids: string[]): Promise<ExposureView[]> {
  return await Promise.all(
    ids.map((id) => client.workflow.getHandle(exposureWorkflowId(id)).query(exposureStateQuery)),
  );
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

async function rowStates(pool: Pool, ids: string[]): Promise<Map<string, string>> {
  const { rows } = await pool.query<{ id: string; state: string }>(
    'select id, state from exposures where id = any($1::text[])',
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r.state]));
}

export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  const out = opts.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const stepTimeout = opts.stepTimeoutMs ?? 120_000;
  const config = parseConfig(await readFile(path.join(demoDir, 'ctem.yaml'), 'utf8'), 'demo/ctem.yaml');
  config.http.port = 0;
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
    out(`2. Ingesting the bundled scan ${path.join('demo', FIRST_SCAN)}`);
    out(
      '3. Triaging (policy "default": SSVC with CVSS, EPSS and KEV) and starting one lifecycle workflow per new exposure',
    );
    out('   Owners are notified once per remediation unit (console notifier):');
    const first = await ingestAndDispatch(stack, config, demoDir, FIRST_SCAN);
    out(
      `   scan ${first.summary.scanId}: ${first.summary.findings} findings on ${first.summary.assets.covered} asset(s), ${first.summary.exposures.new} new exposures; ${first.dispatched.started} workflows started`,
    );
    const { rows: created } = await stack.pool.query<{ id: string }>(
      'select id from exposures where first_scan_id = $1 order by id',
      [first.summary.scanId],
    );
    const ids = created.map((r) => r.id);
    await waitFor('triage of every exposure', stepTimeout, async () =>
      (await views(client, ids)).every((v) => v.state === 'awaiting-decision'),
    );
    const { rows: triaged } = await stack.pool.query<{ id: string; reason: string }>(
      `select exposure_id as id, reason from events where type = 'triaged' and exposure_id = any($1::text[]) order by exposure_id`,
      [ids],
    );
    for (const v of await views(client, ids)) {
      out(
        `   - ${v.exposureId}: ${v.priority}, due ${v.slaDue?.slice(0, 10)}, owner ${v.owner}, unit ${v.remediationUnitId}`,
      );
      out(`       why: ${triaged.find((t) => t.id === v.exposureId)?.reason ?? v.reasons.join(' ')}`);
    }

    out('');
    out('4. Decisions arrive through the decision API (the same one the Slack and Teams bots use):');
    const intruder = { kind: 'approve' as const, actor: { personId: 'max', via: 'cli' as const } };
    const refused = await applyDecision(client, ids[0]!, intruder);
    if (!refused.ok) {
      await recordRefusal(stack.pool, { exposureId: ids[0]!, decision: intruder, reason: refused.reason });
      out(`   max tries to approve ${ids[0]}: refused — ${refused.reason}`);
    }
    for (const id of ids) {
      const r = await applyDecision(client, id, {
        kind: 'approve',
        actor: { personId: 'dana', via: 'cli' },
        comment: 'patch in tonight’s window',
      });
      out(`   dana approves ${id}: ${r.ok ? `now ${r.state}` : `refused — ${r.reason}`}`);
    }

    out('');
    out(
      '5. Remediation per unit: a ticket (none configured here: recorded as such) and a patch rollout with the demo executor;',
    );
    out(
      '   its plan (dry run) goes to the scope approver, who approves it (as the Slack/Teams button would):',
    );
    const rollouts = new Set<string>();
    await waitFor('a patch rollout per unit', stepTimeout, async () => {
      const vs = await views(client, ids);
      vs.forEach((v) => v.patchRolloutId && rollouts.add(v.patchRolloutId));
      return vs.every((v) => v.patchRolloutId !== undefined || v.state !== 'remediating');
    });
    for (const rolloutId of [...rollouts].sort()) {
      const handle = client.workflow.getHandle(rolloutId);
      let plan: PatchRolloutView | undefined;
      await waitFor(`the plan of ${rolloutId}`, stepTimeout, async () => {
        plan = await handle.query(patchRolloutQuery);
        return plan.status === 'awaiting-approval';
      });
      out(`   - ${rolloutId}: ${plan!.plan?.summary}`);
      const approver = plan!.approvers[0]!;
      await handle.executeUpdate(approvePatchUpdate, {
        args: [{ actor: { personId: approver, via: 'cli' }, comment: 'in tonight’s window' }],
      });
      out(`     ${approver} approves the plan (window: ${plan!.window || 'any time'})`);
    }
    out(
      '6. Verification: the demo scan connector imports the bundled after-fix report as the targeted re-scan',
    );
    try {
      await waitFor('verification of every exposure', stepTimeout, async () => {
        const states = await rowStates(stack.pool, ids);
        return ids.every((id) => states.get(id) === 'resolved');
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
    const { rows: effects } = await stack.pool.query<{ type: string; reason: string }>(
      `select distinct on (type, reason) type, reason from events
        where exposure_id = any($1::text[]) and type in ('ticket-skipped', 'patch-succeeded', 'rescan-requested', 'resolved')
        order by type, reason`,
      [ids],
    );
    const { rows: jobs } = await stack.pool.query<{ host: string; output: string }>(
      `select distinct j.host, j.output from patch_jobs j join patch_rollouts r on r.id = j.rollout_id
        where r.exposure_ids && $1::text[] order by 1, 2`,
      [ids],
    );
    for (const type of ['ticket-skipped', 'patch-succeeded', 'rescan-requested', 'resolved']) {
      for (const e of effects.filter((x) => x.type === type)) out(`   ${type}: ${e.reason}`);
      if (type === 'patch-succeeded') for (const j of jobs) out(`   evidence from ${j.host}: ${j.output}`);
    }

    out('');
    out('7. Result');
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
        `   ${id}: ${t.state}, verified by scan ${t.verified?.scanId} at ${t.verified?.at}, exposed ${t.exposureSeconds} s`,
      );
    }

    out('');
    out(`8. The record of ${ids[0]} (what \`ctem exposure show\` prints):`);
    const t = (await exposureTimeline(stack.pool, ids[0]!))!;
    for (const e of t.timeline)
      out(`   ${e.at.slice(11, 23)}  ${e.type.padEnd(20)} ${e.actor.padEnd(7)} ${e.reason ?? ''}`);
    out('');
    out(
      `Done: ${result.filter((r) => r.state === 'resolved').length} of ${ids.length} exposures verified fixed by a re-scan.`,
    );
    return { exposures: result, home };
  } finally {
    out('Stopping the stack…');
    await stack.stop();
    if (!opts.keep) await rm(home, { recursive: true, force: true });
    else out(`State kept in ${home}`);
  }
}
