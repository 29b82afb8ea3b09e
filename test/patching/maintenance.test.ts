import { describe, expect, it } from 'vitest';
import { maintenanceWindowAt, msUntilWindowOpens, type MaintenanceWindow } from '../../domain/maintenance.ts';

const at = (iso: string) => new Date(iso);

describe('maintenance windows', () => {
  it('is always open without a window', () => {
    expect(maintenanceWindowAt(undefined, at('2024-06-04T12:00:00Z')).open).toBe(true);
  });

  const weeknights: MaintenanceWindow = {
    days: ['mon', 'tue', 'wed', 'thu', 'fri'],
    start: '22:00',
    end: '04:00',
    timezone: 'Europe/Paris',
  };

  it('opens at the next start in the local time zone (summer time)', () => {
    // Tuesday 4 June 2024, 12:00 UTC = 14:00 in Paris (UTC+2).
    const s = maintenanceWindowAt(weeknights, at('2024-06-04T12:00:00Z'));
    expect(s).toEqual({
      open: false,
      opensAt: at('2024-06-04T20:00:00Z'),
      closesAt: at('2024-06-05T02:00:00Z'),
    });
    expect(msUntilWindowOpens(weeknights, at('2024-06-04T12:00:00Z'))).toBe(8 * 3_600_000);
  });

  it('belongs to its start day when it crosses midnight', () => {
    // Wednesday 02:00 Paris: inside Tuesday's window, which closes at 04:00.
    expect(maintenanceWindowAt(weeknights, at('2024-06-05T00:00:00Z'))).toEqual({
      open: true,
      closesAt: at('2024-06-05T02:00:00Z'),
    });
    // Saturday 02:00 Paris: Friday's window is still open; Saturday has none of its own.
    expect(maintenanceWindowAt(weeknights, at('2024-06-08T00:00:00Z')).open).toBe(true);
    // Saturday 12:00: next opening is Monday 22:00 (winter time in January: UTC+1).
    expect(maintenanceWindowAt(weeknights, at('2024-01-13T11:00:00Z'))).toMatchObject({
      open: false,
      opensAt: at('2024-01-15T21:00:00Z'),
    });
  });

  it('closes exactly at its end and opens exactly at its start', () => {
    const w: MaintenanceWindow = { days: ['sun'], start: '01:00', end: '05:00', timezone: 'UTC' };
    expect(maintenanceWindowAt(w, at('2024-06-02T01:00:00Z')).open).toBe(true);
    expect(maintenanceWindowAt(w, at('2024-06-02T05:00:00Z'))).toMatchObject({
      open: false,
      opensAt: at('2024-06-09T01:00:00Z'),
    });
  });

  it('handles the nights the clocks change', () => {
    // 31 March 2024, Paris: 02:00 does not exist (clocks go to 03:00 CEST).
    const spring: MaintenanceWindow = {
      days: ['sun'],
      start: '02:00',
      end: '05:00',
      timezone: 'Europe/Paris',
    };
    expect(maintenanceWindowAt(spring, at('2024-03-30T12:00:00Z'))).toEqual({
      open: false,
      opensAt: at('2024-03-31T01:00:00Z'), // 03:00 CEST, the first instant past the gap
      closesAt: at('2024-03-31T03:00:00Z'), // 05:00 CEST
    });
    // 27 October 2024, Paris: 02:30 happens twice; the window opens at the first one (CEST).
    const autumn: MaintenanceWindow = {
      days: ['sun'],
      start: '02:30',
      end: '04:00',
      timezone: 'Europe/Paris',
    };
    expect(maintenanceWindowAt(autumn, at('2024-10-26T12:00:00Z'))).toEqual({
      open: false,
      opensAt: at('2024-10-27T00:30:00Z'),
      closesAt: at('2024-10-27T03:00:00Z'), // 04:00 CET, two and a half hours later
    });
  });

  it('treats start == end as the whole day', () => {
    const w: MaintenanceWindow = {
      days: ['wed'],
      start: '00:00',
      end: '00:00',
      timezone: 'America/New_York',
    };
    expect(maintenanceWindowAt(w, at('2024-06-05T15:00:00Z'))).toEqual({
      open: true,
      closesAt: at('2024-06-06T04:00:00Z'),
    });
  });

  it('names the field of a bad window', () => {
    expect(() =>
      maintenanceWindowAt(
        { days: ['mon'], start: '22:00', end: '04:00', timezone: 'Mars/Olympus' },
        new Date(),
      ),
    ).toThrow('maintenanceWindow.timezone: "Mars/Olympus" is not an IANA time zone such as Europe/Paris');
    expect(() => maintenanceWindowAt({ days: ['mon'], start: '25:00', end: '04:00' }, new Date())).toThrow(
      /maintenanceWindow.start/,
    );
  });
});
