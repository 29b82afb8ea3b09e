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
//       tickets: { system: jira, groupBy: unit }                         # unit | exposure | asset | fix
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
  /** Link back to the dashboard, used when a unit carries no url of its own. */
  dashboardUrl: httpUrl.optional(),
};

/**
 * `scopes[].tickets`: which system a scope's units go to (a registered one, tickets/systems.ts) and
 * how exposures are grouped into tickets.
 */
export const scopeTicketsSchema = z
  .object({
    system: z.string().min(1),
    /**
     * unit (default): one ticket per remediation unit (owner × fix action);
     * exposure: one per exposure; asset: one per asset; fix: one per fix action across assets.
     */
    groupBy: z.enum(['unit', 'exposure', 'asset', 'fix']).default('unit'),
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
