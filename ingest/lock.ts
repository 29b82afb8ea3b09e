import type { PoolClient } from '../runtime/pool.ts';

/** Advisory lock key of the inventory (matching, merging, retiring). */
const INVENTORY_LOCK = 7426002;

/**
 * Serialize writers of the inventory until the transaction ends: two reports naming the same new
 * host at once must not both create it. Staging (the slow part) runs before the lock, in parallel.
 */
export async function lockInventory(client: PoolClient): Promise<void> {
  await client.query('select pg_advisory_xact_lock($1)', [INVENTORY_LOCK]);
}
