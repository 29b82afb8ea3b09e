// The `lifecycle:` section of a scope in ctem.yaml, validated here (domain/config.ts keeps it a
// free-form record), resolved to the numbers the workflow runs on. Errors name the field.
//
//   scopes:
//     - name: production
//       lifecycle:
//         sla: { act: 7d, attend: 30d }      # override the policy's windows for this scope
//         ladder:
//           - { at: 50%, notify: [owner] }
//           - { at: 100%, notify: [owner, channel, manager] }
//           - { after: 3d, notify: [ciso] }   # grace period past the deadline
//         maxSnooze: 30d
//         maxRiskAcceptance: 180d
//         riskExpiryReminder: 14d
//         verifyWithin: 3d
//         autoApprove: false
//         onboardingGrace: 30d   # SLA clocks of what ctem learns in the scope's first 30 days start then
//         onboardingBaseline: true   # the scope's first import is a backlog import (as ctem ingest --baseline)
import { z } from 'zod';
import { ConfigError, duration, durationMs, type Config, type Scope } from '../domain/config.ts';
import {
  defaultLifecycleRules,
  escalationAudiences,
  type EscalationStep,
  type LifecycleRules,
} from '../domain/sla.ts';

const percent = z
  .string({ error: 'must be a percentage of the SLA window such as 50%' })
  .regex(/^\d{1,3}(\.\d+)?%$/, 'must be a percentage of the SLA window such as 50%')
  .refine((p) => Number(p.slice(0, -1)) > 0, 'must be more than 0%');

const step = z
  .object({
    at: percent.optional(),
    after: duration.optional(),
    notify: z.array(z.enum(escalationAudiences)).min(1, 'name at least one audience'),
  })
  .strict()
  .refine((s) => (s.at === undefined) !== (s.after === undefined), {
    message: 'give either at (a percentage of the SLA window) or after (a grace period past the deadline)',
  });

const outcomeWindows = z
  .object({ act: duration, attend: duration, 'track*': duration, track: duration })
  .partial()
  .strict();

export const lifecycleSectionSchema = z
  .object({
    sla: outcomeWindows.optional(),
    ladder: z.array(step).min(1).optional(),
    maxSnooze: duration.optional(),
    maxRiskAcceptance: duration.optional(),
    riskExpiryReminder: duration.optional(),
    verifyWithin: duration.optional(),
    autoApprove: z.boolean().optional(),
    onboardingGrace: duration.optional(),
    onboardingBaseline: z.boolean().optional(),
  })
  .strict();

export type LifecycleSection = z.infer<typeof lifecycleSectionSchema>;
/** SSVC outcome → SLA window in ms, where the scope overrides the policy. */
export type SlaOverride = Partial<Record<'act' | 'attend' | 'track*' | 'track', number>>;

function parseSection(config: Config, scope: Scope): LifecycleSection {
  const index = config.scopes.indexOf(scope);
  const result = lifecycleSectionSchema.safeParse(scope.lifecycle ?? {});
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => ({
      file: 'ctem.yaml',
      field: `scopes[${index}].lifecycle${issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}`,
      message: issue.message,
    })),
  );
}

function stepTimeOf(s: { at?: string; after?: string }): number {
  return s.at !== undefined ? Number(s.at.slice(0, -1)) / 100 : 1 + durationMs(s.after!) / 1e15;
}

/** The lifecycle rules of a scope: its own section over the built-in defaults. Unknown scope → defaults. */
export function lifecycleRulesFor(config: Config, scopeName: string): LifecycleRules {
  const scope = config.scopes.find((s) => s.name === scopeName);
  if (!scope) return defaultLifecycleRules;
  const section = parseSection(config, scope);
  const ladder: EscalationStep[] = section.ladder
    ? [...section.ladder]
        .sort((a, b) => stepTimeOf(a) - stepTimeOf(b))
        .map((s) =>
          s.at !== undefined
            ? { fraction: Number(s.at.slice(0, -1)) / 100, notify: s.notify }
            : { afterDueMs: durationMs(s.after!), notify: s.notify },
        )
    : defaultLifecycleRules.ladder;
  const ms = (text: string | undefined, fallback: number) => (text ? durationMs(text) : fallback);
  return {
    ladder,
    maxSnoozeMs: ms(section.maxSnooze, defaultLifecycleRules.maxSnoozeMs),
    maxRiskAcceptanceMs: ms(section.maxRiskAcceptance, defaultLifecycleRules.maxRiskAcceptanceMs),
    riskExpiryReminderMs: ms(section.riskExpiryReminder, defaultLifecycleRules.riskExpiryReminderMs),
    verifyWithinMs: ms(section.verifyWithin, defaultLifecycleRules.verifyWithinMs),
    autoApprove: section.autoApprove ?? defaultLifecycleRules.autoApprove,
    slaCapMs: Object.fromEntries(
      Object.entries(section.sla ?? {}).map(([k, v]) => [SLA_LABEL[k] ?? k, durationMs(v)]),
    ),
  };
}

const SLA_LABEL: Record<string, string> = {
  act: 'Act',
  attend: 'Attend',
  'track*': 'Track*',
  track: 'Track',
};

export function slaOverrideFor(config: Config, scopeName: string): SlaOverride {
  const scope = config.scopes.find((s) => s.name === scopeName);
  if (!scope) return {};
  const sla = parseSection(config, scope).sla ?? {};
  return Object.fromEntries(Object.entries(sla).map(([k, v]) => [k, durationMs(v)])) as SlaOverride;
}

/**
 * The scope's onboarding grace in ms (0: none). While a scope is onboarding (from when ctem first
 * learned of an exposure in it, for this long), SLA clocks wait for the end of the grace: a backlog
 * is worked through without breaching on arrival.
 */
export function onboardingGraceMs(config: Config, scopeName: string): number {
  const scope = config.scopes.find((s) => s.name === scopeName);
  if (!scope) return 0;
  const grace = parseSection(config, scope).onboardingGrace;
  return grace ? durationMs(grace) : 0;
}

/** Whether the scope's first import is a backlog import: filed silently, one summary per owner. */
export function onboardingBaseline(config: Config, scopeName: string): boolean {
  const scope = config.scopes.find((s) => s.name === scopeName);
  return scope ? parseSection(config, scope).onboardingBaseline === true : false;
}

/** Check every scope's section at start-up, so a mistake is reported before any workflow needs it. */
export function validateLifecycleSettings(config: Config): void {
  for (const scope of config.scopes) parseSection(config, scope);
}
