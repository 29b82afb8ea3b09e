// The ticket systems' sections of ctem.yaml: `integrations.jira`, `integrations.servicenow`,
// `integrations.glpi` (each validated by its system's schema, tickets/<name>/config.ts) and
// `scopes[].tickets` (tickets/systems.ts). ctem.yaml leaves these free-form; they are validated where
// they are used, and every error names the field. This file holds what the sections share.
//
//   integrations:
//     jira:
//       url: https://example.atlassian.net
//       auth: { email: ctem@example.com, apiToken: env:JIRA_API_TOKEN }   # or { accessToken: env:… }
//       project: SEC
//       priorities: { Act: Highest, Attend: High }
//       webhookSecret: env:JIRA_WEBHOOK_SECRET                          # POST /webhooks/jira
//     servicenow:
//       url: https://example.service-now.com
//       auth: { username: ctem.integration, password: file:secrets/sn }  # or { token: env:… }
//       fields: { assignment_group: Security Operations }
//       inboundSecret: env:SN_SHARED_SECRET                              # POST /webhooks/servicenow
//     glpi:
//       url: https://glpi.example.com/apirest.php
//       appToken: env:GLPI_APP_TOKEN
//       userToken: env:GLPI_USER_TOKEN
//       pollInterval: 1m
//   scopes:
//     - name: production
//       tickets: { system: jira, groupBy: campaign }                     # campaign | exposure | asset | fix
import { z } from 'zod';
import { duration } from '../domain/config.ts';
import type { TicketStatusCategory } from '../domain/ports.ts';

export const category = z.enum(['open', 'in-progress', 'done']);
export const httpUrl = z
  .string()
  .regex(/^https?:\/\/[^\s]+$/, 'must be an http(s) URL such as https://example.atlassian.net');

/** Timeouts and rate-limit patience every client shares. */
export const transportFields = {
  /** Per request. */
  timeout: duration.default('30s'),
  /** A 429 whose Retry-After is at most this is waited out in the activity; longer ones are left to Temporal's retry. */
  maxRetryAfter: duration.default('60s'),
  /** 429 answers waited out per call before giving the retry to Temporal. */
  rateLimitRetries: z.number().int().min(0).max(10).default(3),
  /** Template file (relative to ctem.yaml) replacing the bundled one under templates/tickets/. */
  template: z.string().optional(),
  /** Link back to the dashboard, used when a campaign carries no url of its own. */
  dashboardUrl: httpUrl.optional(),
  /**
   * The most characters written in one description or comment. A large campaign's ticket lists its
   * most urgent exposures and hosts and says how many more there are; a long comment keeps its first
   * lines and says how many it left out. 32,000 fits Jira Cloud (32,767 at most), ServiceNow's
   * journal and what GLPI shows well.
   */
  textLimit: z.number().int().min(2_000).max(1_000_000).default(32_000),
};

/** The grouping values of `scopes[].tickets.groupBy`; `unit` is read as `campaign`. */
export const groupByValues = ['campaign', 'exposure', 'asset', 'fix'] as const;
export type GroupBy = (typeof groupByValues)[number];

/**
 * `scopes[].tickets`: which system a scope's campaigns go to (a registered one, tickets/systems.ts)
 * and how exposures are grouped into tickets.
 */
export const scopeTicketsSchema = z
  .object({
    system: z.string().min(1),
    /**
     * campaign (default): one ticket per campaign (one fix for one owner in the scope, across all
     * its assets); exposure: one per exposure; asset: one per asset and owner; fix: one per package
     * (or weakness) and owner, so a campaign applying an advisory to several packages is split.
     * `unit`, the default of earlier releases (one ticket per fix and asset), is still accepted,
     * deprecated: it means campaign.
     */
    groupBy: z
      .enum([...groupByValues, 'unit'])
      .default('campaign')
      .transform((g): GroupBy => (g === 'unit' ? 'campaign' : g)),
  })
  .strict();
export type ScopeTickets = z.infer<typeof scopeTicketsSchema>;

export class TicketConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TicketConfigError';
  }
}

/** A section parsed with its schema; every problem names its field. */
export function parseSection<S extends z.ZodType>(schema: S, value: unknown, field: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data as z.infer<S>;
  const problems = result.error.issues.map((issue) => {
    const where = [field, ...issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))]
      .join('')
      .replace(/\.\[/g, '[');
    // A record key's own message ("must be a state number") sits one level down.
    const nested = (issue as { issues?: { message: string }[] }).issues?.[0]?.message;
    return `ctem.yaml: ${where}: ${issue.code === 'invalid_key' && nested ? nested : issue.message}`;
  });
  throw new TicketConfigError(problems.join('\n'));
}

export function isTicketStatusCategory(value: unknown): value is TicketStatusCategory {
  return value === 'open' || value === 'in-progress' || value === 'done';
}
