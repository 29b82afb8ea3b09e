// Shared set-up of the lifecycle tests: a configuration with people, roles and short SLA windows, a
// seeded inventory, implementations of the lifecycle ports that record what they are asked (they
// are registered through the same registry the real integrations use), and polling helpers.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { historyFixtureJson } from './histories.ts';
import { parseConfig, type Config } from '../../domain/config.ts';
import { exposureId, type ExposureState } from '../../domain/exposure.ts';
import type { Pool } from '../../runtime/pool.ts';
import type {
  DigestNotification,
  Notifier,
  OwnerNotification,
  PatchExecutor,
  PatchPlan,
  RescanRequest,
  ScanConnector,
  TicketRef,
  TicketSystem,
} from '../../domain/ports.ts';
import type { IntegrationRegistry } from '../../app/integrations.ts';
import { campaignWorkflowId, exposureQuery, type ExposureView } from '../../contracts/campaign.ts';

/** Everything the recording ports were asked to do, in order. */
export interface PortLog {
  notifications: OwnerNotification[];
  /** Messages about many campaigns: daily queues, escalation digests, onboarding summaries. */
  digests: DigestNotification[];
  /** Ticket calls; creates and updates carry the campaign's priority as rendered. */
  tickets: { op: string; campaignId?: string; ref?: TicketRef; text?: string; priority?: string }[];
  patches: { op: 'plan' | 'apply'; rolloutId: string; hosts: string[] }[];
  rescans: RescanRequest[];
}

export function newPortLog(): PortLog {
  return { notifications: [], digests: [], tickets: [], patches: [], rescans: [] };
}

/**
 * Register recording implementations under the names "recording" (notifier, ticket system, patch
 * executor, scan connector). The ticket system keeps one ticket per campaign, as the real ones must.
 */
/**
 * The registry of a test's workers and dispatches: the built-in one with "recording" ports that
 * write what they were asked to do into `log`. Pass it as `registry` to temporal.worker and testDeps.
 */
export function recordingPorts(
  log: PortLog,
  opts: {
    patchOk?: boolean;
    /** Awaited by every ticket upsert before it answers (a slow ticket system). */
    ticketGate?: () => Promise<void>;
  } = {},
): (builtIn: IntegrationRegistry) => IntegrationRegistry {
  const tickets = new Map<string, TicketRef>();
  const notifier: Notifier = {
    name: 'recording',
    async notify(n) {
      log.notifications.push(n);
      return { delivered: [{ via: 'recording', ref: n.key }] };
    },
    async digest(n) {
      log.digests.push(n);
      return { delivered: [{ via: 'recording', ref: n.key }] };
    },
  };
  const ticketSystem: TicketSystem = {
    name: 'recording',
    async upsert(campaign) {
      await opts.ticketGate?.();
      let ref = tickets.get(campaign.id);
      if (!ref) {
        ref = { system: 'recording', key: `REC-${tickets.size + 1}` };
        tickets.set(campaign.id, ref);
        log.tickets.push({ op: 'create', campaignId: campaign.id, ref, priority: campaign.priority });
      } else log.tickets.push({ op: 'update', campaignId: campaign.id, ref, priority: campaign.priority });
      return ref;
    },
    async comment(ref, text) {
      log.tickets.push({ op: 'comment', ref, text });
    },
    async close(ref, text) {
      log.tickets.push({ op: 'close', ref, text });
    },
    async reopen(ref, text) {
      log.tickets.push({ op: 'reopen', ref, text });
    },
    async status() {
      return 'open';
    },
  };
  const patch: PatchExecutor = {
    name: 'recording',
    async plan(rolloutId, targets): Promise<PatchPlan> {
      log.patches.push({ op: 'plan', rolloutId, hosts: targets.map((t) => t.host) });
      return { executor: 'recording', rolloutId, targets, summary: 'recorded plan', steps: [] };
    },
    async apply(plan) {
      log.patches.push({ op: 'apply', rolloutId: plan.rolloutId, hosts: plan.targets.map((t) => t.host) });
      const ok = opts.patchOk ?? true;
      return {
        ok,
        hosts: plan.targets.map((t) => ({ host: t.host, ok, output: ok ? 'upgraded' : 'apt failed' })),
        finishedAt: new Date().toISOString(),
      };
    },
  };
  const scanner: ScanConnector = {
    name: 'recording',
    async rescan(req) {
      log.rescans.push(req);
      return { requestId: req.requestId, status: 'queued' };
    },
  };
  return (builtIn) => ({
    ...builtIn,
    notifiers: { ...builtIn.notifiers, recording: () => notifier },
    tickets: { ...builtIn.tickets, recording: () => ticketSystem },
    patch: { ...builtIn.patch, recording: () => patch },
    scanners: { ...builtIn.scanners, recording: () => scanner },
  });
}

