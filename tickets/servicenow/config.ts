// integrations.servicenow in ctem.yaml (see tickets/config.ts for the whole example).
import { z } from 'zod';
import { duration, secretRef, type SecretRef } from '../../domain/config.ts';
import { category, httpUrl, transportFields } from '../config.ts';

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
