// The configuration and integrations shared by the crash test and its worker processes. The
// integrations record every call they receive in PostgreSQL (crash_calls), so calls can be counted
// across processes; the ticket system, like the real ones, finds a ticket it already created by the
// campaign id written on it. With slowTicket, it pauses after creating the remote ticket and before
// answering — the moment the test kills the worker. Patches go through the real Satellite executor
// to the test's fake Katello server, which counts the remote-execution jobs it was asked for.
import { parseConfig, type Config } from '../../domain/config.ts';
import type { Pool } from '../../runtime/pool.ts';
import type { IntegrationRegistry } from '../../app/integrations.ts';
import type { Notifier, TicketRef, TicketSystem } from '../../domain/ports.ts';

/**
 * The crash scope patches through Red Hat Satellite (the fake Katello server the test runs, at
 * CRASH_SATELLITE_URL), approved by the scope's policy, so the rollout runs without a person.
 */
export function crashConfig(): Config {
  const satellite = process.env.CRASH_SATELLITE_URL;
  if (!satellite) throw new Error('crashConfig needs CRASH_SATELLITE_URL (the fake Satellite)');
  return parseConfig(`
version: 1
people:
  - { id: olivia, name: Olivia Owner }
integrations:
  crashrec: {}
  satellite:
    url: ${satellite}
    username: ctem
    password: env:CTEM_CRASH_SATELLITE_TOKEN
    pollInterval: 1s
scopes:
  - name: crash
    roles: { owner: [olivia] }
    tickets: { system: crashrec }
    patch: { executor: satellite, autoApprove: true }
    # Every decision request at once: the dispatcher asks the owner before the crashes.
    notifications: { urgent: { priority: [Act, Attend, Track*, Track] } }
`);
}

/** The crash test's registry: the built-in one with the recording "crashrec" notifier and ticket system. */
export function crashPorts(
  pool: Pool,
  opts: { slowTicket?: boolean } = {},
): (builtIn: IntegrationRegistry) => IntegrationRegistry {
  const call = async (kind: string, key: string) => {
    await pool.query('insert into crash_calls (kind, key, pid) values ($1, $2, $3)', [
      kind,
      key,
      process.pid,
    ]);
  };
  const notifier: Notifier = {
    name: 'crashrec',
    async notify(n) {
      await call('notify', n.key);
      return { delivered: [{ via: 'crashrec', ref: n.key }] };
    },
    async digest(n) {
      await call('digest', n.key);
      return { delivered: [{ via: 'crashrec', ref: n.key }] };
    },
  };
  const tickets: TicketSystem = {
    name: 'crashrec',
    async upsert(campaign) {
      const found = await pool.query<{ key: string }>(
        'select key from crash_tickets where campaign_id = $1',
        [campaign.id],
      );
      if (found.rows[0]) {
        await call('ticket-found', campaign.id);
        return { system: 'crashrec', key: found.rows[0].key };
      }
      const key = `CRASH-${Date.now()}`;
      await pool.query('insert into crash_tickets (campaign_id, key) values ($1, $2)', [campaign.id, key]);
      await call('ticket-create', campaign.id);
      if (opts.slowTicket) await new Promise((r) => setTimeout(r, 60_000));
      return { system: 'crashrec', key } satisfies TicketRef;
    },
    async comment() {},
    async close(ref) {
      await call('ticket-close', ref.key);
    },
    async reopen() {},
    async status() {
      return 'open';
    },
  };
  return (builtIn) => ({
    ...builtIn,
    notifiers: { ...builtIn.notifiers, crashrec: () => notifier },
    tickets: { ...builtIn.tickets, crashrec: () => tickets },
  });
}
