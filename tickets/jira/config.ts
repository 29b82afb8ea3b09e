// integrations.jira in ctem.yaml (see tickets/config.ts for the whole example).
import { z } from 'zod';
import { duration, secretRef, type SecretRef } from '../../domain/config.ts';
import { category, httpUrl, transportFields } from '../config.ts';

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
    /** Added to every ticket besides the campaign's own `ctem-cmp-…` label. */
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
     * search for the campaign's label is repeated, with growing pauses, for this long before the issue
     * is taken as never created.
     */
    searchLagWait: duration.default('30s'),
    ...transportFields,
    // Jira Cloud refuses a description or comment over 32,767 characters.
    textLimit: z.number().int().min(2_000).max(32_767).default(32_000),
  })
  .strict();
export type JiraConfig = z.infer<typeof jiraSchema>;
