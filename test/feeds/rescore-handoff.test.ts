// Re-scoring hands exactly the changed exposures to their lifecycles, on the real Temporal dev
// server: a CVE newly in CISA KEV escalates its open exposure at once (its campaign's workflow gets
// one `rescored` signal; the priority and deadline move, a `rescored` event is recorded), the other
// campaigns are not signalled at all — from
// `ctem feeds load`, `ctem feeds rescore` and the daily feed-sync workflow alike. Without Temporal
// the command says so and applies nothing.
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { parseConfig, type Config } from '../../domain/config.ts';
import { dispatchChanges } from '../../lifecycle/dispatch.ts';
import { applyDecision } from '../../lifecycle/decide.ts';
import { runFeedsLoad, runFeedsRescore } from '../../cli/commands/feeds.ts';
import {
  campaignOf,
  eventually,
  newPortLog,
  recordingPorts,
  seedExposures,
  untilState,
  view,
} from '../lifecycle/support.ts';
import { testDeps } from '../support/deps.ts';

const ports = recordingPorts(newPortLog());

let db: TestDatabase;
let temporal: TestTemporal;
let dir: string;

function capture() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString()));
  return { stream, text: () => text };
}

/** ctem.yaml of these tests: one internet-facing scope, stricter SLA windows than the policy's (Attend: 15 days). */
function yaml(opts: { temporal: string; feeds?: string }): string {
  return `version: 1
temporal: { address: '${opts.temporal}' }
people:
  - { id: olivia, name: Olivia Owner }
  - { id: lena, name: Lena Lead }
integrations:
  recording: {}
scopes:
  - name: edge
    internetFacing: true
    criticality: critical
    roles: { owner: [olivia], securityLead: [lena] }
    lifecycle:
      sla: { attend: 10d, track*: 40d }
${opts.feeds ?? ''}`;
}

async function writeConfig(name: string, text: string): Promise<{ file: string; config: Config }> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return { file, config: parseConfig(text) };
}

/** A CISA KEV catalog listing the given CVEs, added on the given day. */
async function writeKev(name: string, version: string, entries: { cve: string; added: string }[]) {
  const file = path.join(dir, name);
  await writeFile(
    file,
    JSON.stringify({
      catalogVersion: version,
      // Released now: each catalog of these tests is newer than the one before.
      dateReleased: new Date().toISOString(),
      count: entries.length,
      vulnerabilities: entries.map((e) => ({
        cveID: e.cve,
        vendorProject: 'Example',
        product: 'Widget',
        vulnerabilityName: `Widget flaw ${e.cve}`,
        dateAdded: e.added,
        dueDate: e.added,
        knownRansomwareCampaignUse: 'Unknown',
      })),
    }),
  );
  return file;
}

/** Seed exposures in scope edge and start their lifecycles (triaged, waiting for the owner). */
async function liveExposures(config: Config, taskQueue: string, weaknesses: string[]): Promise<string[]> {
  const s = await seedExposures(db.pool, { scope: 'edge', weaknesses });
  await dispatchChanges(
    testDeps({ pool: db.pool, config, registry: ports, baseDir: dir }),
    temporal.client,
    s.ids.map((id) => ({ exposureId: id, change: 'new' as const, scanId: s.scanId, at: s.at })),
    { taskQueue },
  );
  for (const id of s.ids) await untilState(temporal.client, db.pool, id, 'awaiting-decision');
  return s.ids;
}

async function rescoredEvents(ids: string[]): Promise<{ exposure_id: string; reason: string }[]> {
  const { rows } = await db.pool.query<{ exposure_id: string; reason: string }>(
    `select exposure_id, reason from events where type = 'rescored' and exposure_id = any($1) order by id`,
    [ids],
  );
  return rows;
}

/**
 * The signals the campaign workflow holding an exposure received, from its event history (what
 * Temporal saw, not what we counted). Each weakness here is its own campaign (no package named).
 */
