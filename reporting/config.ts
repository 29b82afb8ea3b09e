// The `digest:` section of ctem.yaml, validated here (domain/config.ts keeps it free-form):
//
//   digest:
//     weekday: mon            # when the Temporal Schedule sends it (lifecycle/schedules.ts)
//     time: "08:00"
//     timezone: Europe/Paris  # also the time zone of the reporting week's boundaries
//     top: 10                 # rows in the top assets / top weaknesses tables
//     expiringWithin: 14d     # risk acceptances "expiring soon"
//     dashboardUrl: https://ctem.example.org/dashboard   # linked from the e-mail and chat summaries
//     email:
//       from: ctem@example.org
//       to: [ciso@example.org]
//       smtp: { host: smtp.example.org, port: 587, secure: false, user: ctem, password: env:SMTP_PASSWORD }
//     slack: { channel: C0CISO }          # Block Kit summary, posted by the Slack bot (integrations.slack)
//     teams: { conversation: '19:…@thread.tacv2' }   # Adaptive Card, posted by the Teams bot (integrations.teams)
//   or, without a bot: slack: { webhook: env:SLACK_DIGEST_WEBHOOK } / teams: { webhook: env:TEAMS_DIGEST_WEBHOOK }
import { z } from 'zod';
import { duration, durationMs, secretRef, type Config } from '../domain/config.ts';

export const digestSchema = z
  .object({
    weekday: z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']).default('mon'),
    time: z
      .string()
      .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time of day HH:MM')
      .default('08:00'),
    timezone: z
      .string()
      .refine((tz) => {
        try {
          new Intl.DateTimeFormat('en-US', { timeZone: tz });
          return true;
        } catch {
          return false;
        }
      }, 'must be an IANA time zone such as Europe/Paris or UTC')
      .default('UTC'),
    top: z.number().int().min(1).max(100).default(10),
    expiringWithin: duration.default('14d'),
    dashboardUrl: z.string().url().optional(),
    email: z
      .object({
        from: z.string().min(3),
        to: z.array(z.string().email()).min(1),
        subjectPrefix: z.string().default('[CTEM]'),
        smtp: z
          .object({
            host: z.string().min(1),
            port: z.number().int().min(1).max(65535).default(587),
            secure: z.boolean().default(false),
            user: z.string().optional(),
            password: secretRef.optional(),
            /** Refuse to send without STARTTLS (off only for a local relay). */
            requireTls: z.boolean().default(true),
          })
          .strict(),
      })
      .strict()
      .optional(),
    slack: z
      .union([z.object({ channel: z.string().min(1) }).strict(), z.object({ webhook: secretRef }).strict()])
      .optional(),
    teams: z
      .union([
        z.object({ conversation: z.string().min(1) }).strict(),
        z.object({ webhook: secretRef }).strict(),
      ])
      .optional(),
  })
  .strict();

export type DigestSettings = z.infer<typeof digestSchema>;

export class DigestConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DigestConfigError';
  }
}

/** The digest settings of ctem.yaml, or an error naming the field (`digest.email.to[0]: …`). */
export function digestSettings(config: Config): DigestSettings {
  const result = digestSchema.safeParse(config.digest ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = ['digest', ...issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))]
    .join('.')
    .replace(/\.\[/g, '[');
  throw new DigestConfigError(`ctem.yaml: ${field}: ${issue.message}`);
}

export function expiringWithinMs(settings: DigestSettings): number {
  return durationMs(settings.expiringWithin);
}

/** A scope's scan cadence in seconds (scan coverage counts an asset scanned within it as covered). */
export function cadenceSeconds(config: Config): { scope: string; seconds: number }[] {
  return config.scopes.map((s) => ({ scope: s.name, seconds: durationMs(s.cadence) / 1000 }));
}
