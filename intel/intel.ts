// What the intel tables say about one weakness, now or as known on a past date ("what did we know on
// date D"): the validity ranges make that one predicate per table.
import type { Pool } from '../runtime/pool.ts';
import type { PriorityFacts } from '../domain/policy/decide.ts';
import type { Automatable, Exploitation, TechnicalImpact } from '../domain/policy/ssvc.ts';
import { preferredCvss, type CvssMetric } from './cveRecords.ts';

export interface WeaknessIntel {
  kev: {
    dateAdded: string;
    dueDate: string | null;
    knownRansomware: boolean;
    catalogVersion: string | null;
    source: 'kev' | 'cve5' | 'nvd';
  } | null;
  epss: { probability: number; percentile: number; scoreDate: string; modelVersion: string } | null;
  ssvc: {
    exploitation: Exploitation | null;
    automatable: Automatable | null;
    technicalImpact: TechnicalImpact | null;
    assessedAt: string | null;
  } | null;
  cvss: { vector: string; baseScore: number | null; source: string | null } | null;
  record: {
    source: 'cve5' | 'nvd';
    state: string;
    title: string | null;
    description: string | null;
    updatedAt: string;
  } | null;
  /** What scanner reports said (vulnerabilities.reported_*): used only where the feeds say nothing. */
  reported: {
    cvss: CvssMetric | null;
    epss: { probability: number; percentile: number } | null;
    exploitAvailable: boolean | null;
  } | null;
}

/** The best valid vector of a scanner's reported CVSS list ([{version, vector, score, source}]). */
export function reportedCvss(list: unknown): CvssMetric | null {
  if (!Array.isArray(list)) return null;
  const metrics: CvssMetric[] = [];
  for (const item of list) {
    const c = item !== null && typeof item === 'object' ? (item as Record<string, unknown>) : {};
    if (typeof c.vector === 'string' && typeof c.version === 'string')
      metrics.push({
        version: c.version,
        vector: c.vector,
        baseScore: typeof c.score === 'number' ? c.score : null,
        source: `scanner:${typeof c.source === 'string' ? c.source : '?'}`,
      });
  }
  return preferredCvss(metrics) ?? null;
}

const asOf = (alias: string, param: string): string =>
  `${alias}.valid_from <= ${param} and (${alias}.valid_to is null or ${alias}.valid_to > ${param})`;

const isoDay = (d: Date | string | null): string | null =>
  d === null ? null : typeof d === 'string' ? d.slice(0, 10) : d.toISOString().slice(0, 10);

