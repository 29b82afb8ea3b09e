// integrations.glpi in ctem.yaml (see tickets/config.ts for the whole example).
import { z } from 'zod';
import { duration, secretRef } from '../../domain/config.ts';
import { category, httpUrl, transportFields } from '../config.ts';

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
