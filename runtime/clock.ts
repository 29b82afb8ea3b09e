import type { Clock } from '../domain/clock.ts';

export const systemClock: Clock = () => Date.now();

/** Thrown for a CTEM_NOW that is not an instant. */
export class ClockSettingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClockSettingError';
  }
}

/**
 * The clock of a one-shot command: the system clock, or, with CTEM_NOW set to an ISO 8601 instant
 * (`2026-11-23T12:00:00Z`), a clock that starts at that instant and runs on from there. For
 * reproducible reports ("the digest as it was on Monday noon") and for tests of the real command.
 * A running stack (`ctem up`) refuses it: its workflows keep Temporal's time.
 */
export function clockFromEnv(env: NodeJS.ProcessEnv = process.env): Clock {
  const value = env.CTEM_NOW?.trim();
  if (!value) return systemClock;
  const at = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value)
    ? Date.parse(value)
    : Number.NaN;
  if (Number.isNaN(at))
    throw new ClockSettingError(
      `CTEM_NOW="${value}" is not an instant; write it as an ISO 8601 date and time with its zone, e.g. 2026-11-23T12:00:00Z, or unset it`,
    );
  const offset = at - Date.now();
  return () => Date.now() + offset;
}
