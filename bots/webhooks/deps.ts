import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { SecretRef } from '../../domain/config.ts';
import type { Pool } from '../../runtime/pool.ts';

/** What the inbound ticket endpoints need: the ledger, a Temporal client to signal, secrets. */
export interface TicketWebhookDeps {
  pool: Pool;
  client: Client;
  log: Logger;
  baseDir: string;
  /** Resolves env:/file: references; values are never logged. */
  readSecret(ref: SecretRef): string;
}
