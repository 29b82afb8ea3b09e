// Writing the lifecycle to PostgreSQL: append-only events and the exposure's current row. Calls
// from many workflows arriving within a few milliseconds are written in one transaction (a fan-out
// of 10,000 new exposures is a few dozen statements, not 20,000). Idempotent: events by their key,
// the row only when the write is newer than what the row holds.
import type { Pool } from '../runtime/pool.ts';
import type { ExposureRow, LifecycleRecord } from '../contracts/lifecycle.ts';

interface Pending {
  records: LifecycleRecord[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface LifecycleRecorder {
  record(records: LifecycleRecord[]): Promise<void>;
  /** Statements and records written so far (the benchmark reports them). */
  stats(): { batches: number; records: number };
}

const insertEvents = `
  insert into events (exposure_id, at, type, actor, reason, data, idempotency_key)
  select r.exposure_id, r.at, r.type, r.actor, r.reason, r.data, r.key
    from jsonb_to_recordset($1::jsonb) as r(exposure_id text, at timestamptz, type text, actor text,
                                            reason text, data jsonb, key text)
  on conflict (idempotency_key) do nothing`;

// exposures.priority holds the outcome key ("act"), as re-scoring compares it; the workflow speaks
// labels ("Act"), and lower() maps one onto the other. Reasons are written by the triage and the
// re-score, not by the campaign (it holds none), so the row keeps them.
// A new lifecycle replaces the row whatever its sequence; within one lifecycle only a newer sequence
// does, so a late retry never moves the row backwards.
const upsertRows = `
  insert into exposures as e (id, asset_id, vuln_key, scope, state, priority, sla_due, policy_version, owner,
                              first_seen, last_seen, resolved_at, updated_at, lifecycle_seq, workflow_run, reasons,
                              campaign_id, campaign_shard, escalation_level, sla_paused, sla_breached_at, snoozed_until,
                              risk_accepted_until, risk_accepted_by, fixed_at, verified_at, verified_scan_id,
                              exposure_seconds, cvss_contextual, kev)
  select r."exposureId", r."assetId", r."weaknessKey", r.scope, r.state, lower(r.priority), r."slaDue", r."policyVersion",
         r.owner, r."firstSeen", r."firstSeen", r."resolvedAt", now(), r.seq, r.lifecycle, coalesce(x.reasons, '[]'::jsonb),
         r."campaignId", r.shard, r."escalationLevel", r."slaPaused", r."slaBreachedAt", r."snoozedUntil",
         r."riskAcceptedUntil", r."riskAcceptedBy", r."fixedAt", r."verifiedAt", r."verifiedScanId", r."exposureSeconds",
         -- A row without the scores keeps what it holds.
         case when r."hasScores" then r."contextualCvss" else x.cvss_contextual end, coalesce(r.kev, x.kev, false)
    from jsonb_to_recordset($1::jsonb) as r("exposureId" text, "assetId" bigint, "weaknessKey" text, scope text,
         state text, priority text, "slaDue" timestamptz, "policyVersion" text, owner text, "firstSeen" timestamptz,
         "resolvedAt" timestamptz, seq integer, lifecycle text, "campaignId" text, shard integer,
         "escalationLevel" integer, "slaPaused" boolean, "slaBreachedAt" timestamptz, "snoozedUntil" timestamptz,
         "riskAcceptedUntil" timestamptz, "riskAcceptedBy" text, "fixedAt" timestamptz, "verifiedAt" timestamptz,
         "verifiedScanId" bigint, "exposureSeconds" bigint, "contextualCvss" real, kev boolean, "hasScores" boolean)
    left join exposures x on x.id = r."exposureId"
  on conflict (id) do update set
    scope = excluded.scope, state = excluded.state, priority = excluded.priority, sla_due = excluded.sla_due,
    policy_version = excluded.policy_version, owner = excluded.owner, resolved_at = excluded.resolved_at,
    updated_at = now(), lifecycle_seq = excluded.lifecycle_seq, workflow_run = excluded.workflow_run,
    campaign_id = excluded.campaign_id, campaign_shard = excluded.campaign_shard,
    escalation_level = excluded.escalation_level, sla_paused = excluded.sla_paused,
    sla_breached_at = excluded.sla_breached_at, snoozed_until = excluded.snoozed_until,
    risk_accepted_until = excluded.risk_accepted_until, risk_accepted_by = excluded.risk_accepted_by,
    fixed_at = excluded.fixed_at, verified_at = excluded.verified_at, verified_scan_id = excluded.verified_scan_id,
    exposure_seconds = excluded.exposure_seconds, cvss_contextual = excluded.cvss_contextual, kev = excluded.kev
  where e.workflow_run is distinct from excluded.workflow_run or e.lifecycle_seq < excluded.lifecycle_seq`;

async function write(pool: Pool, records: LifecycleRecord[]): Promise<void> {
  const newest = new Map<string, ExposureRow>();
  for (const r of records) {
    if (!r.row) continue;
    const held = newest.get(r.row.exposureId);
    if (!held || held.lifecycle !== r.row.lifecycle || held.seq < r.row.seq)
      newest.set(r.row.exposureId, r.row);
  }
  const events = records.map((r) => ({
    exposure_id: r.exposureId,
    at: r.at,
    type: r.type,
    actor: r.actor,
    reason: r.reason,
    data: r.data,
    key: r.key,
  }));
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query(insertEvents, [JSON.stringify(events)]);
    // Rows in id order, so two concurrent batches lock them in the same order (no deadlock).
    const rows = [...newest.values()]
      .sort((a, b) => (a.exposureId < b.exposureId ? -1 : 1))
      .map((r) => ({ ...r, hasScores: r.contextualCvss !== undefined }));
    if (rows.length) await client.query(upsertRows, [JSON.stringify(rows)]);
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/**
 * A recorder that gathers calls for up to `lingerMs` (or `maxBatch` records) and writes them
 * together. If a batch fails, each call is retried alone, so one bad record fails only its own
 * activity (which Temporal retries) and not its neighbours'.
 */
export function createLifecycleRecorder(
  pool: Pool,
  opts: { lingerMs?: number; maxBatch?: number } = {},
): LifecycleRecorder {
  const lingerMs = opts.lingerMs ?? 3;
  const maxBatch = opts.maxBatch ?? 1_000;
  let queue: Pending[] = [];
  let queued = 0;
  let timer: NodeJS.Timeout | undefined;
  let batches = 0;
  let written = 0;

  const flush = async () => {
    timer = undefined;
    const taken = queue;
    queue = [];
    queued = 0;
    if (taken.length === 0) return;
    try {
      await write(
        pool,
        taken.flatMap((p) => p.records),
      );
      batches++;
      written += taken.reduce((n, p) => n + p.records.length, 0);
      for (const p of taken) p.resolve();
    } catch {
      for (const p of taken) {
        try {
          await write(pool, p.records);
          batches++;
          written += p.records.length;
          p.resolve();
        } catch (err) {
          p.reject(err);
        }
      }
    }
  };

  return {
    record(records) {
      if (records.length === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        queue.push({ records, resolve, reject });
        queued += records.length;
        if (queued >= maxBatch) {
          if (timer) clearTimeout(timer);
          void flush();
        } else if (!timer) timer = setTimeout(() => void flush(), lingerMs);
      });
    },
    stats: () => ({ batches, records: written }),
  };
}