/**
 * A configuration with two scopes: "prod" (recording ports wired, SLA windows in seconds, every
 * decision request urgent and escalations sent at once unless `notifications` says otherwise) and
 * "bare" (nothing configured: the honest no-op paths). Windows: Act due after `actWindow`.
 */
export function lifecycleConfig(
  opts: { actWindow?: string; ladder?: string; extra?: string; notifications?: string } = {},
): Config {
  const act = opts.actWindow ?? '1h';
  return parseConfig(`
version: 1
people:
  - { id: olivia, name: Olivia Owner, manager: mona }
  - { id: mona, name: Mona Manager }
  - { id: adam, name: Adam Approver }
  - { id: lena, name: Lena Lead }
  - { id: cyrus, name: Cyrus Ciso }
  - { id: pat, name: Pat Passerby }
integrations:
  recording: {}
scopes:
  - name: prod
    internetFacing: true
    criticality: critical
    roles: { owner: [olivia], approver: [adam], securityLead: [lena], ciso: [cyrus] }
    channel: { slack: C0PROD }
    tickets: { system: recording }
    patch: { executor: recording }
    scan: { connector: recording }
    notifications: ${opts.notifications ?? '{ urgent: { priority: [Act, Attend, Track*, Track] }, escalationWindow: 0s }'}
    lifecycle:
      sla: { act: ${act}, attend: ${act}, track*: ${act}, track: ${act} }
${opts.ladder ?? ''}
      maxSnooze: 30d
      maxRiskAcceptance: 90d
      riskExpiryReminder: 2s
      verifyWithin: 1h
  - name: bare
    roles: { owner: [olivia], approver: [adam], securityLead: [lena], ciso: [cyrus] }
${opts.extra ?? ''}
`);
}

let assetCounter = 0;

/** An asset and its exposures, inserted as ingest would leave them (state open, first seen now). */
export async function seedExposures(
  pool: Pool,
  opts: {
    scope: string;
    weaknesses: string[];
    host?: string;
    package?: { name: string; fixedVersion?: string };
    firstSeen?: Date;
    scanId?: number;
    /** The scanner reports an EPSS of 0.95: active exploitation, so an internet-facing critical asset gets Act. */
    exploited?: boolean;
  },
): Promise<{ assetId: number; ids: string[]; scanId: number; at: string }> {
  const host = opts.host ?? `host-${process.pid}-${++assetCounter}`;
  const at = (opts.firstSeen ?? new Date()).toISOString();
  await pool.query('insert into scopes (name) values ($1) on conflict do nothing', [opts.scope]);
  const { rows } = await pool.query<{ id: number }>(
    `insert into assets (identity_key, kind, hostname, scope, criticality) values ($1, 'host', $2, $3, 'critical') returning id`,
    [`host:${host}`, host, opts.scope],
  );
  const assetId = rows[0]!.id;
  const scanId =
    opts.scanId ??
    (
      await pool.query<{ id: number }>(
        `insert into scans (scanner, format, source, scope, started_at, finished_at) values ('test', 'test', 'seed', $1, $2, $2) returning id`,
        [opts.scope, at],
      )
    ).rows[0]!.id;
  const ids: string[] = [];
  for (const w of opts.weaknesses) {
    const id = exposureId(assetId, w);
    ids.push(id);
    await pool.query(
      `insert into exposures (id, asset_id, vuln_key, scope, state, first_seen, last_seen, first_scan_id, last_scan_id)
       values ($1, $2, $3, $4, 'open', $5, $5, $6, $6)`,
      [id, assetId, w, opts.scope, at, scanId],
    );
    await pool.query(
      `insert into vulnerabilities (key, title, reported_cvss, reported_epss, reported_epss_percentile)
       values ($1, $2, $3, $4, $5) on conflict (key) do nothing`,
      [
        w,
        `Test weakness ${w}`,
        JSON.stringify([{ version: '3.1', vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }]),
        opts.exploited ? 0.95 : null,
        opts.exploited ? 0.999 : null,
      ],
    );
    if (opts.package)
      await pool.query(
        `insert into observations (exposure_id, scanner, asset_id, vuln_key, first_seen, last_seen, first_scan_id, last_scan_id,
                                   kind, title, severity, package_name, package_version, fixed_version, package_type)
         values ($1, 'test', $2, $3, $4, $4, $5, $5, 'vulnerability', $6, 'critical', $7, '1.0', $8, 'deb')`,
        [
          id,
          assetId,
          w,
          at,
          scanId,
          `Test weakness ${w}`,
          opts.package.name,
          opts.package.fixedVersion ?? null,
        ],
      );
  }
  return { assetId, ids, scanId, at };
}

