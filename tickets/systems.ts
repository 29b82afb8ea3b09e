// The ticket systems ctem knows, one line each, and what is built from them: a scope's ticket
// system with the exactly-once ledger (the integration registry's factory), the systems read by
// polling, and each configured system's section. Adding a system: a folder tickets/<name>/ exporting
// a TicketSystemModule (client, schema, doctor check), one line below, and its bundled template
// under templates/tickets/.
import { ApplicationFailure } from '@temporalio/activity';
import type { Config } from '../domain/config.ts';
import { resolveSecret } from '../runtime/config.ts';
import type { Deps } from '../runtime/deps.ts';
import { parseSection, scopeTicketsSchema, TicketConfigError, type ScopeTickets } from './config.ts';
import { ExactlyOnceTicketSystem } from './exactlyOnce.ts';
import type { TicketSystemDeps, TicketSystemModule } from './module.ts';
import { glpi } from './glpi/index.ts';
import { jira } from './jira/index.ts';
import { servicenow } from './servicenow/index.ts';

/** Add one line per ticket system. */
export const ticketSystems: readonly TicketSystemModule[] = [jira, servicenow, glpi];

export const ticketSystemNames = ticketSystems.map((m) => m.name);

export function ticketSystemModule(name: string): TicketSystemModule | undefined {
  return ticketSystems.find((m) => m.name === name);
}

/** A system's section (validated), or undefined when ctem.yaml has none. Throws TicketConfigError. */
export function ticketIntegration<C>(config: Config, module: TicketSystemModule<C>): C | undefined {
  const section = config.integrations[module.name];
  if (section === undefined) return undefined;
  return parseSection(module.configSchema, section, `integrations.${module.name}`) as C;
}

/** Every configured system with its validated section. Throws TicketConfigError naming the field. */
export function configuredTicketSystems(config: Config): { module: TicketSystemModule; cfg: unknown }[] {
  return ticketSystems.flatMap((module) => {
    const cfg = ticketIntegration(config, module);
    return cfg === undefined ? [] : [{ module, cfg }];
  });
}

/** A scope's ticket settings, or undefined when the scope files no tickets. */
export function scopeTickets(config: Config, scopeName: string): ScopeTickets | undefined {
  const index = config.scopes.findIndex((s) => s.name === scopeName);
  const scope = config.scopes[index];
  if (!scope?.tickets) return undefined;
  const parsed = parseSection(scopeTicketsSchema, scope.tickets, `scopes[${index}].tickets`);
  if (!ticketSystemModule(parsed.system))
    throw new TicketConfigError(
      `ctem.yaml: scopes[${index}].tickets.system: "${parsed.system}" is not a ticket system; use one of ${ticketSystemNames.join(', ')}`,
    );
  if (config.integrations[parsed.system] === undefined)
    throw new TicketConfigError(
      `ctem.yaml: scopes[${index}].tickets.system: "${parsed.system}" is not configured; add integrations.${parsed.system}`,
    );
  return parsed;
}

type FactoryDeps = Pick<Deps, 'pool' | 'log' | 'baseDir' | 'config'>;

function secretsFrom(deps: FactoryDeps): TicketSystemDeps {
  return { readSecret: (ref) => resolveSecret(ref, process.env, deps.baseDir), baseDir: deps.baseDir };
}

/** A system's client with the exactly-once ledger, from its validated section. */
export function createTicketSystem<C>(
  module: TicketSystemModule<C>,
  cfg: C,
  deps: FactoryDeps,
): ExactlyOnceTicketSystem {
  return new ExactlyOnceTicketSystem(module.create(cfg, secretsFrom(deps)), deps.pool, deps.log, (scope) => {
    try {
      return scopeTickets(deps.config, scope)?.groupBy ?? 'campaign';
    } catch (err) {
      if (err instanceof TicketConfigError) throw ApplicationFailure.nonRetryable(err.message, 'ConfigError');
      throw err;
    }
  });
}

/**
 * The ticket system a scope names, for the integration registry (app/integrations.ts). Only that
 * system's section is read, so a mistake in another one does not stop it; a mistake in its own is a
 * non-retryable failure naming the field.
 */
export function ticketSystemFor(name: string, deps: FactoryDeps): ExactlyOnceTicketSystem {
  const module = ticketSystemModule(name);
  if (!module)
    throw ApplicationFailure.nonRetryable(
      `unknown ticket system "${name}"; known: ${ticketSystemNames.join(', ')}`,
      'TicketSystemNotConfigured',
    );
  let cfg: unknown;
  try {
    cfg = ticketIntegration(deps.config, module);
  } catch (err) {
    if (err instanceof TicketConfigError) throw ApplicationFailure.nonRetryable(err.message, 'ConfigError');
    throw err;
  }
  if (cfg === undefined)
    throw ApplicationFailure.nonRetryable(
      `ctem.yaml: integrations.${name}: missing, but a scope files its tickets in ${name}; add the section`,
      'ConfigError',
    );
  return createTicketSystem(module, cfg, deps);
}

/** Systems read by polling, with their interval (GLPI always; ServiceNow when it has a pollInterval). */
export function polledTicketSystems(config: Config): { system: string; interval: string }[] {
  return configuredTicketSystems(config).flatMap(({ module, cfg }) => {
    const interval = module.pollInterval?.(cfg);
    return interval ? [{ system: module.name, interval }] : [];
  });
}
