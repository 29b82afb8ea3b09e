// Report timestamps → ISO-8601. Only unambiguous inputs are converted: epoch seconds and date-times
// that carry a zone. "Tue Jun 25 10:32:42 2013" (Nessus HOST_START) has no zone, so it is not guessed.

/** Epoch seconds (string or number) → ISO; undefined when not a plausible epoch. */
export function isoFromEpochSeconds(raw: string | number | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const n = typeof raw === 'number' ? raw : /^\d{9,11}$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!Number.isFinite(n) || n <= 0) return undefined;
  return new Date(n * 1000).toISOString();
}

/** An ISO-8601 date-time with a zone ("Z" or "+02:00") → normalized ISO (UTC); undefined otherwise. */
export function isoFromZoned(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const s = raw.trim();
  if (!/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(s)) return undefined;
  const t = Date.parse(s.replace(' ', 'T'));
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}
