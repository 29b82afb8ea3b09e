// Shared set-up of the lifecycle tests: a configuration with people, roles and short SLA windows, a
// seeded inventory, implementations of the lifecycle ports that record what they are asked (they
// are registered through the same registry the real integrations use), and polling helpers.
import type { Client } from '@temporalio/client';
import { historyFixtureJson } from './histories.ts';
import { parseConfig, type Config } from '../../domain/config.ts';
import { exposureId, exposureWorkflowId } from '../../domain/exposure.ts';
import type { Pool } from '../../runtime/pool.ts';
import type {
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
import { exposureStateQuery, type ExposureView } from '../../contracts/exposure.ts';

/** Everything the recording ports were asked to do, in order. */
export interface PortLog {
  notifications: OwnerNotification[];
  /** Ticket calls; creates and updates carry the unit's priority as rendered. */
  tickets: { op: string; unitId?: string; ref?: TicketRef; text?: string; priority?: string }[];
  patches: { op: 'plan' | 'apply'; unitId: string }[];
  rescans: RescanRequest[];
}

export function newPortLog(): PortLog {
  return { notifications: [], tickets: [], patches: [], rescans: [] };
}

/**
 * Register recording implementations under the names "recording" (notifier, ticket system, patch
 * executor, scan connector). The ticket system keeps one ticket per unit, as the real ones must.
 */
/**
 * The registry of a test's workers and dispatches: the built-in one with "recording" ports that
 * write what they were asked to do into `log`. Pass it as `registry` to temporal.worker and testDeps.
 */
export function recordingPorts(
  log: PortLog,
  opts: { patchOk?: boolean } = {},
): (builtIn: IntegrationRegistry) => IntegrationRegistry {
  const tickets = new Map<string, TicketRef>();
  const notifier: Notifier = {
    name: 'recording',
    async notify(n) {
      log.notifications.push(n);
      return { delivered: [{ via: 'recording', ref: n.key }] };
    },
  };
  const ticketSystem: TicketSystem = {
    name: 'recording',
    async upsert(unit) {
      let ref = tickets.get(unit.id);
      if (!ref) {
        ref = { system: 'recording', key: `REC-${tickets.size + 1}` };
        tickets.set(unit.id, ref);
        log.tickets.push({ op: 'create', unitId: unit.id, ref, priority: unit.priority });
      } else log.tickets.push({ op: 'update', unitId: unit.id, ref, priority: unit.priority });
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
    async plan(unitId, targets): Promise<PatchPlan> {
      log.patches.push({ op: 'plan', unitId });
      return { executor: 'recording', unitId, targets, summary: 'recorded plan', steps: [] };
    },
    async apply(plan) {
      log.patches.push({ op: 'apply', unitId: plan.unitId });
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
 * A configuration with two scopes: "prod" (recording ports wired, SLA windows in seconds) and
 * "bare" (nothing configured: the honest no-op paths). Windows: Act due after `actWindow`.
 */
export function lifecycleConfig(opts: { actWindow?: string; ladder?: string; extra?: string } = {}): Config {
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
  const { rows } = await pool.query<{ id: number }>(
    `insert into scans (scanner, format, source, scope, started_at, finished_at) values ('test', 'test', 'rescan', $1, $2, $2) returning id`,
    [scope, at.toISOString()],
  );
  return { scanId: rows[0]!.id, at: at.toISOString() };
}

export async function view(client: Client, id: string): Promise<ExposureView> {
  return await client.workflow.getHandle(exposureWorkflowId(id)).query(exposureStateQuery);
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
  id: string,
  state: string,
  timeoutMs?: number,
): Promise<ExposureView> {
  return await eventually(
    `exposure ${id} to be ${state}`,
    () => view(client, id),
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
 * With CTEM_RECORD_HISTORIES=1, save the workflow's event history as a replay fixture under
 * test/lifecycle/histories/ (replay.test.ts replays every fixture against the current code).
 */
export async function keepHistory(client: Client, id: string, name: string): Promise<void> {
  await keepWorkflowHistory(client, exposureWorkflowId(id), name);
}

/** Any workflow's history as a replay fixture (test/lifecycle/histories), with CTEM_RECORD_HISTORIES=1. */
export async function keepWorkflowHistory(client: Client, workflowId: string, name: string): Promise<void> {
  if (!process.env.CTEM_RECORD_HISTORIES) return;
  const { writeFile } = await import('node:fs/promises');
  const path = await import('node:path');
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  await writeFile(path.join(import.meta.dirname, 'histories', `${name}.json`), historyFixtureJson(history));
}
