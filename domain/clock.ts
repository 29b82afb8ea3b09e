/**
 * What time it is, in milliseconds since the epoch. Code that judges time (SLA status, "overdue",
 * digests, metrics, expiry, maintenance windows) takes one instead of reading the wall clock, so a
 * test (or a reproducible report) passes its own. runtime/clock.ts has the system clock.
 */
export type Clock = () => number;