export async function newScan(
  pool: Pool,
  scope: string,
  at: Date = new Date(),
): Promise<{ scanId: number; at: string }> {
  await pool.query('insert into scopes (name) values ($1) on conflict do nothing', [scope]);
  const { rows } = await pool.query<{ id: number }>(
    `insert into scans (scanner, format, source, scope, started_at, finished_at) values ('test', 'test', 'rescan', $1, $2, $2) returning id`,
    [scope, at.toISOString()],
  );
  return { scanId: rows[0]!.id, at: at.toISOString() };
}

/**
 * An exposure as its campaign holds it; once it has left the campaign (closed), as its row in the
 * read model says.
 */
export async function view(client: Client, pool: Pool, id: string): Promise<ExposureView> {
  const { rows } = await pool.query<{
    campaign_id: string | null;
    campaign_shard: number | null;
    scope: string;
    asset_id: number;
    vuln_key: string;
    state: ExposureState;
    priority: string | null;
    sla_due: Date | null;
    sla_paused: boolean;
    sla_start: Date | null;
    owner: string | null;
    policy_version: string | null;
    cvss_contextual: number | null;
    kev: boolean;
    escalation_level: number;
    sla_breached_at: Date | null;
    fixed_at: Date | null;
    verified_at: Date | null;
    verified_scan_id: number | null;
    first_seen: Date;
    resolved_at: Date | null;
  }>('select * from exposures where id = $1', [id]);
  const r = rows[0];
  if (!r) throw new Error(`no exposure ${id}`);
  if (r.campaign_id && r.campaign_shard) {
    // The campaign's answer while it runs; the row once it ended (or never started). A running
    // campaign that cannot answer is an error, not a reason to read the row.
    const handle = client.workflow.getHandle(campaignWorkflowId(r.campaign_id, r.campaign_shard));
    const held = await handle.query(exposureQuery, id).catch(async (err: unknown) => {
      if (err instanceof WorkflowNotFoundError) return null;
      const status = await handle.describe().then(
        (d) => d.status.name,
        () => 'UNKNOWN',
      );
      if (status !== 'RUNNING') return null;
      throw err;
    });
    if (held) return held;
  }
  const label = (p: string | null) =>
    ({ act: 'Act', attend: 'Attend', 'track*': 'Track*', track: 'Track' })[p ?? 'track'] ?? p ?? 'Track';
  return {
    exposureId: id,
    campaignId: r.campaign_id ?? '',
    scope: r.scope,
    assetId: r.asset_id,
    weaknessKey: r.vuln_key,
    state: r.state,
    priority: label(r.priority),
    ...(r.sla_due ? { slaDue: r.sla_due.toISOString() } : {}),
    slaPaused: r.sla_paused,
    slaStart: (r.sla_start ?? r.first_seen).toISOString(),
    ...(r.owner ? { owner: r.owner } : {}),
    policyVersion: r.policy_version ?? '',
    contextualCvss: r.cvss_contextual,
    kev: r.kev,
    escalationLevel: r.escalation_level,
    ...(r.sla_breached_at ? { slaBreachedAt: r.sla_breached_at.toISOString() } : {}),
    unverifiedWindows: 0,
    ...(r.fixed_at ? { fixedAt: r.fixed_at.toISOString() } : {}),
    ...(r.verified_at && r.verified_scan_id
      ? { verifiedBy: { scanId: Number(r.verified_scan_id), at: r.verified_at.toISOString() } }
      : {}),
    firstSeen: r.first_seen.toISOString(),
    ...(r.resolved_at ? { resolvedAt: r.resolved_at.toISOString() } : {}),
  };
}

