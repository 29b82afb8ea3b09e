// What a ticket system is to ctem, in one interface: its `integrations.<name>` section, its client,
// how it is read when it cannot call us, and its doctor check. Each system is a folder (tickets/jira/,
// tickets/servicenow/, tickets/glpi/) exporting one module, registered with one line in
// tickets/systems.ts; its bundled ticket template is templates/tickets/<name>.<format>.hbs.
import type { z } from 'zod';
import type { SecretRef } from '../domain/config.ts';
import type { RemoteTicketSystem } from './remote.ts';

/** What a ticket system's client is built from besides its section. */
export interface TicketSystemDeps {
  /** Resolves env:/file: references; the value is never logged or stored. */
  readSecret(ref: SecretRef): string;
  /** Folder that relative paths in ctem.yaml (a template override) resolve against. */
  baseDir: string;
}

export interface TicketSystemModule<C = unknown> {
  /** The section (`integrations.<name>`) and the value of `scopes[].tickets.system`. */
  readonly name: string;
  readonly configSchema: z.ZodType<C>;
  /** The remote primitives; the ledger (exactlyOnce.ts) makes them exactly-once. */
  create(cfg: C, deps: TicketSystemDeps): RemoteTicketSystem;
  /** How often to poll it for changed tickets; undefined when it tells us by webhook. */
  pollInterval?(cfg: C): string | undefined;
  /** One cheap, harmless authenticated round trip (`ctem doctor`); says what it proved. */
  doctor(cfg: C, secret: (ref: SecretRef) => string): Promise<string>;
}