/** Intel about one CVE (or rule id: then everything is null), current or as of `at`. */
export async function weaknessIntel(pool: Pool, key: string, at?: Date): Promise<WeaknessIntel> {
  const when = at ?? new Date('9999-12-31T00:00:00Z');
  const [kev, epss, records, reported] = await Promise.all([
    pool.query<{
      date_added: string;
      due_date: string | null;
      known_ransomware: string | null;
      catalog_version: string | null;
    }>(
      `select to_char(date_added, 'YYYY-MM-DD') as date_added, to_char(due_date, 'YYYY-MM-DD') as due_date, known_ransomware, catalog_version
         from kev_entries k where k.cve = $1 and ${asOf('k', '$2')}`,
      [key, when],
    ),
    pool.query<{ probability: number; percentile: number; valid_from: Date; model_version: string }>(
      `select probability, percentile, valid_from, model_version from epss_scores e where e.cve = $1 and ${asOf('e', '$2')}`,
      [key, when],
    ),
    pool.query<{
      source: 'cve5' | 'nvd';
      state: string;
      title: string | null;
      description: string | null;
      updated_at: Date;
      cvss_vector: string | null;
      cvss_base_score: number | null;
      cvss_source: string | null;
      ssvc_exploitation: Exploitation | null;
      ssvc_automatable: Automatable | null;
      ssvc_technical_impact: TechnicalImpact | null;
      ssvc_assessed_at: Date | null;
      kev_date_added: string | null;
    }>(
      `select source, state, title, description, updated_at, cvss_vector, cvss_base_score, cvss_source, ssvc_exploitation,
              ssvc_automatable, ssvc_technical_impact, ssvc_assessed_at, to_char(kev_date_added, 'YYYY-MM-DD') as kev_date_added
         from cve_records r where r.cve = $1 and ${asOf('r', '$2')}
        order by case source when 'cve5' then 0 else 1 end`,
      [key, when],
    ),
    // Scanner-reported intel has no history: it is what the latest report said.
    pool.query<{
      reported_cvss: unknown;
      reported_epss: number | null;
      reported_epss_percentile: number | null;
      reported_exploit_available: boolean | null;
    }>(
      `select reported_cvss, reported_epss, reported_epss_percentile, reported_exploit_available from vulnerabilities where key = $1`,
      [key],
    ),
  ]);
  const r = reported.rows[0];
  const k = kev.rows[0];
  const e = epss.rows[0];
  const cve5 = records.rows.find((r) => r.source === 'cve5');
  // CVSS: the CVE record's (CNA first) when it has one, else NVD's.
  const withVector = records.rows.find((r) => r.cvss_vector);
  const flagged = records.rows.find((r) => r.kev_date_added);
  const first = records.rows[0];
  return {
    kev: k
      ? {
          dateAdded: k.date_added,
          dueDate: k.due_date,
          knownRansomware: k.known_ransomware === 'Known',
          catalogVersion: k.catalog_version,
          source: 'kev',
        }
      : flagged?.kev_date_added
        ? {
            dateAdded: flagged.kev_date_added,
            dueDate: null,
            knownRansomware: false,
            catalogVersion: null,
            source: flagged.source,
          }
        : null,
    epss: e
      ? {
          probability: e.probability,
          percentile: e.percentile,
          scoreDate: isoDay(e.valid_from)!,
          modelVersion: e.model_version,
        }
      : null,
    ssvc:
      cve5 && (cve5.ssvc_exploitation || cve5.ssvc_automatable || cve5.ssvc_technical_impact)
        ? {
            exploitation: cve5.ssvc_exploitation,
            automatable: cve5.ssvc_automatable,
            technicalImpact: cve5.ssvc_technical_impact,
            assessedAt: cve5.ssvc_assessed_at?.toISOString() ?? null,
          }
        : null,
    cvss: withVector?.cvss_vector
      ? {
          vector: withVector.cvss_vector,
          baseScore: withVector.cvss_base_score,
          source: withVector.cvss_source,
        }
      : null,
    record: first
      ? {
          source: first.source,
          state: first.state,
          title: first.title,
          description: first.description,
          updatedAt: first.updated_at.toISOString(),
        }
      : null,
    reported: r
      ? {
          cvss: reportedCvss(r.reported_cvss),
          epss:
            r.reported_epss !== null && r.reported_epss_percentile !== null
              ? { probability: r.reported_epss, percentile: r.reported_epss_percentile }
              : null,
          exploitAvailable: r.reported_exploit_available,
        }
      : null,
  };
}

/** The weakness part of PriorityFacts: feeds first, scanner reports where the feeds say nothing. */
export function intelFacts(key: string, intel: WeaknessIntel): Omit<PriorityFacts, 'asset' | 'firstSeen'> {
  const cvss =
    intel.cvss ??
    (intel.reported?.cvss
      ? { vector: intel.reported.cvss.vector, source: intel.reported.cvss.source }
      : null);
  const epss = intel.epss ?? intel.reported?.epss ?? null;
  return {
    weakness: key,
    kev: intel.kev
      ? {
          dateAdded: intel.kev.dateAdded,
          dueDate: intel.kev.dueDate,
          knownRansomware: intel.kev.knownRansomware,
        }
      : null,
    epss: epss ? { probability: epss.probability, percentile: epss.percentile } : null,
    ssvc: intel.ssvc,
    cvss: cvss ? { vector: cvss.vector, source: cvss.source } : null,
    exploitAvailable: intel.reported?.exploitAvailable ?? null,
  };
}
