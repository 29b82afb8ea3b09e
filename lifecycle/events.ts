// One append-only audit event written by a lifecycle activity, exactly once per idempotency key.
import type { Pool, PoolClient } from '../runtime/pool.ts';

export interface LifecycleEvent {
  key: string;
  exposureId: string;
  type: string;
  actor?: string;
  reason: string;
  data?: Record<string, unknown>;
}

export async function appendEvent(db: Pool | PoolClient, e: LifecycleEvent): Promise<void> {
  await db.query(
    `insert into events (exposure_id, type, actor, reason, data, idempotency_key)
     values ($1, $2, $3, $4, $5, $6) on conflict (idempotency_key) do nothing`,
    [e.exposureId, e.type, e.actor ?? 'system', e.reason, JSON.stringify(e.data ?? {}), e.key],
  );
}
