// Size bounds for free text copied from reports into findings. A plugin output can be megabytes; a
// Finding travels as one NDJSON line and lands in a database row, so every text field is capped.

export const EVIDENCE_MAX_CHARS = 16 * 1024;
export const DESCRIPTION_MAX_CHARS = 32 * 1024;
export const TITLE_MAX_CHARS = 1024;

const MARK = '\n…[truncated]';

/** Trimmed text, cut to `max` characters with a visible marker; undefined when empty. */
export function bounded(raw: string | undefined, max: number): string | undefined {
  if (raw === undefined) return undefined;
  const s = raw.trim();
  if (s === '') return undefined;
  if (s.length <= max) return s;
  let cut = max - MARK.length;
  // Do not split a surrogate pair.
  const code = s.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut--;
  return s.slice(0, cut) + MARK;
}

/** Text with "n/a"-style placeholders treated as absent. */
export function meaningful(raw: string | undefined): string | undefined {
  const s = raw?.trim();
  if (s === undefined || s === '') return undefined;
  // Placeholders are at most four characters; skip the regex for real text (this runs per finding).
  return s.length <= 4 && /^(n\/a|na|none|-|null)$/i.test(s) ? undefined : s;
}

const HTML_ENTITIES: Readonly<Record<string, string>> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
};

/**
 * Qualys knowledge-base text is HTML inside CDATA ("…<P>", "<A HREF=…>"). Reduce it to plain text:
 * paragraph and line breaks become newlines, other tags go, common entities are decoded.
 */
export function htmlToText(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const text = raw
    .replace(/<\s*(br|p|\/p|li|dt|dd|tr|\/tr|div|\/div)\b[^>]*>/gi, '\n')
    .replace(/<[^>]{0,2000}>/g, '')
    .replace(/&(#\d{1,7}|#x[0-9a-f]{1,6}|[a-z]{2,6});/gi, (m, e: string) => {
      if (e.startsWith('#x') || e.startsWith('#X')) return safeCodePoint(parseInt(e.slice(2), 16)) ?? m;
      if (e.startsWith('#')) return safeCodePoint(Number(e.slice(1))) ?? m;
      return HTML_ENTITIES[e.toLowerCase()] ?? m;
    })
    .replace(/[ \t]+\n/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
  return text === '' ? undefined : text;
}

function safeCodePoint(n: number): string | undefined {
  return Number.isInteger(n) && n > 0 && n <= 0x10ffff && (n < 0xd800 || n > 0xdfff)
    ? String.fromCodePoint(n)
    : undefined;
}
