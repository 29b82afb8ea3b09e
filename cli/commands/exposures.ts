// `ctem exposures list` — the queue; `ctem exposure show ID` — one exposure and its timeline. Both
// read the lifecycle's record in PostgreSQL (the workflows write it), so they work whether or not
// the stack is running.
import type { Command } from 'commander';
import type { Pool } from '../../db/pool.ts';
import { exposureStates } from '../../domain/exposure.ts';
import { outcomeLabel } from '../../lifecycle/triage.ts';
import { load, openDatabase, type GlobalOptions } from '../context.ts';
import { UserError } from '../errors.ts';

export interface ExposureListRow {
  id: string;
  state: string;
  priority: string | null;
  slaDue: string | null;
  breached: boolean;
  owner: string | null;
  scope: string | null;
  asset: string;
  weakness: string;
  firstSeen: string;
  remediationUnit: string | null;
  /** Contextual CVSS score of the triage (null: no usable vector). */
  cvss: number | null;
  /** In CISA KEV. */
  kev: boolean;
}

export interface ExposureTimelineEvent {
  at: string;
  type: string;
  actor: string;
  reason: string | null;
  data: Record<string, unknown>;
}

const PRIORITY_ORDER = `case priority when 'act' then 0 when 'attend' then 1 when 'track*' then 2 when 'track' then 3 else 4 end`;

export async function listExposures(
  pool: Pool,
  filter: { state?: string; scope?: string; owner?: string; all?: boolean; limit: number },
): Promise<ExposureListRow[]> {
  const where: string[] = [];
  const args: unknown[] = [];
  if (filter.state) {
    args.push(filter.state);
    where.push(`e.state = $${args.length}`);
  } else if (!filter.all) where.push(`e.state not in ('resolved', 'false-positive', 'retired')`);
  if (filter.scope) {
    args.push(filter.scope);
    where.push(`e.scope = $${args.length}`);
  }
  if (filter.owner) {
    args.push(filter.owner);
    where.push(`e.owner = $${args.length}`);
  }
  args.push(filter.limit);
  const { rows } = await pool.query<{
    id: string;
    state: string;
    priority: string | null;
    sla_due: Date | null;
    breached: boolean;
    owner: string | null;
    scope: string | null;
    asset: string;
    vuln_key: string;
    first_seen: Date;
    remediation_unit_id: string | null;
    cvss_contextual: number | null;
    kev: boolean;
  }>(
    `select e.id, e.state, e.priority, e.sla_due, (e.sla_breached_at is not null) as breached, e.owner, e.scope,
            coalesce(a.fqdn, a.hostname, a.image_repo, a.ips[1], a.identity_key) as asset, e.vuln_key, e.first_seen,
            e.remediation_unit_id, e.cvss_contextual, e.kev
       from exposures e join assets a on a.id = e.asset_id
      ${where.length ? `where ${where.join(' and ')}` : ''}
      order by ${PRIORITY_ORDER}, e.sla_due nulls last, e.kev desc, e.cvss_contextual desc nulls last, e.id
      limit $${args.length}`,
    args,
  );
  return rows.map((r) => ({
    id: r.id,
    state: r.state,
    priority: r.priority ? outcomeLabel(r.priority) : null,
    slaDue: r.sla_due?.toISOString() ?? null,
    breached: r.breached,
    owner: r.owner,
    scope: r.scope,
    asset: r.asset,
    weakness: r.vuln_key,
    firstSeen: r.first_seen.toISOString(),
    remediationUnit: r.remediation_unit_id,
    cvss: r.cvss_contextual === null ? null : Math.round(r.cvss_contextual * 10) / 10,
    kev: r.kev,
  }));
}

