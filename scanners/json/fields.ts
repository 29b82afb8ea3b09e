// Typed reads of untrusted, already-parsed JSON: a field of the wrong type reads as absent instead of
// leaking `unknown` into the parsers. Parsers decide what absence means for them.

export type JsonRecord = Readonly<Record<string, unknown>>;

export function asRecord(value: unknown): JsonRecord | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as JsonRecord)
    : undefined;
}

export function asArray(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

/** A non-empty string, trimmed; numbers are accepted and written in decimal (some tools emit ids as numbers). */
export function str(record: JsonRecord | undefined, key: string): string | undefined {
  const value = record?.[key];
  if (typeof value === 'string') {
    const trimmed = value.trim();
    return trimmed === '' ? undefined : trimmed;
  }
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

export function num(record: JsonRecord | undefined, key: string): number | undefined {
  const value = record?.[key];
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)))
    return Number(value);
  return undefined;
}

export function bool(record: JsonRecord | undefined, key: string): boolean | undefined {
  const value = record?.[key];
  return typeof value === 'boolean' ? value : undefined;
}

export function rec(record: JsonRecord | undefined, key: string): JsonRecord | undefined {
  return asRecord(record?.[key]);
}

export function arr(record: JsonRecord | undefined, key: string): readonly unknown[] {
  return asArray(record?.[key]);
}

/** The non-empty strings of an array field. */
export function strings(record: JsonRecord | undefined, key: string): string[] {
  const out: string[] = [];
  for (const item of arr(record, key)) {
    if (typeof item === 'string' && item.trim() !== '') out.push(item.trim());
  }
  return out;
}
