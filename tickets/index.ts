// Ticket systems (Jira, ServiceNow, GLPI) as TicketSystem implementations with the exactly-once
// ledger, and the activities that drive them and read remote changes for the pollers.
import { ApplicationFailure } from '@temporalio/activity';
import { resolveSecret } from '../runtime/config.ts';
import type { Deps } from '../runtime/deps.ts';
import type {
  RemediationUnitSummary,
  TicketRef,
  TicketStatusCategory,
  TicketSystem,
} from '../domain/ports.ts';
import {
  parseTicketIntegrations,
  scopeTickets,
  ticketIntegration,
  ticketSystemNames,
  type GlpiConfig,
  type JiraConfig,
  type ServiceNowConfig,
  TicketConfigError,
  type TicketSystemName,
} from './config.ts';
import type { RemoteTicketSystem } from './remote.ts';
import { ExactlyOnceTicketSystem } from './exactlyOnce.ts';
import { GlpiTicketSystem } from './glpi.ts';
import { acknowledgeTicketChanges, pendingTicketChanges, type PendingTicketChange } from './inbound.ts';
import { JiraTicketSystem, type TicketSystemDeps } from './jira.ts';
import { ServiceNowTicketSystem } from './servicenow.ts';

type FactoryDeps = Pick<Deps, 'pool' | 'log' | 'baseDir' | 'config'>;

function secretsFrom(deps: FactoryDeps): TicketSystemDeps {
  return { readSecret: (ref) => resolveSecret(ref, process.env, deps.baseDir), baseDir: deps.baseDir };
}

function ledgered(remote: RemoteTicketSystem, deps: FactoryDeps): ExactlyOnceTicketSystem {
  return new ExactlyOnceTicketSystem(remote, deps.pool, deps.log, (scope) => {
    try {
      return scopeTickets(deps.config, scope)?.groupBy ?? 'unit';
    } catch (err) {
      if (err instanceof TicketConfigError) throw ApplicationFailure.nonRetryable(err.message, 'ConfigError');
      throw err;
    }
  });
}

export function createJiraTicketSystem(cfg: JiraConfig, deps: FactoryDeps): ExactlyOnceTicketSystem {
  return ledgered(new JiraTicketSystem(cfg, secretsFrom(deps)), deps);
}

export function createServiceNowTicketSystem(
  cfg: ServiceNowConfig,
  deps: FactoryDeps,
): ExactlyOnceTicketSystem {
  return ledgered(new ServiceNowTicketSystem(cfg, secretsFrom(deps)), deps);
}

export function createGlpiTicketSystem(cfg: GlpiConfig, deps: FactoryDeps): ExactlyOnceTicketSystem {
  return ledgered(new GlpiTicketSystem(cfg, secretsFrom(deps)), deps);
}

/** Every ticket system configured under integrations, by name. Throws TicketConfigError naming the field. */
export function createTicketSystems(deps: FactoryDeps): Map<string, ExactlyOnceTicketSystem> {
  const cfg = parseTicketIntegrations(deps.config);
  const systems = new Map<string, ExactlyOnceTicketSystem>();
  if (cfg.jira) systems.set('jira', createJiraTicketSystem(cfg.jira, deps));
  if (cfg.servicenow) systems.set('servicenow', createServiceNowTicketSystem(cfg.servicenow, deps));
  if (cfg.glpi) systems.set('glpi', createGlpiTicketSystem(cfg.glpi, deps));
  return systems;
}

/**
 * The ticket system a scope names, for the lifecycle's integration registry
 * (lifecycle/integrations.ts). Only that system's section is read, so a mistake in
 * another one does not stop it; a mistake in its own is a non-retryable failure naming the field.
 */
export function ticketSystemFor(name: TicketSystemName, deps: FactoryDeps): ExactlyOnceTicketSystem {
  let system: ExactlyOnceTicketSystem | undefined;
  try {
    if (name === 'jira') {
      const cfg = ticketIntegration(deps.config, 'jira');
      system = cfg && createJiraTicketSystem(cfg, deps);
    } else if (name === 'servicenow') {
      const cfg = ticketIntegration(deps.config, 'servicenow');
      system = cfg && createServiceNowTicketSystem(cfg, deps);
    } else {
      const cfg = ticketIntegration(deps.config, 'glpi');
      system = cfg && createGlpiTicketSystem(cfg, deps);
    }
  } catch (err) {
    if (err instanceof TicketConfigError) throw ApplicationFailure.nonRetryable(err.message, 'ConfigError');
    throw err;
  }
  if (!system)
    throw ApplicationFailure.nonRetryable(
      `ctem.yaml: integrations.${name}: missing, but a scope files its tickets in ${name}; add the section`,
      'ConfigError',
    );
  return system;
}

