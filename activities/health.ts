import type { Deps } from '../runtime/deps.ts';

export function createHealthActivities({ pool, workerName }: Deps) {
  return {
    /** Idempotent: a retried attempt rewrites the same row. */
    async recordHeartbeat(probeId: string): Promise<{ worker: string; at: string }> {
      const { rows } = await pool.query<{ worker: string; at: Date }>(
        `insert into worker_heartbeats (probe_id, worker) values ($1, $2)
         on conflict (probe_id) do update set worker = excluded.worker, at = now()
         returning worker, at`,
        [probeId, workerName],
      );
      const row = rows[0]!;
      return { worker: row.worker, at: row.at.toISOString() };
    },
  };
}
