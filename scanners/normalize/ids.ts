// Weakness identifiers found in free text and lists: CVE and CWE ids, normalized and de-duplicated.

const CVE = /CVE-\d{4}-\d{4,}/gi;

/** CVE ids in any text or list ("CVE-2021-1, cve-2021-2"), upper-cased, de-duplicated, in order. */
export function cveIds(...sources: (string | undefined)[]): string[] {
  const out: string[] = [];
  for (const src of sources) {
    if (src === undefined) continue;
    for (const m of src.matchAll(CVE)) {
      const id = m[0].toUpperCase();
      if (!out.includes(id)) out.push(id);
    }
  }
  return out;
}

/** "CWE-79", "CWE:79", "79" → "CWE-79"; undefined when there is no number. */
export function cweId(raw: string): string | undefined {
  const m = /^\s*(?:CWE\s*[-:]?\s*)?(\d{1,5})\s*$/i.exec(raw);
  return m ? `CWE-${Number(m[1])}` : undefined;
}

/** Normalized, de-duplicated CWE ids. */
export function cweIds(raws: Iterable<string>): string[] {
  const out: string[] = [];
  for (const raw of raws) {
    const id = cweId(raw);
    if (id !== undefined && !out.includes(id)) out.push(id);
  }
  return out;
}

/** Whitespace- or comma-separated URLs, de-duplicated. */
export function urls(...sources: (string | undefined)[]): string[] {
  const out: string[] = [];
  for (const src of sources) {
    if (src === undefined) continue;
    for (const m of src.matchAll(/https?:\/\/[^\s,;"'<>]+/g)) if (!out.includes(m[0])) out.push(m[0]);
  }
  return out;
}
