// The `dashboard:` section of ctem.yaml (domain/config.ts keeps it free-form; it is validated here):
//
//   dashboard:
//     accounts:                      # local accounts: a person of people[] and a scrypt hash
//       - { person: cyrus, passwordHash: file:secrets/cyrus.hash }   # `ctem dashboard hash-password`
//     tokens:                        # API tokens (Authorization: Bearer …), from secrets only
//       - { person: cyrus, token: env:CTEM_DASHBOARD_TOKEN }
//     sessionSecret: env:CTEM_DASHBOARD_SESSION_SECRET   # optional; random per process otherwise
//     sessionTtl: 12h
//     secureCookies: true            # false only to test over plain http from another host
//
// The dashboard is mounted by `ctem up` when at least one account or token is configured: it never
// runs without authentication.
import { z } from 'zod';
import { ConfigError, duration, durationMs, secretRef, type Config } from '../../domain/config.ts';

const scryptHash = z.string().regex(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=_-]+\$[A-Za-z0-9+/=_-]+$/, {
  message:
    'must be a scrypt hash made by `ctem dashboard hash-password`, or env:NAME / file:PATH holding one',
});

export const dashboardSchema = z
  .object({
    accounts: z
      .array(z.object({ person: z.string().min(1), passwordHash: z.union([scryptHash, secretRef]) }).strict())
      .default([]),
    tokens: z.array(z.object({ person: z.string().min(1), token: secretRef }).strict()).default([]),
    sessionSecret: secretRef.optional(),
    sessionTtl: duration.default('12h'),
    secureCookies: z.boolean().default(true),
  })
  .strict();

export type DashboardSettings = z.infer<typeof dashboardSchema> & { sessionTtlMs: number };

/** The dashboard settings, or undefined when the section is absent; errors name the field. */
export function dashboardSettings(config: Config, file = 'ctem.yaml'): DashboardSettings | undefined {
  const raw = config.dashboard;
  if (raw === undefined || raw === null) return undefined;
  const result = dashboardSchema.safeParse(raw);
  if (!result.success)
    throw new ConfigError(
      result.error.issues.map((i) => ({
        file,
        field: ['dashboard', ...i.path.map(String)].join('.'),
        message: i.message,
      })),
    );
  const people = new Set(config.people.map((p) => p.id));
  const unknown = [
    ...result.data.accounts.map((a, i) => ({ id: a.person, field: `dashboard.accounts.${i}.person` })),
    ...result.data.tokens.map((t, i) => ({ id: t.person, field: `dashboard.tokens.${i}.person` })),
  ].filter((r) => !people.has(r.id));
  if (unknown.length)
    throw new ConfigError(
      unknown.map((u) => ({
        file,
        field: u.field,
        message: `unknown person "${u.id}": add it under people`,
      })),
    );
  return { ...result.data, sessionTtlMs: durationMs(result.data.sessionTtl) };
}