export async function exposureTimeline(pool: Pool, id: string) {
  const { rows } = await pool.query<{
    id: string;
    state: string;
    priority: string | null;
    sla_due: Date | null;
    sla_breached_at: Date | null;
    sla_paused: boolean;
    owner: string | null;
    scope: string | null;
    asset: string;
    vuln_key: string;
    first_seen: Date;
    last_seen: Date;
    policy_version: string | null;
    reasons: string[];
    remediation_unit_id: string | null;
    action: string | null;
    ticket: { system: string; key: string; url?: string } | null;
    fixed_at: Date | null;
    verified_at: Date | null;
    verified_scan_id: number | null;
    exposure_seconds: number | null;
    snoozed_until: Date | null;
    risk_accepted_until: Date | null;
    risk_accepted_by: string | null;
  }>(
    `select e.*, coalesce(a.fqdn, a.hostname, a.image_repo, a.ips[1], a.identity_key) as asset, u.action, u.ticket
       from exposures e join assets a on a.id = e.asset_id
       left join remediation_units u on u.id = e.remediation_unit_id
      where e.id = $1`,
    [id],
  );
  const e = rows[0];
  if (!e) return undefined;
  const events = await pool.query<{
    at: Date;
    type: string;
    actor: string;
    reason: string | null;
    data: Record<string, unknown>;
  }>('select at, type, actor, reason, data from events where exposure_id = $1 order by at, id', [id]);
  return {
    id: e.id,
    asset: e.asset,
    weakness: e.vuln_key,
    scope: e.scope,
    state: e.state,
    priority: e.priority ? outcomeLabel(e.priority) : null,
    slaDue: e.sla_due?.toISOString() ?? null,
    slaBreachedAt: e.sla_breached_at?.toISOString() ?? null,
    slaPaused: e.sla_paused,
    owner: e.owner,
    policyVersion: e.policy_version,
    reasons: Array.isArray(e.reasons) ? e.reasons : [],
    remediationUnit: e.remediation_unit_id
      ? { id: e.remediation_unit_id, action: e.action, ticket: e.ticket }
      : null,
    firstSeen: e.first_seen.toISOString(),
    lastSeen: e.last_seen.toISOString(),
    snoozedUntil: e.snoozed_until?.toISOString() ?? null,
    riskAccepted: e.risk_accepted_until
      ? { by: e.risk_accepted_by, until: e.risk_accepted_until.toISOString() }
      : null,
    fixedAt: e.fixed_at?.toISOString() ?? null,
    verified: e.verified_at ? { at: e.verified_at.toISOString(), scanId: e.verified_scan_id } : null,
    exposureSeconds: e.exposure_seconds,
    timeline: events.rows.map((r): ExposureTimelineEvent => ({
      at: r.at.toISOString(),
      type: r.type,
      actor: r.actor,
      reason: r.reason,
      data: r.data,
    })),
  };
}

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3_600);
  const m = Math.floor((seconds % 3_600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${Math.round(seconds % 60)}s`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return (
    rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') +
    '\n'
  );
}

export function defineExposures(exposures: Command): void {
  exposures
    .command('list')
    .description('open exposures, most urgent first (every state with --all)')
    .option('--state <state>', `only this state (${exposureStates.join(', ')})`)
    .option('--scope <scope>', 'only this scope')
    .option('--owner <person>', 'only this owner')
    .option('--all', 'include closed exposures (resolved, false positive, retired)')
    .option('--limit <n>', 'at most this many', '200')
    .option('--json', 'machine-readable output')
    .action(
      async (
        opts: {
          state?: string;
          scope?: string;
          owner?: string;
          all?: boolean;
          limit: string;
          json?: boolean;
        },
        cmd: Command,
      ) => {
        if (opts.state && !(exposureStates as readonly string[]).includes(opts.state))
          throw new UserError(
            `--state ${opts.state} is not a state; use one of ${exposureStates.join(', ')}`,
            2,
          );
        const limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1)
          throw new UserError('--limit must be a positive whole number', 2);
        const db = await openDatabase(load(cmd.optsWithGlobals<GlobalOptions>()));
        try {
          const rows = await listExposures(db.pool, { ...opts, limit });
          if (opts.json) {
            process.stdout.write(`${JSON.stringify(rows)}\n`);
            return;
          }
          if (rows.length === 0) {
            process.stdout.write('no exposures\n');
            return;
          }
          process.stdout.write(
            table([
              ['ID', 'STATE', 'PRIORITY', 'CVSS', 'SLA DUE', 'OWNER', 'SCOPE', 'ASSET'],
              ...rows.map((r) => [
                r.id,
                r.state,
                r.priority ?? '-',
                `${r.cvss === null ? '-' : r.cvss.toFixed(1)}${r.kev ? ' KEV' : ''}`,
                r.slaDue ? `${r.slaDue.slice(0, 16).replace('T', ' ')}${r.breached ? ' BREACHED' : ''}` : '-',
                r.owner ?? '-',
                r.scope ?? '-',
                r.asset,
              ]),
            ]),
          );
        } finally {
          await db.close();
        }
      },
    );
}

export function defineExposure(exposure: Command): void {
  exposure
    .command('show')
    .argument('<id>', 'exposure id, "<asset id>:<weakness>" as `ctem exposures list` shows it')
    .description('the exposure, its priority and reasons, and its timeline')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const db = await openDatabase(load(cmd.optsWithGlobals<GlobalOptions>()));
      try {
        const t = await exposureTimeline(db.pool, id);
        if (!t) throw new UserError(`no exposure ${id}; list them with ctem exposures list --all`);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(t)}\n`);
          return;
        }
        const lines = [
          `${t.id}  ${t.weakness} on ${t.asset} (scope ${t.scope ?? '-'})`,
          `state      ${t.state}${t.slaPaused ? ' (SLA paused)' : ''}`,
          `priority   ${t.priority ?? '-'}${t.policyVersion ? ` (policy ${t.policyVersion})` : ''}`,
          `SLA due    ${t.slaDue ?? '-'}${t.slaBreachedAt ? `  breached at ${t.slaBreachedAt}` : ''}`,
          `owner      ${t.owner ?? '-'}`,
          ...(t.remediationUnit
            ? [
                `unit       ${t.remediationUnit.action ?? t.remediationUnit.id}${t.remediationUnit.ticket ? `  ticket ${t.remediationUnit.ticket.key}` : ''}`,
              ]
            : []),
          ...(t.snoozedUntil ? [`snoozed    until ${t.snoozedUntil}`] : []),
          ...(t.riskAccepted ? [`accepted   by ${t.riskAccepted.by} until ${t.riskAccepted.until}`] : []),
          `first seen ${t.firstSeen}`,
          ...(t.fixedAt ? [`fixed at   ${t.fixedAt}`] : []),
          ...(t.verified ? [`verified   ${t.verified.at} by scan ${t.verified.scanId}`] : []),
          ...(t.exposureSeconds !== null
            ? [`exposed    ${duration(Number(t.exposureSeconds))} (first seen → verified)`]
            : []),
          ...(t.reasons.length ? ['', 'why:', ...t.reasons.map((r) => `  - ${r}`)] : []),
          '',
          'timeline:',
          ...t.timeline.map(
            (e) =>
              `  ${e.at.slice(0, 19).replace('T', ' ')}  ${e.type.padEnd(20)} ${e.actor.padEnd(8)} ${e.reason ?? ''}`,
          ),
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      } finally {
        await db.close();
      }
    });
}
