// integrations.teams in ctem.yaml. The client secret is a secret reference only.
import { z } from 'zod';
import { ConfigError, secretRef } from '../../domain/config.ts';

export const teamsConfigSchema = z
  .object({
    /** The bot's Microsoft App ID (Entra application client id). */
    appId: z.string().min(1),
    /** The Entra tenant the app is registered in (single-tenant bots). */
    tenantId: z.string().min(1),
    clientSecret: secretRef,
    /** Path on the HTTP server Teams posts activities to. */
    path: z
      .string()
      .regex(/^\/[A-Za-z0-9/_-]*$/, 'must be a URL path such as /api/teams/messages')
      .default('/api/teams/messages'),
    /**
     * production: every request must carry a valid Bot Framework JWT. development: requests are
     * accepted unauthenticated (local tunnels and emulators only); never set this in production.
     */
    authentication: z.enum(['production', 'development']).default('production'),
    /** Bot Connector service URL for a conversation we have no stored reference for. */
    serviceUrl: z.string().url().default('https://smba.trafficmanager.net/teams/'),
    /** Minimum spacing of sends per conversation (Teams allows 7 per second). */
    perConversationIntervalMs: z.number().int().min(0).default(143),
    /** Sovereign clouds (or a local test server): where tokens come from and how they are checked. */
    endpoints: z
      .object({
        login: z.string().url().optional(),
        openIdMetadata: z.string().url().optional(),
        tokenIssuer: z.string().min(1).optional(),
        botScope: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

export type TeamsConfig = z.infer<typeof teamsConfigSchema>;

/** integrations.teams, validated; undefined when Teams is not configured. */
export function teamsConfigOf(
  integrations: Record<string, unknown>,
  file = 'ctem.yaml',
): TeamsConfig | undefined {
  const raw = integrations.teams;
  if (raw === undefined || raw === null) return undefined;
  const result = teamsConfigSchema.safeParse(raw);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((i) => ({
      file,
      field: ['integrations', 'teams', ...i.path.map(String)].join('.'),
      message: i.message,
    })),
  );
}
