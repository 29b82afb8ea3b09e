import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { ActivityInboundCallsInterceptor, ActivityExecuteInput, Next } from '@temporalio/worker';
import type { Context } from '@temporalio/activity';
import type { Pool } from '../db/pool.ts';

/**
 * Prometheus metrics of one ctem process. Business gauges (exposures by state, SLA breaches, ingest
 * totals) are read from PostgreSQL at scrape time, so every replica reports the same truth; process
 * counters (activity failures) are this process's own.
 */
export class CtemMetrics {
  readonly registry = new Registry();
  readonly activityFailures: Counter<'activity' | 'retryable'>;

  constructor(pool: Pool) {
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
      help: 'SLA breaches recorded in the audit log, by scope',
      labelNames: ['scope'],
      registers: [this.registry],
      async collect() {
        const { rows } = await pool.query<{ scope: string | null; n: number }>(
          `select x.scope, count(*)::int as n from events e left join exposures x on x.id = e.exposure_id
           where e.type = 'sla-breached' group by 1`,
        );
        this.reset();
        for (const r of rows) this.set({ scope: r.scope ?? 'none' }, r.n);
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
