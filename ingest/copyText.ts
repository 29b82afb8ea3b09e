// PostgreSQL COPY text format, written by hand because it is the hot loop of a million-finding
// ingest: one tab-separated line per row, "\N" for null, backslash escapes for the four characters
// that would break a line. NUL cannot be stored in a text column at all, so it is dropped.

// NUL is matched on purpose: it cannot be stored, so it is dropped.
// eslint-disable-next-line no-control-regex
const SPECIAL = /[\\\t\n\r\u0000]/;
// eslint-disable-next-line no-control-regex
const SPECIAL_ALL = /[\\\t\n\r\u0000]/g;

function escapeChar(c: string): string {
  switch (c) {
    case '\\':
      return '\\\\';
    case '\t':
      return '\\t';
    case '\n':
      return '\\n';
    case '\r':
      return '\\r';
    default:
      return '';
  }
}

/** A text (or number) field; null/undefined → \N. */
export function copyField(value: string | number | boolean | undefined | null): string {
  if (value === undefined || value === null) return '\\N';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '\\N';
  if (typeof value === 'boolean') return value ? 't' : 'f';
  return SPECIAL.test(value) ? value.replace(SPECIAL_ALL, escapeChar) : value;
}

/** A text[] field as an array literal ({"a","b"}), itself escaped for COPY. */
export function copyArray(values: readonly string[] | undefined): string {
  if (values === undefined || values.length === 0) return '\\N';
  const literal = `{${values.map((v) => `"${v.replace(/[\\"]/g, '\\$&')}"`).join(',')}}`;
  return copyField(literal);
}

/** A jsonb field. */
export function copyJson(value: unknown): string {
  if (value === undefined || value === null) return '\\N';
  return copyField(JSON.stringify(value));
}
