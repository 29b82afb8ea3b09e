// CVSS references as scanners print them: vectors with or without prefix ("CVSS2#AV:N/…",
// "CVSS:3.1/AV:N/…", bare "AV:N/AC:L/Au:N/…"), scores as strings. Anything out of range is dropped
// rather than guessed at (one real Nessus CSV has "75" meaning 7.5 — and "10" could mean 1.0 or 10).

import type { CvssRef } from '../../domain/finding.ts';

/** A CVSS score in 0–10 from a string; undefined otherwise. */
export function cvssScore(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const s = raw.trim();
  if (!/^\d{1,2}(\.\d+)?$/.test(s)) return undefined;
  const n = Number(s);
  return n >= 0 && n <= 10 ? n : undefined;
}

/** A probability in 0–1 (EPSS); undefined otherwise. */
export function probability(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const s = raw.trim();
  if (!/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(s)) return undefined;
  return Number(s);
}

/**
 * A CvssRef from a vector and/or score. The version comes from the vector prefix; `fallback` is the
 * version the report's field implies when the vector carries none (e.g. Nessus `cvss_vector` is v2).
 */
export function cvssRef(
  vector: string | undefined,
  score: number | undefined,
  fallback: CvssRef['version'] | undefined,
  source?: string,
): CvssRef | undefined {
  let v = vector?.trim();
  let version = fallback;
  if (v !== undefined && v !== '') {
    const m = /^CVSS:(3\.0|3\.1|4\.0)\//.exec(v);
    if (m) {
      version = m[1] as CvssRef['version'];
    } else if (v.startsWith('CVSS2#')) {
      v = v.slice('CVSS2#'.length);
      version = '2.0';
    } else if (/^\(?AV:[LANP]\/AC:[LMH]\/Au:[MSN]\//.test(v)) {
      v = v.replace(/^\((.*)\)$/, '$1');
      version = '2.0';
    } else if (/^AV:[NALP]\/AC:[LH]\/PR:/.test(v) && (version === '3.0' || version === '3.1')) {
      // A bare v3 vector: prefix it so consumers can tell it from v2.
      v = `CVSS:${version}/${v}`;
    } else if (!/^CVSS:/.test(v) && version === undefined) {
      v = undefined;
    }
  } else {
    v = undefined;
  }
  if (version === undefined || (v === undefined && score === undefined)) return undefined;
  const ref: CvssRef = { version };
  if (v !== undefined) ref.vector = v;
  if (score !== undefined) ref.score = score;
  if (source !== undefined) ref.source = source;
  return ref;
}

/** Qualys style "9.3 (AV:N/AC:M/Au:N/C:C/I:C/A:C)", or just "9.3"; "-" and garbage give undefined. */
export function cvssFromScoreAndVector(
  raw: string | undefined,
  version: CvssRef['version'],
): CvssRef | undefined {
  if (raw === undefined) return undefined;
  const m = /^\s*([\d.]+)\s*(?:\(([^)]*)\))?\s*$/.exec(raw);
  if (!m) return undefined;
  return cvssRef(m[2], cvssScore(m[1]), version);
}