/** Systems read by polling, with their interval (GLPI always; ServiceNow when it has a pollInterval). */
export function polledTicketSystems(
  config: Deps['config'],
): { system: TicketSystemName; interval: string }[] {
  const cfg = parseTicketIntegrations(config);
  return [
    ...(cfg.glpi ? [{ system: 'glpi' as const, interval: cfg.glpi.pollInterval }] : []),
    ...(cfg.servicenow?.pollInterval
      ? [{ system: 'servicenow' as const, interval: cfg.servicenow.pollInterval }]
      : []),
  ];
}

export interface TicketChangesRead {
  pending: PendingTicketChange[];
  /** Poll position after this read, saved by the acknowledgement. */
  position: string;
}

export function createItsmActivities(deps: Deps) {
  // Built on first use, one system at a time: a worker without ticket systems never parses their
  // config, and a mistake in one system's section does not stop the others.
  const systems = new Map<string, ExactlyOnceTicketSystem>();
  const systemNamed = (name: string): ExactlyOnceTicketSystem => {
    if (!(ticketSystemNames as readonly string[]).includes(name))
      throw ApplicationFailure.nonRetryable(
        `unknown ticket system "${name}"; known: ${ticketSystemNames.join(', ')}`,
        'TicketSystemNotConfigured',
      );
    let system = systems.get(name);
    if (!system) {
      system = ticketSystemFor(name as TicketSystemName, deps);
      systems.set(name, system);
    }
    return system;
  };
  const ticketSystem = (name: string): TicketSystem => systemNamed(name);

  return {
    async itsmUpsertTicket(system: string, unit: RemediationUnitSummary): Promise<TicketRef> {
      return await ticketSystem(system).upsert(unit);
    },
    async itsmCommentTicket(ref: TicketRef, text: string, idempotencyKey: string): Promise<void> {
      await ticketSystem(ref.system).comment(ref, text, idempotencyKey);
    },
    async itsmCloseTicket(ref: TicketRef, resolution: string): Promise<void> {
      await ticketSystem(ref.system).close(ref, resolution);
    },
    async itsmReopenTicket(ref: TicketRef, reason: string): Promise<void> {
      await ticketSystem(ref.system).reopen(ref, reason);
    },
    async itsmTicketStatus(ref: TicketRef): Promise<TicketStatusCategory> {
      return await ticketSystem(ref.system).status(ref);
    },
    /** Changes of our tickets since the saved poll position that the ledger does not know yet. */
    async itsmReadTicketChanges(system: string): Promise<TicketChangesRead> {
      const remote = systemNamed(system).remote;
      if (!remote.changedSince)
        throw ApplicationFailure.nonRetryable(
          `${system} is not read by polling; it sends webhooks`,
          'TicketPollUnsupported',
        );
      const { rows } = await deps.pool.query<{ position: string }>(
        'select position from ticket_poll_cursors where system = $1',
        [system],
      );
      const started = await deps.pool.query<{ at: Date }>('select clock_timestamp() as at');
      const read = await remote.session(() => remote.changedSince!(rows[0]?.position));
      const pending = await pendingTicketChanges(
        deps.pool,
        read.changes.map((c) => ({
          system,
          key: c.key,
          category: c.category,
          remote: c.remote,
          via: 'poll' as const,
        })),
        new Date(deps.clock()),
        started.rows[0]!.at,
      );
      return { pending, position: read.position };
    },
    /** Record signalled changes and the new poll position. */
    async itsmAcknowledgeTicketChanges(system: string, read: TicketChangesRead): Promise<void> {
      await acknowledgeTicketChanges(deps.pool, read.pending);
      if (read.position)
        await deps.pool.query(
          `insert into ticket_poll_cursors (system, position) values ($1, $2)
           on conflict (system) do update set position = excluded.position, updated_at = now()`,
          [system, read.position],
        );
    },
  };
}
