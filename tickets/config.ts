// The ticket systems' sections of ctem.yaml: `integrations.jira`, `integrations.servicenow`,
// `integrations.glpi` and `scopes[].tickets`. ctem.yaml leaves these free-form; they are validated
// here, and every error names the field.
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
import { duration, secretRef, type Config, type SecretRef } from '../domain/config.ts';
import type { TicketStatusCategory } from '../domain/ports.ts';

export const ticketSystemNames = ['jira', 'servicenow', 'glpi'] as const;
export type TicketSystemName = (typeof ticketSystemNames)[number];

const category = z.enum(['open', 'in-progress', 'done']);
const httpUrl = z
  .string()
  .regex(/^https?:\/\/[^\s]+$/, 'must be an http(s) URL such as https://example.atlassian.net');

/** Timeouts and rate-limit patience shared by the three clients. */
const transportFields = {
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

export const jiraSchema = z
  .object({
    /** https://<site>.atlassian.net for basic auth; https://api.atlassian.com/ex/jira/<cloudId> for OAuth 2.0. */
    url: httpUrl,
    /** { email, apiToken } (basic) or { accessToken } (OAuth 2.0). */
    auth: z
      .object({
        email: z.string().min(1).optional(),
        apiToken: secretRef.optional(),
        accessToken: secretRef.optional(),
      })
      .strict()
      .refine((a) => (a.accessToken ? !a.email && !a.apiToken : !!a.email && !!a.apiToken), {
        message: 'give either email and apiToken (basic auth) or accessToken (OAuth 2.0)',
      })
      .transform((a): { email: string; apiToken: SecretRef } | { accessToken: SecretRef } =>
        a.accessToken ? { accessToken: a.accessToken } : { email: a.email!, apiToken: a.apiToken! },
      ),
    project: z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'must be a Jira project key such as SEC'),
    issueType: z.string().default('Task'),
    /** Added to every ticket besides the unit's own `ctem-ru-…` label. */
    labels: z.array(z.string().regex(/^\S+$/, 'must be a label without spaces')).default(['ctem']),
    /** ctem priority → Jira priority name; unmapped priorities leave Jira's default. */
    priorities: z.record(z.string(), z.string()).default({}),
    /** Jira status category key → ctem status category. */
    statusCategories: z
      .object({
        new: category.default('open'),
        indeterminate: category.default('in-progress'),
        done: category.default('done'),
      })
      .strict()
      .default({ new: 'open', indeterminate: 'in-progress', done: 'done' }),
    /** Transition names to prefer; by default the first transition into the right status category is used. */
    transitions: z
      .object({ close: z.string().optional(), reopen: z.string().optional() })
      .strict()
      .default({}),
    /** Resolution set on close (when the close screen has the field). */
    resolution: z.string().optional(),
    /** Secret of the Jira webhook (X-Hub-Signature HMAC-SHA256). */
    webhookSecret: secretRef.optional(),
    /**
     * Jira's search index lags behind writes: after a create whose answer was lost (a crash), the
     * search for the unit's label is repeated, with growing pauses, for this long before the issue
     * is taken as never created.
     */
    searchLagWait: duration.default('30s'),
    ...transportFields,
  })
  .strict();
export type JiraConfig = z.infer<typeof jiraSchema>;

const stateNumber = z.number().int();

export const serviceNowSchema = z
  .object({
    /** https://<instance>.service-now.com */
    url: httpUrl,
    table: z
      .string()
      .regex(/^[a-z0-9_]+$/, 'must be a table name such as incident')
      .default('incident'),
    /** { username, password } (basic) or { token } (OAuth bearer). */
    auth: z
      .object({
        username: z.string().min(1).optional(),
        password: secretRef.optional(),
        token: secretRef.optional(),
      })
      .strict()
      .refine((a) => (a.token ? !a.username && !a.password : !!a.username && !!a.password), {
        message: 'give either username and password (basic auth) or token (OAuth bearer)',
      })
      .transform((a): { username: string; password: SecretRef } | { token: SecretRef } =>
        a.token ? { token: a.token } : { username: a.username!, password: a.password! },
      ),
    /** Extra fields written on create (assignment_group, caller_id, category…). */
    fields: z.record(z.string(), z.string()).default({}),
    /** ctem priority → urgency and impact (ServiceNow derives priority from both). */
    priorities: z
      .record(z.string(), z.object({ urgency: stateNumber, impact: stateNumber }).strict())
      .default({}),
    /** State number → ctem status category. */
    states: z.record(z.string().regex(/^-?\d+$/, 'must be a state number'), category).default({
      '1': 'open',
      '2': 'in-progress',
      '3': 'in-progress',
      '6': 'done',
      '7': 'done',
      '8': 'done',
    }),
    closeState: stateNumber.default(6),
    reopenState: stateNumber.default(2),
    closeCode: z.string().default('Solved (Permanently)'),
    /** Journal field comments go to: work_notes (internal) or comments (visible to the caller). */
    commentField: z.enum(['work_notes', 'comments']).default('work_notes'),
    /** Shared secret the outbound REST message sends, and the header it is sent in. */
    inboundSecret: secretRef.optional(),
    inboundHeader: z
      .string()
      .regex(/^[A-Za-z0-9-]+$/, 'must be an HTTP header name')
      .default('x-ctem-secret'),
    /** Also poll for changes (a safety net for missed outbound REST calls); absent: no polling. */
    pollInterval: duration.optional(),
    ...transportFields,
  })
  .strict();
