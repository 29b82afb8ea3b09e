// Trivy's CVSS map ({"nvd": {"V3Vector", "V3Score", "V2Vector", …}, "ghsa": {"V40Vector", …}}), shared
// with Trivy Operator reports that carry the same map.

import type { CvssRef } from '../../domain/finding.ts';
import { type JsonRecord, num, rec, str } from '../json/fields.ts';
import { cleanText, cvssVersion } from '../json/normalize.ts';

/** Every score Trivy carries, the one its severity came from first. */
export function trivyCvss(
  cvss: JsonRecord | undefined,
  severitySource: string | undefined,
): CvssRef[] | undefined {
  if (!cvss) return undefined;
  const out: CvssRef[] = [];
  const add = (
    entry: JsonRecord,
    source: string,
    vectorKey: string,
    scoreKey: string,
    fallback: CvssRef['version'],
  ): void => {
    const vector = cleanText(str(entry, vectorKey));
    const score = num(entry, scoreKey);
    if (vector === undefined && score === undefined) return;
    out.push({ version: cvssVersion(vector) ?? fallback, vector, score, source });
  };
  const addSource = (source: string): void => {
    const entry = rec(cvss, source);
    if (!entry) return;
    add(entry, source, 'V40Vector', 'V40Score', '4.0');
    add(entry, source, 'V3Vector', 'V3Score', '3.1');
    add(entry, source, 'V2Vector', 'V2Score', '2.0');
  };
  if (severitySource !== undefined) addSource(severitySource);
  for (const source of Object.keys(cvss)) if (source !== severitySource) addSource(source);
  return out.length > 0 ? out : undefined;
}
