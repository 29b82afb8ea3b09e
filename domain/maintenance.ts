// Maintenance windows (ctem.yaml scopes[].maintenanceWindow): when patching may run. Pure and
// deterministic (Intl's time-zone data, no clock), so the patch workflow computes its timer here.
//
// A window belongs to the day it starts: {days: [sat], start: "22:00", end: "04:00"} opens Saturday
// 22:00 local time and closes Sunday 04:00. end == start means the whole day.

export const weekdays = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof weekdays)[number];

export interface MaintenanceWindow {
  days: Weekday[];
  /** Local time of day "HH:MM". */
  start: string;
  end: string;
  /** IANA time zone ("Europe/Paris"); "UTC" when absent. */
  timezone?: string;
}

export type WindowState = { open: true; closesAt: Date } | { open: false; opensAt: Date; closesAt: Date };

export class MaintenanceWindowError extends Error {
  constructor(field: string, message: string) {
    super(`maintenanceWindow.${field}: ${message}`);
    this.name = 'MaintenanceWindowError';
  }
}

/** Whether `now` is inside the window, and when it closes or next opens. No window = always open. */
export function maintenanceWindowAt(window: MaintenanceWindow | undefined, now: Date): WindowState {
  if (!window) return { open: true, closesAt: new Date(8.64e15) };
  const tz = window.timezone ?? 'UTC';
  const startMin = minutesOfDay(window.start, 'start');
  const endMin = minutesOfDay(window.end, 'end');
  if (window.days.length === 0) throw new MaintenanceWindowError('days', 'must name at least one day');
  for (const d of window.days)
    if (!weekdays.includes(d))
      throw new MaintenanceWindowError('days', `"${String(d)}" is not a weekday (mon..sun)`);
  const today = localDate(now.getTime(), tz);
  // Yesterday's window may still be open (it crosses midnight); a week ahead always holds the next one.
  for (let offset = -1; offset <= 8; offset++) {
    const day = addDays(today, offset);
    if (!window.days.includes(weekdays[weekdayOf(day)]!)) continue;
    const opens = zonedTimeToUtc(day, startMin, tz);
    const closeDay = endMin > startMin ? day : addDays(day, 1);
    const closes = zonedTimeToUtc(closeDay, endMin, tz);
    if (now.getTime() < opens) return { open: false, opensAt: new Date(opens), closesAt: new Date(closes) };
    if (now.getTime() < closes) return { open: true, closesAt: new Date(closes) };
  }
  throw new MaintenanceWindowError('days', 'no window opens within a week'); // unreachable with ≥1 day
}

/** Milliseconds to wait before the window is open (0 when it is open now). */
export function msUntilWindowOpens(window: MaintenanceWindow | undefined, now: Date): number {
  const state = maintenanceWindowAt(window, now);
  return state.open ? 0 : state.opensAt.getTime() - now.getTime();
}

/** "sat 22:00–04:00 Europe/Paris", for messages. */
export function describeMaintenanceWindow(window: MaintenanceWindow | undefined): string {
  if (!window) return 'any time (no maintenance window configured)';
  return `${window.days.join(',')} ${window.start}–${window.end} ${window.timezone ?? 'UTC'}`;
}

// ---- calendar arithmetic on local dates -----------------------------------------------------------

interface LocalDate {
  year: number;
  month: number; // 1-12
  day: number;
}

function minutesOfDay(hhmm: string, field: string): number {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(hhmm);
  if (!m) throw new MaintenanceWindowError(field, `"${hhmm}" is not a time of day HH:MM`);
  return Number(m[1]) * 60 + Number(m[2]);
}

function addDays(d: LocalDate, n: number): LocalDate {
  const t = new Date(Date.UTC(d.year, d.month - 1, d.day + n));
  return { year: t.getUTCFullYear(), month: t.getUTCMonth() + 1, day: t.getUTCDate() };
}

function weekdayOf(d: LocalDate): number {
  return new Date(Date.UTC(d.year, d.month - 1, d.day)).getUTCDay();
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone: tz,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      throw new MaintenanceWindowError('timezone', `"${tz}" is not an IANA time zone such as Europe/Paris`);
    }
    formatters.set(tz, f);
  }
  return f;
}

/** The wall-clock reading in tz at a UTC instant, as if it were UTC (ms). */
function wallClock(utcMs: number, tz: string): number {
  const parts: Record<string, number> = {};
  for (const p of formatter(tz).formatToParts(new Date(utcMs)))
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
}

function localDate(utcMs: number, tz: string): LocalDate {
  const t = new Date(wallClock(utcMs, tz));
  return { year: t.getUTCFullYear(), month: t.getUTCMonth() + 1, day: t.getUTCDate() };
}

/**
 * The UTC instant at which the local clock in tz reads the given date and minute. A time skipped by a
 * DST change moves forward by the length of the gap (02:30 on a spring-forward night is 03:30), and a
 * repeated time resolves to its first occurrence, as RFC 5545 and TC39 Temporal's "compatible"
 * disambiguation do.
 */
function zonedTimeToUtc(d: LocalDate, minute: number, tz: string): number {
  const wanted = Date.UTC(d.year, d.month - 1, d.day, Math.floor(minute / 60), minute % 60);
  // Offsets a few hours either side bracket any DST change near the wanted time.
  const candidates = [-3, 0, 3]
    .map((h) => wanted - (wallClock(wanted + h * 3_600_000, tz) - (wanted + h * 3_600_000)))
    .filter((t, i, all) => all.indexOf(t) === i)
    .sort((a, b) => a - b);
  const exact = candidates.find((t) => wallClock(t, tz) === wanted);
  if (exact !== undefined) return exact;
  // In a DST gap: the earlier offset applied, which lands past the gap.
  return candidates.find((t) => wallClock(t, tz) > wanted) ?? candidates[candidates.length - 1]!;
}