export type ServiceNowConfig = z.infer<typeof serviceNowSchema>;

export const glpiSchema = z
  .object({
    /** The API root, ending in apirest.php: https://glpi.example.com/apirest.php */
    url: httpUrl,
    appToken: secretRef.optional(),
    userToken: secretRef,
    /** Ticket status number (1 new … 6 closed) → ctem status category. */
    statuses: z.record(z.string().regex(/^[1-6]$/, 'must be a GLPI status 1-6'), category).default({
      '1': 'open',
      '2': 'in-progress',
      '3': 'in-progress',
      '4': 'in-progress',
      '5': 'done',
      '6': 'done',
    }),
    closeStatus: z.number().int().min(1).max(6).default(6),
    reopenStatus: z.number().int().min(1).max(6).default(2),
    /** 1 incident, 2 request. */
    ticketType: z.union([z.literal(1), z.literal(2)]).default(1),
    entity: z.number().int().min(0).optional(),
    category: z.number().int().min(0).optional(),
    /** ctem priority → GLPI urgency 1-5. */
    urgencies: z.record(z.string(), z.number().int().min(1).max(5)).default({}),
    /** Asset item type the ticket is linked to, found by name. */
    assetItemtype: z.string().default('Computer'),
    pollInterval: duration.default('1m'),
    ...transportFields,
  })
  .strict();
export type GlpiConfig = z.infer<typeof glpiSchema>;

/** `scopes[].tickets`: which system a scope's units go to and how exposures are grouped into tickets. */
export const scopeTicketsSchema = z
  .object({
    system: z.enum(ticketSystemNames),
    /**
     * unit (default): one ticket per remediation unit (owner × fix action);
     * exposure: one per exposure; asset: one per asset; fix: one per fix action across assets.
     */
    groupBy: z.enum(['unit', 'exposure', 'asset', 'fix']).default('unit'),
  })
  .strict();
export type ScopeTickets = z.infer<typeof scopeTicketsSchema>;

export interface TicketIntegrations {
  jira?: JiraConfig;
  servicenow?: ServiceNowConfig;
  glpi?: GlpiConfig;
}

export class TicketConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TicketConfigError';
  }
}

function parseSection<S extends z.ZodType>(schema: S, value: unknown, field: string): z.infer<S> {
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

const schemas = { jira: jiraSchema, servicenow: serviceNowSchema, glpi: glpiSchema } as const;

/** One ticket system's section (validated), or undefined when ctem.yaml has none. */
export function ticketIntegration<N extends TicketSystemName>(
  config: Config,
  name: N,
): TicketIntegrations[N] {
  const section = config.integrations[name];
  if (section === undefined) return undefined;
  return parseSection(schemas[name], section, `integrations.${name}`) as TicketIntegrations[N];
}

/** The configured ticket systems (validated); sections that are absent stay undefined. */
export function parseTicketIntegrations(config: Config): TicketIntegrations {
  return {
    jira: ticketIntegration(config, 'jira'),
    servicenow: ticketIntegration(config, 'servicenow'),
    glpi: ticketIntegration(config, 'glpi'),
  };
}

/** A scope's ticket settings, or undefined when the scope files no tickets. */
export function scopeTickets(config: Config, scopeName: string): ScopeTickets | undefined {
  const index = config.scopes.findIndex((s) => s.name === scopeName);
  const scope = config.scopes[index];
  if (!scope?.tickets) return undefined;
  const parsed = parseSection(scopeTicketsSchema, scope.tickets, `scopes[${index}].tickets`);
  if (config.integrations[parsed.system] === undefined)
    throw new TicketConfigError(
      `ctem.yaml: scopes[${index}].tickets.system: "${parsed.system}" is not configured; add integrations.${parsed.system}`,
    );
  return parsed;
}

export function isTicketStatusCategory(value: unknown): value is TicketStatusCategory {
  return value === 'open' || value === 'in-progress' || value === 'done';
}
