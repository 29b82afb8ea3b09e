// The notification policy of a scope and of a person (scopes[].notifications, people[].notifications
// in ctem.yaml): what is urgent enough to reach the owner at once, when the daily "your queue"
// message goes out, and how long escalations to a manager, the CISO or a channel are gathered into
// one message. Validated here (domain/config.ts keeps the sections free-form); errors name the field.
//
//   scopes:
//     - name: production
//       notifications:
//         urgent: { priority: [Act], kev: true, breach: true }   # at once; the rest waits for the queue
//         dailyQueue: { time: '09:00', timezone: Europe/Paris, weekdays: [mon, tue, wed, thu, fri] }
//         escalationWindow: 1h      # one message per audience per hour; 0s sends each at once
//   people:
//     - id: olivia
//       notifications: { urgent: { priority: [Act, Attend] }, dailyQueue: { time: '08:30' } }
//
// A person's section overrides the scope's, field by field. Whose policy decides what:
// - urgency is the OWNER's, judged by one rule (`urgentReason`) on the exposures a message is about:
//   the new ones at admission, the ones asked about or reminded of later. Urgent: one of them has an
//   urgent priority, or is in CISA KEV when `kev` is on. An SLA breach reaches the owner at once
//   when `breach` is on. What is not urgent goes to the owner's next daily queue, which lists every
//   campaign still waiting for their decision (urgent ones too, marked as already sent) and every
//   reminder queued since their last queue.
// - the escalation window is the RECIPIENT's (`escalationWindowFor`): a person's own section, else
//   the scope's, else 1h; a scope channel follows the scope's. `0s` sends that recipient each
//   escalation at once; any other window gathers it into one message per recipient per window.
import { z } from 'zod';
import { ConfigError, duration, durationMs, type Config } from '../domain/config.ts';

const priorityLabel = z.enum(['Act', 'Attend', 'Track*', 'Track']);
const weekday = z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']);
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time of day HH:MM');

const timezone = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, 'must be an IANA time zone such as UTC or Europe/Paris');

export const notificationSectionSchema = z
  .object({
    urgent: z
      .object({
        /** Decision requests for campaigns of these priorities are sent at once. */
        priority: z.array(priorityLabel).optional(),
        /** A campaign with an exposure in CISA KEV is urgent. */
        kev: z.boolean().optional(),
        /** An SLA breach reaches the owner at once (in the campaign's thread). */
        breach: z.boolean().optional(),
      })
      .strict()
      .optional(),
    dailyQueue: z
      .object({
        time: hhmm.optional(),
        timezone: timezone.optional(),
        weekdays: z.array(weekday).min(1).optional(),
        /** false: no daily queue message (non-urgent campaigns are only on the dashboard). */
        enabled: z.boolean().optional(),
      })
      .strict()
      .optional(),
    escalationWindow: duration.optional(),
  })
  .strict();

export type NotificationSection = z.infer<typeof notificationSectionSchema>;

export interface NotificationPolicy {
  urgentPriorities: string[];
  urgentKev: boolean;
  urgentBreach: boolean;
  queue: { enabled: boolean; time: string; timezone: string; weekdays: string[] };
  /** 0: every escalation at once. */
  escalationWindowMs: number;
}

export const defaultNotificationPolicy: NotificationPolicy = {
  urgentPriorities: ['Act'],
  urgentKev: true,
  urgentBreach: true,
  queue: {
    enabled: true,
    time: '09:00',
    timezone: 'UTC',
    weekdays: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'],
  },
  escalationWindowMs: 3_600_000,
};

function parse(section: unknown, field: string): NotificationSection {
  const result = notificationSectionSchema.safeParse(section ?? {});
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => ({
      file: 'ctem.yaml',
      field: `${field}${issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}`,
      message: issue.message,
    })),
  );
}

function over(base: NotificationPolicy, s: NotificationSection): NotificationPolicy {
  return {
    urgentPriorities: s.urgent?.priority ?? base.urgentPriorities,
    urgentKev: s.urgent?.kev ?? base.urgentKev,
    urgentBreach: s.urgent?.breach ?? base.urgentBreach,
    queue: {
      enabled: s.dailyQueue?.enabled ?? base.queue.enabled,
      time: s.dailyQueue?.time ?? base.queue.time,
      timezone: s.dailyQueue?.timezone ?? base.queue.timezone,
      weekdays: s.dailyQueue?.weekdays ?? base.queue.weekdays,
    },
    escalationWindowMs:
      s.escalationWindow !== undefined ? durationMs(s.escalationWindow) : base.escalationWindowMs,
  };
}

/** The policy for a person in a scope: the person's section over the scope's, over the defaults. */
export function notificationPolicyFor(
  config: Config,
  scopeName: string,
  personId?: string,
): NotificationPolicy {
  const index = config.scopes.findIndex((s) => s.name === scopeName);
  let policy = defaultNotificationPolicy;
  if (index >= 0)
    policy = over(policy, parse(config.scopes[index]!.notifications, `scopes[${index}].notifications`));
  const p = personId ? config.people.findIndex((x) => x.id === personId) : -1;
  if (p >= 0) policy = over(policy, parse(config.people[p]!.notifications, `people[${p}].notifications`));
  return policy;
}

/** Check every section at start-up, so a mistake is reported before any message needs it. */
export function validateNotificationSettings(config: Config): void {
  config.scopes.forEach((s, i) => parse(s.notifications, `scopes[${i}].notifications`));
  config.people.forEach((p, i) => parse(p.notifications, `people[${i}].notifications`));
}

/** What urgency is judged on: one exposure's priority label and whether it is in CISA KEV. */
export interface UrgencyFacts {
  priority: string;
  kev: boolean;
}

/**
 * Why a message about these exposures is urgent under the policy ("in CISA KEV", "Act priority"),
 * or undefined when it is not: the one rule for admissions, later requests and the daily queue.
 */
export function urgentReason(policy: NotificationPolicy, exposures: UrgencyFacts[]): string | undefined {
  if (policy.urgentKev && exposures.some((e) => e.kev)) return 'in CISA KEV';
  const urgent = exposures.find((e) => policy.urgentPriorities.includes(e.priority));
  return urgent ? `${urgent.priority} priority` : undefined;
}

/**
 * How long an escalation to this recipient is gathered before it is sent (0: at once): the person's
 * window, else the scope's, else the default; a channel (no person) follows its scope.
 */
export function escalationWindowFor(config: Config, scopeName: string, personId?: string): number {
  return notificationPolicyFor(config, scopeName, personId).escalationWindowMs;
}

const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/**
 * The person's local day ("2026-12-07") if their daily queue is due at `nowMs` (the queue time has
 * passed today, on one of their weekdays), else undefined.
 */
export function queueDayAt(policy: NotificationPolicy, nowMs: number): string | undefined {
  if (!policy.queue.enabled) return undefined;
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', {
      timeZone: policy.queue.timezone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      weekday: 'short',
      hourCycle: 'h23',
    })
      .formatToParts(new Date(nowMs))
      .map((p) => [p.type, p.value]),
  );
  const weekday = WEEKDAYS.find((d) => String(parts.weekday).toLowerCase().startsWith(d));
  if (!weekday || !policy.queue.weekdays.includes(weekday)) return undefined;
  if (`${parts.hour}:${parts.minute}` < policy.queue.time) return undefined;
  return `${parts.year}-${parts.month}-${parts.day}`;
}
