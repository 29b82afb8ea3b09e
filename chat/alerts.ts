// Scope alert rules (scopes[].alerts in ctem.yaml): an immediate message to the scope's channel when
//   - a new exposure crosses the scope's threshold (its SSVC decision, CISA KEV, contextual CVSS),
//   - an exposure's SLA deadline passes,
//   - an asset runs an operating system past its end of life.
// Validated here (domain/config.ts keeps the section free-form); errors name the field.
//
//   alerts:
//     newExposure: { priority: [Act], kev: true, contextualCvssAtLeast: 9 }   # any one of them
//     slaBreached: true
//     endOfLife: true            # or { extra: [{ match: '^Acme OS 1\.', name: 'Acme OS 1', since: 2024-01-01 }] }
//     channel: { slack: C0ALERTS }   # default: the scope's channel
//
// The dispatcher reads facts set-based from PostgreSQL every few seconds: the audit log's "triaged"
// events after a cursor (new exposures), exposures whose SLA breach is recorded, assets' OS. Each
// alert is recorded in chat_alerts_sent before it is sent and marked sent after, so it fires once
// per exposure (or asset and OS), and one that failed to send is tried again.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from 'pino';
import { ConfigError, type Config, type Scope } from '../domain/config.ts';
import type { Pool } from '../runtime/pool.ts';
import type { AlertModel } from './messages.ts';
import { formatTime } from './messages.ts';
import type { ChatRuntime } from './runtime.ts';
import type { Transport } from './outbox.ts';

const priorityLabel = z.enum(['Act', 'Attend', 'Track*', 'Track']);

