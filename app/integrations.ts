// Where integrations plug into the lifecycle. Each family registers a factory by name, one line per
// implementation; a scope picks one in ctem.yaml:
//
//   scopes[].tickets.system: jira | servicenow | glpi        → integrations.tickets[system]
//   scopes[].patch.executor: ssh | satellite | wsus | demo   → integrations.patch[executor]
//   scopes[].scan.connector: nmap | nessus | gvm | …         → integrations.scanners[connector]
//   integrations.<name> present (slack, teams, console…)     → integrations.notifiers[name]
//
// When nothing is configured the lifecycle says so in the audit log ("no ticket system configured
// for scope X") and carries on; it never pretends something happened.
import type { Config, Scope } from '../domain/config.ts';
import type { ActivityDeps } from '../activities/deps.ts';
import type { Notifier, PatchExecutor, ScanConnector, TicketSystem } from '../domain/ports.ts';
import { createConsoleNotifier } from '../chat/console.ts';
import { createDemoPatchExecutor } from '../patching/demo.ts';
import { createDemoScanConnector } from '../scanners/connectors/demo.ts';
import {
  createGvmConnector,
  createNessusConnector,
  createNmapConnector,
  createSshPackageConnector,
  runScanCycle,
} from '../scanners/connectors/index.ts';
import { slackNotifierFor } from '../chat/slack/notifier.ts';
import { teamsNotifierFor } from '../chat/teams/notifier.ts';
import { ticketSystemFor } from '../tickets/index.ts';
import { runDigestJob } from '../reporting/job.ts';
import { runFeedSyncJob } from '../intel/syncJob.ts';
import {
  createSatellitePatchExecutor,
  createSshPatchExecutor,
  createWsusPatchExecutor,
} from '../patching/executors.ts';

export interface IntegrationContext {
  config: Config;
  /** The scope the call is for (undefined for notifiers, which serve every scope). */
  scope?: Scope;
  deps: ActivityDeps;
}

/** What a scheduled job did, in one sentence, and the scans it imported (their changes are dispatched). */
export interface JobOutcome {
  detail: string;
  scanIds?: number[];
  /** Exposures whose priority or deadline changed (a feed sync's re-score): their workflows are told. */
  rescoredExposureIds?: string[];
}

export interface IntegrationRegistry {
  tickets: Record<string, (ctx: IntegrationContext) => TicketSystem>;
  patch: Record<string, (ctx: IntegrationContext) => PatchExecutor>;
  scanners: Record<string, (ctx: IntegrationContext) => ScanConnector>;
  notifiers: Record<string, (ctx: IntegrationContext) => Notifier>;
  /** The work behind the Temporal Schedules (lifecycle/schedules.ts). */
  jobs: {
    /** A scope's full scan cycle: launch its scan, ingest the report (as a cycle scan). */
    scanCycle?: (ctx: IntegrationContext & { scope: Scope }) => Promise<JobOutcome>;
    /** Load every configured feed and re-score. */
    feedSync?: (ctx: IntegrationContext) => Promise<JobOutcome>;
    /** Render and send the weekly digest. */
    digest?: (ctx: IntegrationContext) => Promise<JobOutcome>;
  };
}

/** Add one line per implementation here. */
export const integrations: IntegrationRegistry = {
  tickets: {
    jira: (ctx) => ticketSystemFor('jira', { ...ctx.deps, config: ctx.config }),
    servicenow: (ctx) => ticketSystemFor('servicenow', { ...ctx.deps, config: ctx.config }),
    glpi: (ctx) => ticketSystemFor('glpi', { ...ctx.deps, config: ctx.config }),
  },
  patch: {
    demo: () => createDemoPatchExecutor(),
    ssh: (ctx) => createSshPatchExecutor(ctx),
    satellite: (ctx) => createSatellitePatchExecutor(ctx),
    wsus: (ctx) => createWsusPatchExecutor(ctx),
  },
  scanners: {
    demo: (ctx) => createDemoScanConnector(ctx),
    nmap: (ctx) => createNmapConnector(ctx),
    nessus: (ctx) => createNessusConnector(ctx),
    gvm: (ctx) => createGvmConnector(ctx),
    'ssh-package': (ctx) => createSshPackageConnector(ctx),
  },
  notifiers: {
    console: () => createConsoleNotifier(),
    slack: (ctx) => slackNotifierFor(ctx),
    teams: (ctx) => teamsNotifierFor(ctx),
  },
  jobs: {
    scanCycle: (ctx) => runScanCycle(ctx),
    digest: (ctx) => runDigestJob(ctx),
    feedSync: (ctx) => runFeedSyncJob(ctx),
  },
};

/** Thrown when ctem.yaml names an implementation nobody registered: a configuration error, not retryable. */
export class UnknownIntegrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnknownIntegrationError';
  }
}

function selector(section: Record<string, unknown> | undefined, field: string): string | undefined {
  const value = section?.[field];
  return typeof value === 'string' ? value : undefined;
}

function pick<T>(
  family: Record<string, (ctx: IntegrationContext) => T>,
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
 * What one scope uses. Built per call (cheap), so a changed registry or config is picked up; the
 * implementations keep their own connections if they need them.
 */
export function scopeIntegrations(
  config: Config,
  scopeName: string,
  deps: ActivityDeps,
  registry: IntegrationRegistry = integrations,
): { scope?: Scope; tickets?: TicketSystem; patch?: PatchExecutor; scanner?: ScanConnector } {
  const scope = config.scopes.find((s) => s.name === scopeName);
  if (!scope) return {};
  const ctx: IntegrationContext = { config, scope, deps };
  return {
    scope,
    tickets: pick(registry.tickets, selector(scope.tickets, 'system'), ctx, 'tickets.system'),
    patch: pick(registry.patch, selector(scope.patch, 'executor'), ctx, 'patch.executor'),
    scanner: pick(registry.scanners, selector(scope.scan, 'connector'), ctx, 'scan.connector'),
  };
}

/** Every notifier whose integration section is present in ctem.yaml. */
export function configuredNotifiers(
  config: Config,
  deps: ActivityDeps,
  registry: IntegrationRegistry = integrations,
): Notifier[] {
  return Object.keys(config.integrations)
    .filter((name) => registry.notifiers[name] !== undefined)
    .map((name) => registry.notifiers[name]!({ config, deps }));
}