async function signalsOf(id: string): Promise<string[]> {
  const { workflowId } = await campaignOf(db.pool, id);
  const history = await temporal.client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).flatMap((e) =>
    e.workflowExecutionSignaledEventAttributes?.signalName
      ? [e.workflowExecutionSignaledEventAttributes.signalName]
      : [],
  );
}

const today = () => new Date().toISOString().slice(0, 10);

beforeAll(async () => {
  db = await testDatabase();
  temporal = await testTemporal();
  dir = await mkdtemp(path.join(os.tmpdir(), 'ctem-rescore-handoff-'));
  process.env.DATABASE_URL = db.url;
  process.env.CTEM_CONFIG = '';
});

describe('re-scoring hands exactly the changed exposures to their workflows', () => {
  it('ctem feeds load kev: a CVE newly in KEV escalates its exposure at once; the others get no signal', async () => {
    const { file, config } = await writeConfig('ctem.yaml', yaml({ temporal: temporal.address }));
    const taskQueue = temporal.taskQueue('rescore-cli');
    const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
    await worker.runUntil(async () => {
      const ids = await liveExposures(config, taskQueue, ['CVE-2099-7001', 'CVE-2099-7002', 'CVE-2099-7003']);
      const [kevd, other, snoozed] = ids as [string, string, string];
      const before = await view(temporal.client, db.pool, kevd);
      const otherBefore = await view(temporal.client, db.pool, other);

      // A snoozed exposure's deadline moves by the pause, not by the policy: not a change. Snoozed
      // for a few seconds, back to waiting for its owner, its deadline is later by the pause.
      await applyDecision(temporal.client, db.pool, snoozed, {
        kind: 'snooze',
        actor: { personId: 'olivia', via: 'api' },
        until: new Date(Date.now() + 3_000).toISOString(),
        reason: 'change freeze',
      });
      await untilState(temporal.client, db.pool, snoozed, 'snoozed');
      await untilState(temporal.client, db.pool, snoozed, 'awaiting-decision');
      const snoozedBefore = await view(temporal.client, db.pool, snoozed);
      const { slaDue: triagedDue } = (await view(temporal.client, db.pool, other)) as { slaDue: string };
      expect(Date.parse(snoozedBefore.slaDue!)).toBeGreaterThan(Date.parse(triagedDue));
      await eventually(
        'the paused deadline on the row',
        () =>
          db.pool.query<{ state: string; sla_due: Date }>(
            'select state, sla_due from exposures where id = $1',
            [snoozed],
          ),
        (r) =>
          r.rows[0]?.state === 'awaiting-decision' &&
          r.rows[0].sla_due.toISOString() === snoozedBefore.slaDue,
      );

      // Triage and the SQL re-score judge alike (scope caps included): nothing to hand on yet.
      const first = capture();
      await runFeedsRescore({ config: file }, { stdout: first.stream, env: process.env });
      expect(first.text()).toMatch(
        /^re-score: 0 of \d+ open exposures change priority or deadline; 0 workflows told/,
      );

      const kev = await writeKev('kev-1.json', '2026.11.23', [{ cve: 'CVE-2099-7001', added: today() }]);
      const out = capture();
      const err = capture();
      await runFeedsLoad(
        'kev',
        kev,
        { config: file },
        { stdout: out.stream, stderr: err.stream, env: process.env },
      );
      expect(out.text()).toContain('newly listed: CVE-2099-7001\n');
      expect(out.text()).toMatch(
        /re-score: 1 of \d+ open exposures change priority or deadline; 1 workflows told, 0 without a running lifecycle\n$/,
      );
      expect(err.text()).toBe('');

      const after = await eventually(
        'the workflow to take the new priority',
        () => view(temporal.client, db.pool, kevd),
        (v) => v.priority === 'Act',
      );
      expect(before.priority).not.toBe('Act');
      // KEV + internet-facing + total technical impact: days, not weeks (3 days from the KEV date).
      expect(Date.parse(after.slaDue!)).toBeLessThan(Date.parse(before.slaDue!));
      const reasons = await db.pool.query<{ reasons: string[] }>(
        'select reasons from exposures where id = $1',
        [kevd],
      );
      expect(reasons.rows[0]!.reasons.join(' ')).toMatch(/in CISA KEV since/);
      const events = await eventually(
        'the rescored event',
        () => rescoredEvents(ids),
        (e) => e.length === 1,
      );
      expect(events[0]).toMatchObject({
        exposure_id: kevd,
        reason: expect.stringMatching(/^re-scored \S+ → Act, deadline /),
      });
      const row = await db.pool.query<{ priority: string; sla_due: Date; policy_due: Date }>(
        'select priority, sla_due, policy_due from exposures where id = $1',
        [kevd],
      );
      expect(row.rows[0]!.priority).toBe('act');
      expect(row.rows[0]!.policy_due.toISOString()).toBe(after.slaDue);

      // The others were not signalled: their workflows hold what they held.
      expect(await view(temporal.client, db.pool, other)).toMatchObject({
        priority: otherBefore.priority,
        slaDue: otherBefore.slaDue,
      });
      expect(await view(temporal.client, db.pool, snoozed)).toMatchObject({
        priority: snoozedBefore.priority,
        slaDue: snoozedBefore.slaDue,
      });
      expect(await signalsOf(kevd)).toEqual(['rescored']);
      expect(await signalsOf(other)).toEqual([]);
      expect(await signalsOf(snoozed)).toEqual([]);

      // Nothing new: nothing handed on, no further event.
      const again = capture();
      await runFeedsRescore({ config: file, json: true }, { stdout: again.stream, env: process.env });
      expect(JSON.parse(again.text())).toMatchObject({
        rescore: { changed: 0, signalled: 0, temporal: 'told' },
      });
      expect(await rescoredEvents(ids)).toHaveLength(1);
      expect(await signalsOf(kevd)).toEqual(['rescored']);
    });
  });

  it('without a reachable Temporal: says so, applies nothing, and the next run hands the change on', async () => {
    const { file: good, config } = await writeConfig('ctem-2.yaml', yaml({ temporal: temporal.address }));
    const { file: down } = await writeConfig('ctem-down.yaml', yaml({ temporal: '127.0.0.1:1' }));
    const taskQueue = temporal.taskQueue('rescore-down');
    const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
    await worker.runUntil(async () => {
      const ids = await liveExposures(config, taskQueue, ['CVE-2099-7101', 'CVE-2099-7102']);
      const kev = await writeKev('kev-2.json', '2026.11.24', [
        { cve: 'CVE-2099-7001', added: today() },
        { cve: 'CVE-2099-7101', added: today() },
      ]);
      const out = capture();
      const err = capture();
      await runFeedsLoad(
        'kev',
        kev,
        { config: down },
        { stdout: out.stream, stderr: err.stream, env: process.env },
      );
      expect(out.text()).toMatch(/re-score: 1 of \d+ open exposures change priority or deadline\n$/);
      expect(err.text()).toMatch(
        /^Temporal is not reachable \(.+\): the 1 changed decisions were neither applied nor handed to their workflows; run `ctem feeds rescore` once Temporal is up/,
      );
      expect((await view(temporal.client, db.pool, ids[0]!)).priority).not.toBe('Act');
      const row = await db.pool.query<{ priority: string }>('select priority from exposures where id = $1', [
        ids[0],
      ]);
      expect(row.rows[0]!.priority).not.toBe('act');

      const later = capture();
      await runFeedsRescore({ config: good }, { stdout: later.stream, env: process.env });
      expect(later.text()).toMatch(
        /^re-score: 1 of \d+ open exposures change priority or deadline; 1 workflows told/,
      );
      await eventually(
        'the escalation',
        () => view(temporal.client, db.pool, ids[0]!),
        (v) => v.priority === 'Act',
      );
      expect(await rescoredEvents(ids)).toEqual([
        { exposure_id: ids[0], reason: expect.stringMatching(/→ Act/) },
      ]);
    });
  });

  it('the daily feed-sync workflow loads the configured feeds and tells exactly the changed workflows', async () => {
    const kev = await writeKev('kev-3.json', '2026.11.25', [
      { cve: 'CVE-2099-7001', added: today() },
      { cve: 'CVE-2099-7101', added: today() },
      { cve: 'CVE-2099-7201', added: today() },
    ]);
    const { config } = await writeConfig(
      'ctem-3.yaml',
      yaml({ temporal: temporal.address, feeds: `feeds:\n  kev: { path: ${kev} }\n` }),
    );
    const taskQueue = temporal.taskQueue('rescore-sync');
    const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
    await worker.runUntil(async () => {
      const ids = await liveExposures(config, taskQueue, ['CVE-2099-7201', 'CVE-2099-7202']);
      const result = await temporal.client.workflow.execute('scheduledFeedSync', {
        taskQueue,
        workflowId: `feed-sync-${taskQueue}`,
        args: [],
      });
      expect(result).toMatchObject({
        ran: true,
        detail: expect.stringMatching(
          /^feed sync: kev 1 added, 0 changed, 0 removed; re-score: 1 of \d+ open exposures change priority or deadline, 1 workflows told$/,
        ),
      });
      await eventually(
        'the escalation',
        () => view(temporal.client, db.pool, ids[0]!),
        (v) => v.priority === 'Act',
      );
      expect(await rescoredEvents(ids)).toEqual([
        { exposure_id: ids[0], reason: expect.stringMatching(/→ Act/) },
      ]);
      const recorded = await db.pool.query<{ type: string; reason: string }>(
        `select type, reason from events where actor = 'schedule' and data->>'workflowId' = $1`,
        [`feed-sync-${taskQueue}`],
      );
      expect(recorded.rows).toEqual([
        { type: 'schedule-ran', reason: (result as { detail: string }).detail },
      ]);
    });
  });

  it('tells a campaign once for all its exposures a feed change re-scores: one signal per campaign workflow', async () => {
    const { file, config } = await writeConfig('ctem-4.yaml', yaml({ temporal: temporal.address }));
    const taskQueue = temporal.taskQueue('rescore-campaign');
    const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
    await worker.runUntil(async () => {
      // Two weaknesses fixed by one upgrade on one host: one campaign.
      const s = await seedExposures(db.pool, {
        scope: 'edge',
        weaknesses: ['CVE-2099-7301', 'CVE-2099-7302'],
        package: { name: 'widgetd', fixedVersion: '2.0' },
      });
      await dispatchChanges(
        testDeps({ pool: db.pool, config, registry: ports, baseDir: dir }),
        temporal.client,
        s.ids.map((id) => ({ exposureId: id, change: 'new' as const, scanId: s.scanId, at: s.at })),
        { taskQueue },
      );
      for (const id of s.ids) await untilState(temporal.client, db.pool, id, 'awaiting-decision');
      const [a, b] = await Promise.all(s.ids.map((id) => campaignOf(db.pool, id)));
      expect(a!.workflowId).toBe(b!.workflowId);

      const kev = await writeKev('kev-4.json', '2026.11.26', [
        { cve: 'CVE-2099-7001', added: today() },
        { cve: 'CVE-2099-7101', added: today() },
        { cve: 'CVE-2099-7201', added: today() },
        { cve: 'CVE-2099-7301', added: today() },
        { cve: 'CVE-2099-7302', added: today() },
      ]);
      const out = capture();
      await runFeedsLoad(
        'kev',
        kev,
        { config: file },
        { stdout: out.stream, stderr: capture().stream, env: process.env },
      );
      expect(out.text()).toMatch(
        /re-score: 2 of \d+ open exposures change priority or deadline; 2 workflows told/,
      );
      for (const id of s.ids)
        await eventually(
          'the escalation',
          () => view(temporal.client, db.pool, id),
          (v) => v.priority === 'Act',
        );
      expect(await signalsOf(s.ids[0]!)).toEqual(['rescored']);
      expect((await rescoredEvents(s.ids)).map((e) => e.exposure_id).sort()).toEqual([...s.ids].sort());
    });
  });
});