const eolEntry = z
  .object({
    /** Regular expression matched (case-insensitive) against the asset's OS string. */
    match: z
      .string()
      .min(1)
      .refine((r) => {
        try {
          new RegExp(r, 'i');
          return true;
        } catch {
          return false;
        }
      }, 'must be a valid regular expression'),
    name: z.string().min(1),
    /** End of life date (YYYY-MM-DD): assets are alerted on from that day. */
    since: z.union([z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date YYYY-MM-DD'), z.date()]),
  })
  .strict();

export const scopeAlertsSchema = z
  .object({
    newExposure: z
      .object({
        priority: z.array(priorityLabel).min(1).optional(),
        kev: z.boolean().optional(),
        contextualCvssAtLeast: z.number().min(0).max(10).optional(),
      })
      .strict()
      .refine(
        (c) => c.priority !== undefined || c.kev !== undefined || c.contextualCvssAtLeast !== undefined,
        {
          message: 'give at least one of priority, kev, contextualCvssAtLeast',
        },
      )
      .optional(),
    slaBreached: z.boolean().default(false),
    endOfLife: z
      .union([
        z.boolean(),
        z.object({ extra: z.array(eolEntry).default([]), builtIn: z.boolean().default(true) }).strict(),
      ])
      .default(false),
    channel: z
      .object({ slack: z.string().min(1).optional(), teams: z.string().min(1).optional() })
      .strict()
      .optional(),
  })
  .strict();

export type ScopeAlertRules = z.infer<typeof scopeAlertsSchema>;

/** scopes[i].alerts validated; undefined when the scope has none. */
export function alertRulesOf(config: Config, scope: Scope): ScopeAlertRules | undefined {
  if (scope.alerts === undefined) return undefined;
  const result = scopeAlertsSchema.safeParse(scope.alerts);
  if (result.success) return result.data;
  const index = config.scopes.indexOf(scope);
  throw new ConfigError(
    result.error.issues.map((i) => ({
      file: 'ctem.yaml',
      field: `scopes[${index}].alerts${i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}`,
      message: i.message,
    })),
  );
}

// ---- end of life -----------------------------------------------------------------------------

export interface EndOfLifeEntry {
  pattern: RegExp;
  name: string;
  /** YYYY-MM-DD. */
  since: string;
}

/** Vendors' end of (general or security) support dates for common server and desktop systems. */
export const builtInEndOfLife: EndOfLifeEntry[] = [
  { pattern: /windows\s*(server)?\s*2003/i, name: 'Windows Server 2003', since: '2015-07-14' },
  { pattern: /windows\s*(server)?\s*2008/i, name: 'Windows Server 2008', since: '2020-01-14' },
  { pattern: /windows\s*(server)?\s*2012/i, name: 'Windows Server 2012', since: '2023-10-10' },
  { pattern: /windows\s*xp/i, name: 'Windows XP', since: '2014-04-08' },
  { pattern: /windows\s*vista/i, name: 'Windows Vista', since: '2017-04-11' },
  { pattern: /windows\s*7\b/i, name: 'Windows 7', since: '2020-01-14' },
  { pattern: /windows\s*8(\.1)?\b/i, name: 'Windows 8', since: '2023-01-10' },
  {
    pattern: /centos(\s*linux)?\s*(release\s*)?[5-8](\.|\b)/i,
    name: 'CentOS Linux 5-8',
    since: '2024-06-30',
  },
  {
    pattern: /(red\s*hat|rhel)[^0-9]*\b[4-6](\.\d+)?\b/i,
    name: 'Red Hat Enterprise Linux 4-6',
    since: '2020-11-30',
  },
  { pattern: /ubuntu\s*(1[0-8])\.(04|10)\b/i, name: 'Ubuntu 18.04 or older', since: '2023-05-31' },
  { pattern: /debian[^0-9]*\b([4-9]|10)(\.\d+)?\b/i, name: 'Debian 10 or older', since: '2024-06-30' },
  {
    pattern: /suse linux enterprise server\s*(11|12)\b|sles\s*(11|12)\b/i,
    name: 'SLES 11/12',
    since: '2024-10-31',
  },
  { pattern: /freebsd\s*([4-9]|1[0-2])\./i, name: 'FreeBSD 12 or older', since: '2023-12-31' },
  {
    pattern: /mac\s*os\s*x?\s*10\.\d+|macos\s*(1[01]|12)\b/i,
    name: 'macOS 12 or older',
    since: '2024-09-16',
  },
];

export function endOfLifeOf(
  os: string,
  entries: EndOfLifeEntry[],
  nowMs: number,
): EndOfLifeEntry | undefined {
  return entries.find((e) => e.pattern.test(os) && Date.parse(`${e.since}T00:00:00Z`) <= nowMs);
}

function eolEntries(rules: ScopeAlertRules): EndOfLifeEntry[] {
  if (rules.endOfLife === false) return [];
  if (rules.endOfLife === true) return builtInEndOfLife;
  const extra = rules.endOfLife.extra.map((e) => ({
    pattern: new RegExp(e.match, 'i'),
    name: e.name,
    since: e.since instanceof Date ? e.since.toISOString().slice(0, 10) : e.since,
  }));
  return [...extra, ...(rules.endOfLife.builtIn ? builtInEndOfLife : [])];
}

// ---- new exposure threshold ----------------------------------------------------------------------

export interface ExposureFacts {
  priority: string;
  kev: boolean;
  contextualCvss: number | null;
}

/** Why a new exposure crosses the scope's threshold (any one criterion), or [] when it does not. */
export function thresholdReasons(
  rule: NonNullable<ScopeAlertRules['newExposure']>,
  f: ExposureFacts,
): string[] {
  const why: string[] = [];
  if (rule.priority?.includes(f.priority as z.infer<typeof priorityLabel>))
    why.push(`The policy decided ${f.priority}.`);
  if (rule.kev === true && f.kev) why.push('It is in the CISA Known Exploited Vulnerabilities catalog.');
  if (
    rule.contextualCvssAtLeast !== undefined &&
    f.contextualCvss !== null &&
    f.contextualCvss >= rule.contextualCvssAtLeast
  )
    why.push(
      `Its contextual CVSS is ${f.contextualCvss.toFixed(1)} (threshold ${rule.contextualCvssAtLeast}).`,
    );
  return why;
}

/**
 * The contextual CVSS score the policy wrote into the exposure's reasons ("Contextual CVSS 9.8 (…").
 * Read from there because the triage keeps the score only in its explanation.
 */
export function contextualCvssFromReasons(reasons: unknown): number | null {
  if (!Array.isArray(reasons)) return null;
  for (const r of reasons) {
    const m = typeof r === 'string' ? /^Contextual CVSS (\d+(?:\.\d+)?)\b/.exec(r) : null;
    if (m) return Number(m[1]);
  }
  return null;
}

const LABELS: Record<string, string> = { act: 'Act', attend: 'Attend', 'track*': 'Track*', track: 'Track' };

// ---- the dispatcher ----------------------------------------------------------------------------------

export interface ScopeAlertsDeps {
  config: Config;
  pool: Pool;
  runtime: ChatRuntime;
  log: Logger;
  now?: () => number;
  pollMs?: number;
}

interface PendingAlert {
  scope: string;
  rule: AlertModel['rule'];
  subject: string;
  model: AlertModel;
}

export class ScopeAlerts {
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;
  private readonly rules = new Map<string, ScopeAlertRules>();
  private readonly now: () => number;

  constructor(private readonly deps: ScopeAlertsDeps) {
    this.now = deps.now ?? Date.now;
    for (const scope of deps.config.scopes) {
      const r = alertRulesOf(deps.config, scope);
      if (r) this.rules.set(scope.name, r);
    }
  }

  get enabled(): boolean {
    return this.rules.size > 0;
  }

  start(): void {
    if (!this.enabled || this.timer) return;
    const tick = () => {
      this.runOnce().catch((err: unknown) => this.deps.log.warn({ err }, 'scope alerts failed'));
    };
    this.timer = setInterval(tick, this.deps.pollMs ?? 5_000);
    this.timer.unref();
    tick();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One pass: find what crossed a rule, record it, send it. Returns how many alerts were sent. */
  async runOnce(): Promise<number> {
    // One pass at a time per process; the alert records keep separate processes from doubling up.
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return await this.running;
  }

  private async pass(): Promise<number> {
    if (!this.enabled) return 0;
    const found = [
      ...(await this.newExposures()),
      ...(await this.slaBreaches()),
      ...(await this.endOfLife()),
    ];
    for (const a of found)
      await this.deps.pool.query(
        `insert into chat_alerts_sent (scope, rule, subject, model) values ($1, $2, $3, $4::jsonb) on conflict do nothing`,
        [a.scope, a.rule, a.subject, JSON.stringify(a.model)],
      );
    // Everything recorded but not yet sent, including what an earlier pass failed to send.
    const { rows } = await this.deps.pool.query<{
      scope: string;
      rule: AlertModel['rule'];
      subject: string;
      model: AlertModel;
    }>(
      'select scope, rule, subject, model from chat_alerts_sent where sent_at is null order by created_at limit 200',
    );
    let sent = 0;
    for (const r of rows) {
      if (!this.rules.has(r.scope)) continue;
      if (await this.send(r)) {
        await this.deps.pool.query(
          'update chat_alerts_sent set sent_at = now() where scope = $1 and rule = $2 and subject = $3',
          [r.scope, r.rule, r.subject],
        );
        sent++;
      }
    }
    return sent;
  }

  private async send(a: PendingAlert): Promise<boolean> {
    const scope = this.deps.config.scopes.find((s) => s.name === a.scope);
    const channel = { ...scope?.channel, ...this.rules.get(a.scope)?.channel };
    const key = `alert:${a.scope}:${a.rule}:${a.subject}`;
    const targets: [Transport, string][] = [];
    if (channel.slack && this.deps.runtime.slack) targets.push(['slack', channel.slack]);
    if (channel.teams && this.deps.runtime.teams) targets.push(['teams', channel.teams]);
    if (targets.length === 0) {
      this.deps.log.warn(
        { scope: a.scope, rule: a.rule },
        'scope alert has no channel to go to (scopes[].channel)',
      );
      return true;
    }
    let ok = true;
    for (const [transport, conversation] of targets) {
      const d = await this.deps.runtime.delivery.publishAlert(transport, conversation, key, a.model);
      if (!d.ok) {
        this.deps.log.warn({ scope: a.scope, rule: a.rule, error: d.error }, 'scope alert not delivered');
        // A permanent failure (no such channel) will not get better by retrying every pass.
        if (!d.permanent) ok = false;
      }
    }
    return ok;
  }

  // ---- rules -----------------------------------------------------------------------------------

  private scopesWith(pick: (r: ScopeAlertRules) => boolean): string[] {
    return [...this.rules].filter(([, r]) => pick(r)).map(([name]) => name);
  }

  private async newExposures(): Promise<PendingAlert[]> {
    const scopes = this.scopesWith((r) => r.newExposure !== undefined);
    if (scopes.length === 0) return [];
    const pool = this.deps.pool;
    // The cursor starts at the end of the log the first time, so history does not alert.
    await pool.query(
      `update chat_alert_cursor set last_event_id = (select coalesce(max(id), 0) from events)
        where id = 1 and last_event_id is null`,
    );
    const { rows } = await pool.query<{
      event_id: number;
      exposure_id: string;
      scope: string;
      priority: string | null;
      reasons: unknown;
      vuln_key: string;
      asset_name: string;
      sla_due: Date | null;
      kev: boolean;
    }>(
      `with cur as (select last_event_id from chat_alert_cursor where id = 1)
       select ev.id as event_id, e.id as exposure_id, e.scope, e.priority, e.reasons, e.vuln_key, e.sla_due,
              coalesce(a.fqdn, a.hostname, a.image_repo, a.cloud_id, a.url, a.ips[1], a.identity_key) as asset_name,
              exists (select 1 from kev_entries k where k.cve = e.vuln_key and k.valid_to is null) as kev
         from events ev
         join exposures e on e.id = ev.exposure_id
         join assets a on a.id = e.asset_id, cur
        where ev.id > cur.last_event_id and ev.type = 'triaged' and e.scope = any($1::text[])
        order by ev.id limit 5000`,
      [scopes],
    );
    // Events of transactions still open can appear later with smaller ids, so the cursor trails
    // ten seconds behind; what is read twice meanwhile is recorded once (chat_alerts_sent).
    const settled = await pool.query<{ max: number | null }>(
      `select max(id) as max from events
        where id > (select last_event_id from chat_alert_cursor where id = 1) and at < now() - interval '10 seconds'`,
    );
    const out: PendingAlert[] = [];
    for (const r of rows) {
      const rule = this.rules.get(r.scope)?.newExposure;
      if (!rule) continue;
      const priority = LABELS[r.priority ?? ''] ?? r.priority ?? '';
      const contextualCvss = contextualCvssFromReasons(r.reasons);
      const because = thresholdReasons(rule, { priority, kev: r.kev, contextualCvss });
      if (because.length === 0) continue;
      out.push({
        scope: r.scope,
        rule: 'new-exposure',
        subject: r.exposure_id,
        model: {
          type: 'alert',
          rule: 'new-exposure',
          scope: r.scope,
          title: `New ${priority} exposure in ${r.scope}: ${r.vuln_key} on ${r.asset_name}`,
          because,
          facts: [
            { title: 'Exposure', value: r.exposure_id },
            { title: 'Priority', value: priority },
            ...(contextualCvss !== null
              ? [{ title: 'Contextual CVSS', value: contextualCvss.toFixed(1) }]
              : []),
            ...(r.sla_due ? [{ title: 'SLA deadline', value: formatTime(r.sla_due.toISOString()) }] : []),
          ],
          at: new Date(this.now()).toISOString(),
        },
      });
    }
    // Advance past what has settled (a full page only up to its last row).
    const settledMax = settled.rows[0]?.max ?? null;
    const upTo =
      settledMax === null
        ? null
        : rows.length >= 5000
          ? Math.min(rows.at(-1)!.event_id, settledMax)
          : settledMax;
    if (upTo !== null)
      await pool.query(
        'update chat_alert_cursor set last_event_id = greatest(last_event_id, $1) where id = 1',
        [upTo],
      );
    return out;
  }

  private async slaBreaches(): Promise<PendingAlert[]> {
    const scopes = this.scopesWith((r) => r.slaBreached);
    if (scopes.length === 0) return [];
    const { rows } = await this.deps.pool.query<{
      id: string;
      scope: string;
      priority: string | null;
      vuln_key: string;
      sla_due: Date | null;
      sla_breached_at: Date;
      owner: string | null;
      asset_name: string;
    }>(
      `select e.id, e.scope, e.priority, e.vuln_key, e.sla_due, e.sla_breached_at, e.owner,
              coalesce(a.fqdn, a.hostname, a.image_repo, a.cloud_id, a.url, a.ips[1], a.identity_key) as asset_name
         from exposures e join assets a on a.id = e.asset_id
        where e.scope = any($1::text[]) and e.sla_breached_at is not null and e.resolved_at is null
          and not exists (select 1 from chat_alerts_sent s
                           where s.scope = e.scope and s.rule = 'sla-breached'
                             and s.subject = e.id || '@' || to_char(e.sla_breached_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS'))
        limit 1000`,
      [scopes],
    );
    return rows.map((r) => {
      const priority = LABELS[r.priority ?? ''] ?? r.priority ?? '';
      const owner = r.owner ? (this.deps.runtime.people.person(r.owner)?.name ?? r.owner) : 'nobody';
      return {
        scope: r.scope,
        rule: 'sla-breached' as const,
        subject: `${r.id}@${r.sla_breached_at.toISOString().slice(0, 19)}`,
        model: {
          type: 'alert' as const,
          rule: 'sla-breached' as const,
          scope: r.scope,
          title: `SLA deadline passed in ${r.scope}: ${r.vuln_key} on ${r.asset_name}`,
          because: [
            `The ${priority} deadline${r.sla_due ? ` of ${formatTime(r.sla_due.toISOString())}` : ''} passed and the exposure is still open (owner: ${owner}).`,
          ],
          facts: [
            { title: 'Exposure', value: r.id },
            { title: 'Priority', value: priority },
            { title: 'Owner', value: owner },
            { title: 'Breached at', value: formatTime(r.sla_breached_at.toISOString()) },
          ],
          at: new Date(this.now()).toISOString(),
        },
      };
    });
  }

  private async endOfLife(): Promise<PendingAlert[]> {
    const scopes = this.scopesWith((r) => r.endOfLife !== false);
    if (scopes.length === 0) return [];
    const { rows } = await this.deps.pool.query<{
      id: number;
      scope: string;
      os: string;
      asset_name: string;
    }>(
      `select a.id, a.scope, a.os,
              coalesce(a.fqdn, a.hostname, a.image_repo, a.cloud_id, a.url, a.ips[1], a.identity_key) as asset_name
         from assets a
        where a.scope = any($1::text[]) and a.retired_at is null and a.os is not null and a.os <> ''
          and not exists (select 1 from chat_alerts_sent s
                           where s.scope = a.scope and s.rule = 'end-of-life' and s.subject = a.id || ':' || md5(a.os))
        limit 5000`,
      [scopes],
    );
    const out: PendingAlert[] = [];
    for (const r of rows) {
      const entries = eolEntries(this.rules.get(r.scope)!);
      const eol = endOfLifeOf(r.os, entries, this.now());
      if (!eol) continue;
      out.push({
        scope: r.scope,
        rule: 'end-of-life',
        subject: `${r.id}:${createHash('md5').update(r.os).digest('hex')}`,
        model: {
          type: 'alert',
          rule: 'end-of-life',
          scope: r.scope,
          title: `End-of-life system in ${r.scope}: ${r.asset_name} runs ${eol.name}`,
          because: [
            `${eol.name} has been out of vendor support since ${eol.since}; it gets no security fixes.`,
          ],
          facts: [
            { title: 'Asset', value: r.asset_name },
            { title: 'Operating system', value: r.os },
            { title: 'End of life', value: eol.since },
          ],
          at: new Date(this.now()).toISOString(),
        },
      });
    }
    return out;
  }
}
