// integrations.slack in ctem.yaml. Tokens and the signing secret are secret references only.
import { z } from 'zod';
import { ConfigError, secretRef } from '../../domain/config.ts';

export const slackConfigSchema = z
  .object({
    /** HTTP (Events API + interactivity on our HTTP server) or Socket Mode (no public endpoint). */
    mode: z.enum(['http', 'socket']).default('http'),
    /** Bot token (xoxb-…). */
    botToken: secretRef,
    /** Verifies requests in HTTP mode. */
    signingSecret: secretRef.optional(),
    /** App-level token (xapp-…) for Socket Mode. */
    appToken: secretRef.optional(),
    /** Path on the HTTP server for events, interactivity and options. */
    path: z
      .string()
      .regex(/^\/[A-Za-z0-9/_-]*$/, 'must be a URL path such as /slack/events')
      .default('/slack/events'),
    /** Web API base URL; only for a proxy or a local test server. */
    apiUrl: z.string().url('must be a URL such as https://slack.com/api/').optional(),
    /** Minimum spacing of messages per channel (Slack allows about one per second). */
    perChannelIntervalMs: z.number().int().min(0).default(1_000),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.mode === 'http' && !c.signingSecret)
      ctx.addIssue({
        code: 'custom',
        path: ['signingSecret'],
        message: 'HTTP mode needs the signing secret (env:SLACK_SIGNING_SECRET) to verify requests',
      });
    if (c.mode === 'socket' && !c.appToken)
      ctx.addIssue({
        code: 'custom',
        path: ['appToken'],
        message: 'Socket Mode needs an app-level token (env:SLACK_APP_TOKEN)',
      });
  });

export type SlackConfig = z.infer<typeof slackConfigSchema>;

/** integrations.slack, validated; undefined when Slack is not configured. */
export function slackConfigOf(
  integrations: Record<string, unknown>,
  file = 'ctem.yaml',
): SlackConfig | undefined {
  const raw = integrations.slack;
  if (raw === undefined || raw === null) return undefined;
  const result = slackConfigSchema.safeParse(raw);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((i) => ({
      file,
      field: ['integrations', 'slack', ...i.path.map(String)].join('.'),
      message: i.message,
    })),
  );
}
