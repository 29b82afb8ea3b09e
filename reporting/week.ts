// ISO weeks ("2026-W47") as the digest's reporting period: Monday 00:00 to the next Monday 00:00
// in the digest's time zone (digest.timezone, UTC by default).

export interface ReportWeek {
  /** "2026-W47". */
  label: string;
  /** Monday 00:00 local time, as an instant. */
  start: Date;
  /** The next Monday 00:00 (exclusive). */
  end: Date;
}

const DAY_MS = 86_400_000;

/** Offset of `timeZone` from UTC at `instant`, in ms (positive east of Greenwich). */
function zoneOffsetMs(instant: Date, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(instant);
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  const asUtc = Date.UTC(
    get('year'),
    get('month') - 1,
    get('day'),
    get('hour'),
    get('minute'),
    get('second'),
  );
  return asUtc - Math.floor(instant.getTime() / 1000) * 1000;
}

/** The instant at which the local wall clock of `timeZone` shows midnight of the UTC date `dayUtcMs`. */
function localMidnight(dayUtcMs: number, timeZone: string): Date {
  const guess = dayUtcMs - zoneOffsetMs(new Date(dayUtcMs), timeZone);
  // One correction step covers a DST change between the guess and midnight.
  return new Date(dayUtcMs - zoneOffsetMs(new Date(guess), timeZone));
}

/** Monday (UTC date, ms) of ISO week `week` of ISO year `year`. */
function isoWeekMonday(year: number, week: number): number {
  const jan4 = Date.UTC(year, 0, 4);
  const jan4Dow = (new Date(jan4).getUTCDay() + 6) % 7; // Monday = 0
  return jan4 - jan4Dow * DAY_MS + (week - 1) * 7 * DAY_MS;
}

function isoWeekOf(dayUtcMs: number): { year: number; week: number } {
  const d = new Date(dayUtcMs);
  const dow = (d.getUTCDay() + 6) % 7;
  const thursday = dayUtcMs - dow * DAY_MS + 3 * DAY_MS;
  const year = new Date(thursday).getUTCFullYear();
  const week = Math.floor((thursday - Date.UTC(year, 0, 1)) / (7 * DAY_MS)) + 1;
  return { year, week };
}

function build(year: number, week: number, timeZone: string): ReportWeek {
  const monday = isoWeekMonday(year, week);
  return {
    label: `${year}-W${String(week).padStart(2, '0')}`,
    start: localMidnight(monday, timeZone),
    end: localMidnight(monday + 7 * DAY_MS, timeZone),
  };
}

/** Parse "YYYY-Www"; undefined when it is not a week that exists. */
export function parseWeek(text: string, timeZone = 'UTC'): ReportWeek | undefined {
  const m = /^(\d{4})-W(\d{2})$/.exec(text);
  if (!m) return undefined;
  const year = Number(m[1]);
  const week = Number(m[2]);
  if (week < 1 || isoWeekOf(isoWeekMonday(year, week)).year !== year) return undefined;
  return build(year, week, timeZone);
}

/** The week containing `at` (local time in `timeZone`). */
export function weekContaining(at: Date, timeZone = 'UTC'): ReportWeek {
  const localDay = Math.floor((at.getTime() + zoneOffsetMs(at, timeZone)) / DAY_MS) * DAY_MS;
  const { year, week } = isoWeekOf(localDay);
  return build(year, week, timeZone);
}

/** The last complete week before `at`: what a Monday-morning digest reports. */
export function previousWeek(at: Date, timeZone = 'UTC'): ReportWeek {
  const current = weekContaining(at, timeZone);
  return weekContaining(new Date(current.start.getTime() - DAY_MS), timeZone);
}
