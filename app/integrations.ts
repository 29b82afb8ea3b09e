// Where integrations plug in. Each family registers a factory by name, one line per implementation
// (ticket systems in tickets/systems.ts, patch executors in patching/registry.ts, the rest below); a
// scope picks one in ctem.yaml:
//
//   scopes[].tickets.system: jira | servicenow | glpi        → registry.tickets[system]
//   scopes[].patch.executor: ssh | satellite | wsus | demo   → registry.patch[executor]
//   scopes[].scan.connector: nmap | nessus | gvm | …         → registry.scanners[connector]
//   integrations.<name> present (slack, teams, console…)     → registry.notifiers[name]
//
// The composition root (app/compose.ts) builds a registry per process and turns it into the
// Integrations object handed down in Deps; tests build their own with extra entries. When nothing
// is configured the lifecycle says so in the audit log ("no ticket system configured for scope X")
// and carries on; it never pretends something happened.
import type { Scope } from '../domain/config.ts';
import {
  UnknownIntegrationError,
  type Integrations,
  type JobOutcome,
  type Notifier,
  type PatchExecutor,
  type ScanConnector,
  type ScopeIntegrations,
  type TicketSystem,
} from '../domain/ports.ts';
import type { Deps, IntegrationContext } from '../runtime/deps.ts';
import type { ChatRuntime } from '../chat/runtime.ts';
import { createConsoleNotifier } from '../chat/console.ts';
import { createSlackNotifier } from '../chat/slack/notifier.ts';
import { createTeamsNotifier } from '../chat/teams/notifier.ts';
import { patchExecutors } from '../patching/registry.ts';
import { createDemoScanConnector } from '../discovery/demo.ts';
import {
  createGvmConnector,
  createNessusConnector,
  createNmapConnector,
  createSshPackageConnector,
  runScanCycle,
} from '../discovery/index.ts';
import { ticketSystemFor, ticketSystems } from '../tickets/systems.ts';
import { runDigestJob } from '../reporting/job.ts';
import { runFeedSyncJob } from '../lifecycle/feedSyncJob.ts';

export type Factory<T> = (ctx: IntegrationContext) => T;

export interface IntegrationRegistry {
  tickets: Record<string, Factory<TicketSystem>>;
  patch: Record<string, Factory<PatchExecutor>>;
  scanners: Record<string, Factory<ScanConnector>>;
  notifiers: Record<string, Factory<Notifier>>;
  /** The work behind the Temporal Schedules (lifecycle/schedules.ts). */
  jobs: {
    scanCycle?: (ctx: IntegrationContext & { scope: Scope }) => Promise<JobOutcome>;
    feedSync?: (ctx: IntegrationContext) => Promise<JobOutcome>;
    digest?: (ctx: IntegrationContext) => Promise<JobOutcome>;
  };
}

/**
 * The built-in implementations, one line each. A fresh object per call: nothing here is shared or
 * mutated between processes or tests. Chat notifiers post through the process's chat runtime.
 */
export function builtInRegistry(chat?: ChatRuntime): IntegrationRegistry {
  const chatNotifier =
    (make: (runtime: ChatRuntime) => Notifier, name: string): Factory<Notifier> =>
    () => {
      if (!chat)
        throw new UnknownIntegrationError(`integrations.${name} is configured but no chat runtime runs`);
      return make(chat);
    };
  return {
    // Ticket systems and patch executors register themselves in their own family's list
    // (tickets/systems.ts, patching/registry.ts).
    tickets: Object.fromEntries(
      ticketSystems.map((m): [string, Factory<TicketSystem>] => [
        m.name,
        (ctx) => ticketSystemFor(m.name, { ...ctx.deps, config: ctx.config }),
      ]),
    ),
    patch: Object.fromEntries(
      patchExecutors.map((m): [string, Factory<PatchExecutor>] => [m.name, (ctx) => m.create(ctx)]),
    ),
    scanners: {
      demo: (ctx) => createDemoScanConnector(ctx),
      nmap: (ctx) => createNmapConnector(ctx),
      nessus: (ctx) => createNessusConnector(ctx),
      gvm: (ctx) => createGvmConnector(ctx),
      'ssh-package': (ctx) => createSshPackageConnector(ctx),
    },
    notifiers: {
      console: () => createConsoleNotifier(),
      slack: chatNotifier((runtime) => createSlackNotifier(runtime), 'slack'),
      teams: chatNotifier((runtime) => createTeamsNotifier(runtime), 'teams'),
    },
    jobs: {
      scanCycle: (ctx) => runScanCycle(ctx),
      digest: (ctx) => runDigestJob(ctx),
      feedSync: (ctx) => runFeedSyncJob(ctx),
    },
  };
}

function selector(section: Record<string, unknown> | undefined, field: string): string | undefined {
  const value = section?.[field];
  return typeof value === 'string' ? value : undefined;
}

function pick<T>(
  family: Record<string, Factory<T>>,
  name: string | undefined,
  ctx: IntegrationContext,
  field: string,
): T | undefined {
  if (name === undefined) return undefined;
  const factory = family[name];
  if (!factory) {
    const index = ctx.config.scopes.indexOf(ctx.scope!);
    const known = Object.keys(family);
    throw new UnknownIntegrationError(
      `ctem.yaml: scopes[${index}].${field}: "${name}" is not available${known.length ? `; known: ${known.join(', ')}` : '; none is installed yet'}`,
    );
  }
  return factory(ctx);
}

/**
 * The Integrations of the process whose dependencies are `deps` (the object itself gets them as
 * deps.integrations). What a scope uses is built per call, which is cheap, so the implementations
 * keep their own connections if they need them.
 */
export function integrationsOf(
  deps: () => Deps,
  registry: IntegrationRegistry,
  chat?: ChatRuntime,
): Integrations {
  const ctxOf = (scope?: Scope): IntegrationContext => {
    const d = deps();
    return { config: d.config, ...(scope ? { scope } : {}), deps: d };
  };
  const forScope = (scopeName: string): ScopeIntegrations => {
    const ctx = ctxOf();
    const scope = ctx.config.scopes.find((s) => s.name === scopeName);
    if (!scope) return {};
    const scoped: IntegrationContext = { ...ctx, scope };
    return {
      scope,
      tickets: pick(registry.tickets, selector(scope.tickets, 'system'), scoped, 'tickets.system'),
      patch: pick(registry.patch, selector(scope.patch, 'executor'), scoped, 'patch.executor'),
      scanner: pick(registry.scanners, selector(scope.scan, 'connector'), scoped, 'scan.connector'),
    };
  };
  const { jobs } = registry;
  return {
    forScope,
    notifiers: () => {
      const ctx = ctxOf();
      return Object.keys(ctx.config.integrations)
        .filter((name) => registry.notifiers[name] !== undefined)
        .map((name) => registry.notifiers[name]!(ctx));
    },
    jobs: {
      ...(jobs.scanCycle ? { scanCycle: (scope: Scope) => jobs.scanCycle!({ ...ctxOf(scope), scope }) } : {}),
      ...(jobs.feedSync ? { feedSync: () => jobs.feedSync!(ctxOf()) } : {}),
      ...(jobs.digest ? { digest: () => jobs.digest!(ctxOf()) } : {}),
    },
    ...(chat && (chat.slack || chat.teams)
      ? {
          chat: {
            ...(chat.slack ? { slack: chat.slack.transport } : {}),
            ...(chat.teams ? { teams: chat.teams.transport } : {}),
          },
        }
      : {}),
  };
}