/** The decisions recorded on an exposure, oldest first (kind and who). */
export async function decisionsOf(pool: Pool, id: string): Promise<{ kind: string; by: string }[]> {
  const { rows } = await pool.query<{ type: string; actor: string }>(
    `select type, actor from events where exposure_id = $1
        and type in ('approve', 'snooze', 'acceptRisk', 'markFalsePositive', 'reassign') order by id`,
    [id],
  );
  return rows.map((r) => ({ kind: r.type, by: r.actor }));
}

/** The campaign workflow holding an exposure now. */
export async function campaignOf(
  pool: Pool,
  id: string,
): Promise<{ campaignId: string; workflowId: string }> {
  const { rows } = await pool.query<{ campaign_id: string; campaign_shard: number }>(
    'select campaign_id, campaign_shard from exposures where id = $1',
    [id],
  );
  const r = rows[0];
  if (!r?.campaign_id) throw new Error(`exposure ${id} is in no campaign`);
  return { campaignId: r.campaign_id, workflowId: campaignWorkflowId(r.campaign_id, r.campaign_shard) };
}

function describeError(err: unknown): string {
  const parts: string[] = [];
  for (let e = err, depth = 0; e !== undefined && depth < 5; depth++) {
    parts.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(' <- ');
}

/** Poll until `check` holds (or fail with the last value seen). */
export async function eventually<T>(
  what: string,
  read: () => Promise<T>,
  check: (v: T) => boolean,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastErr: unknown;
  for (;;) {
    try {
      last = await read();
      if (check(last)) return last;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}; last seen: ${JSON.stringify(last) ?? describeError(lastErr)}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function untilState(
  client: Client,
  pool: Pool,
  id: string,
  state: string,
  timeoutMs?: number,
): Promise<ExposureView> {
  return await eventually(
    `exposure ${id} to be ${state}`,
    () => view(client, pool, id),
    (v) => v.state === state,
    timeoutMs,
  );
}

export async function eventTypes(pool: Pool, id: string): Promise<string[]> {
  const { rows } = await pool.query<{ type: string }>(
    'select type from events where exposure_id = $1 order by id',
    [id],
  );
  return rows.map((r) => r.type);
}

/**
 * With CTEM_RECORD_HISTORIES=1, save the history of the campaign workflow holding an exposure as a
 * replay fixture under test/lifecycle/histories/ (replay.test.ts replays every fixture).
 */
export async function keepHistory(client: Client, pool: Pool, id: string, name: string): Promise<void> {
  await keepWorkflowHistory(client, (await campaignOf(pool, id)).workflowId, name);
}

/** Any workflow's history as a replay fixture (test/lifecycle/histories), with CTEM_RECORD_HISTORIES=1. */
export async function keepWorkflowHistory(client: Client, workflowId: string, name: string): Promise<void> {
  if (!process.env.CTEM_RECORD_HISTORIES) return;
  const { writeFile } = await import('node:fs/promises');
  const path = await import('node:path');
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  await writeFile(path.join(import.meta.dirname, 'histories', `${name}.json`), historyFixtureJson(history));
}

/**
 * The inputs a workflow's history shows it scheduled an activity with, oldest first: what a retried
 * attempt of that activity is given again.
 */
export async function scheduledActivityInputs<T>(
  client: Client,
  workflowId: string,
  activityType: string,
): Promise<T[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).flatMap((e) => {
    const a = e.activityTaskScheduledEventAttributes;
    const data = a?.input?.payloads?.[0]?.data;
    return a?.activityType?.name === activityType && data
      ? [JSON.parse(Buffer.from(data).toString('utf8')) as T]
      : [];
  });
}
