import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { ActivityInboundCallsInterceptor, ActivityExecuteInput, Next } from '@temporalio/worker';
import type { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Clock } from '../domain/clock.ts';
import type { Pool } from '../runtime/pool.ts';
import { onRequestRefused } from '../bots/audit.ts';
import { systemClock } from '../runtime/clock.ts';

/**
 * Workflow types counted by status on /metrics: the long-running ones, one per campaign (shard), patch
 * rollout, polled ticket or scope's scan cycle. The short schedule runs (feeds, digests, queues,
 * escalations) are left out.
 */
const COUNTED_WORKFLOWS = ['campaignWorkflow', 'patchRollout', 'ticketStatusPoll', 'scheduledScanCycle'];

/**
 * Prometheus metrics of one ctem process. Business gauges (exposures by state, SLA breaches, ingest
 * totals) are read from PostgreSQL at scrape time, so every replica reports the same truth; process
 * counters (activity failures) are this process's own.
 */
export class CtemMetrics {
  readonly registry = new Registry();
  readonly activityFailures: Counter<'activity' | 'retryable'>;
  readonly requestsRefused: Counter<'channel'>;
  private temporal?: Client;

  constructor(pool: Pool, clock: Clock = systemClock) {
    collectDefaultMetrics({ register: this.registry, prefix: 'ctem_' });
    this.activityFailures = new Counter({
      name: 'ctem_activity_failures_total',
      help: 'Activity attempts that failed, by activity type',
      labelNames: ['activity', 'retryable'],
      registers: [this.registry],
    });
    new Gauge({
      name: 'ctem_exposures',
      help: 'Exposures by lifecycle state, priority and scope (the workflows’ read model)',
      labelNames: ['state', 'priority', 'scope'],
      registers: [this.registry],
      async collect() {
        const { rows } = await pool.query<{
          state: string;
          priority: string | null;
          scope: string | null;
          n: number;
        }>('select state, priority, scope, count(*)::int as n from exposures group by 1, 2, 3');
        this.reset();
        for (const r of rows)
          this.set({ state: r.state, priority: r.priority ?? 'none', scope: r.scope ?? 'none' }, r.n);
      },
    });
    new Gauge({
      name: 'ctem_sla_breaches',
      help: 'Exposures whose SLA was breached (the workflows record when), by scope and whether still open',
      labelNames: ['scope', 'open'],
      registers: [this.registry],
      async collect() {
        const { rows } = await pool.query<{ scope: string | null; open: boolean; n: number }>(
          `select scope, resolved_at is null as open, count(*)::int as n from exposures
           where sla_breached_at is not null group by 1, 2`,
        );
        this.reset();
        for (const r of rows) this.set({ scope: r.scope ?? 'none', open: String(r.open) }, r.n);
      },
    });
    new Gauge({
      name: 'ctem_sla_overdue',
      help: 'Open exposures past their SLA deadline now (SLA not paused), by scope and priority',
      labelNames: ['scope', 'priority'],
      registers: [this.registry],
      async collect() {
        const { rows } = await pool.query<{ scope: string | null; priority: string | null; n: number }>(
          `select scope, priority, count(*)::int as n from exposures
           where resolved_at is null and sla_due < $1 and not coalesce(sla_paused, false)
             and state not in ('resolved', 'false-positive', 'risk-accepted', 'snoozed')
           group by 1, 2`,
          [new Date(clock())],
        );
        this.reset();
        for (const r of rows) this.set({ scope: r.scope ?? 'none', priority: r.priority ?? 'none' }, r.n);
      },
    });
    new Gauge({
      name: 'ctem_ingest_findings_per_second',
      help: 'Findings ingested per second over the last 5 minutes, by scanner',
      labelNames: ['scanner'],
      registers: [this.registry],
      async collect() {
        const { rows } = await pool.query<{ scanner: string; n: number }>(
          `select scanner, coalesce(sum(finding_count), 0)::bigint as n from scans
           where imported_at > $1::timestamptz - interval '5 minutes' group by 1`,
          [new Date(clock())],
        );
        this.reset();
        for (const r of rows) this.set({ scanner: r.scanner }, r.n / 300);
      },
    });
    this.requestsRefused = new Counter({
      name: 'ctem_requests_refused_total',
      help: 'Inbound requests refused before acting (bad signature, token or secret; replays), by channel',
      labelNames: ['channel'],
      registers: [this.registry],
    });
    onRequestRefused((r) => this.requestsRefused.inc({ channel: r.channel }));
    const temporal = () => this.temporal;
    new Gauge({
      name: 'ctem_workflows',
      help: 'Workflow executions by type and status (Temporal visibility)',
      labelNames: ['type', 'status'],
      registers: [this.registry],
      async collect() {
        const client = temporal();
        if (!client) return;
        this.reset();
        for (const type of COUNTED_WORKFLOWS) {
          const counted = await withDeadline(
            client.workflow.count(`WorkflowType = '${type}' GROUP BY ExecutionStatus`),
            5_000,
          );
          for (const g of counted.groups)
            this.set({ type, status: String(g.groupValues[0] ?? 'unknown') }, g.count);
        }
      },
    });
    new Gauge({
      name: 'ctem_ingested_findings',
      help: 'Findings ingested from scanner reports, by scanner (rate() of it is the ingest rate)',
      labelNames: ['scanner'],
      registers: [this.registry],
      async collect() {
        const { rows } = await pool.query<{ scanner: string; n: number }>(
          'select scanner, coalesce(sum(finding_count), 0)::bigint as n from scans group by 1',
        );
        this.reset();
        for (const r of rows) this.set({ scanner: r.scanner }, r.n);
      },
    });
  }

  /** Count workflows by status through this client (the stack's) at scrape time. */
  useTemporal(client: Client): this {
    this.temporal = client;
    return this;
  }

  /** A worker interceptor factory counting failed activity attempts. */
  activityInterceptor(): (ctx: Context) => { inbound: ActivityInboundCallsInterceptor } {
    const failures = this.activityFailures;
    return (ctx) => ({
      inbound: {
        async execute(
          input: ActivityExecuteInput,
          next: Next<ActivityInboundCallsInterceptor, 'execute'>,
        ): Promise<unknown> {
          try {
            return await next(input);
          } catch (err) {
            const nonRetryable = (err as { nonRetryable?: boolean }).nonRetryable === true;
            failures.inc({ activity: ctx.info.activityType, retryable: String(!nonRetryable) });
            throw err;
          }
        },
      },
    });
  }
}

async function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Temporal did not answer the count in ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
