// Triage at fan-out time: the priority and SLA deadline of a batch of exposures, from one query over
// the exposures, their assets and the current intel (feeds, else what the scanner reported), judged
// by the scope's policy (domain/policy, pure). The deadline is capped by the scope's lifecycle `sla`
// windows: a scope may be stricter than its policy, never looser.
import type { Config } from '../domain/config.ts';
import type { Requirement } from '../domain/cvss.ts';
import { decidePriority, type PriorityFacts } from '../domain/policy/decide.ts';
import type {
  Automatable,
  Criticality,
  Exploitation,
  Outcome,
  TechnicalImpact,
} from '../domain/policy/ssvc.ts';
import type { Pool, PoolClient } from '../runtime/pool.ts';
import { PolicyCatalog } from '../intel/policyFiles.ts';
import { NO_SCOPE, scopeContext } from '../intel/scopeContext.ts';
import type { SlaOverride } from './settings.ts';
import { slaOverrideFor } from './settings.ts';

export interface TriageResult {
  exposureId: string;
  assetId: number;
  weaknessKey: string;
  scope: string;
  /** When the scanner first saw it (shown). */
  firstSeen: string;
  /** When its SLA clock starts: ctem learned of it, or the end of the scope's onboarding grace. */
  slaStart: string;
  /** "act", "attend", "track*", "track" (exposures.priority). */
  outcome: Outcome;
  /** "Act", "Attend", "Track*", "Track". */
  priority: string;
  slaDue: string;
  reasons: string[];
  summary: string;
  policyVersion: string;
  policyHash: string;
  state: string;
  /** Contextual CVSS score, null without a usable vector. */
  contextualCvss: number | null;
  /** In CISA KEV (current catalog or the CVE records' KEV date). */
  kev: boolean;
}

interface FactsRow {
  id: string;
  asset_id: number;
  vuln_key: string;
  scope: string | null;
  first_seen: Date;
  learned_at: Date;
  sla_start: Date | null;
  state: string;
  criticality: Criticality;
  kev_date: string | null;
  kev_due: string | null;
  known_ransomware: string | null;
  probability: number | null;
  percentile: number | null;
  ssvc_exploitation: Exploitation | null;
  ssvc_automatable: Automatable | null;
  ssvc_technical_impact: TechnicalImpact | null;
  cvss_vector: string | null;
  reported_cvss: { version?: string; vector?: string }[] | null;
  reported_epss: number | null;
  reported_epss_percentile: number | null;
}

const factsSql = `
  select e.id, e.asset_id, e.vuln_key, e.scope, e.first_seen, e.learned_at, e.sla_start, e.state, a.criticality,
         to_char(coalesce(k.date_added, c5.kev_date_added, nv.kev_date_added), 'YYYY-MM-DD') as kev_date,
         to_char(k.due_date, 'YYYY-MM-DD') as kev_due, k.known_ransomware,
         ep.probability, ep.percentile,
         c5.ssvc_exploitation, c5.ssvc_automatable, c5.ssvc_technical_impact,
         coalesce(c5.cvss_vector, nv.cvss_vector) as cvss_vector,
         v.reported_cvss, v.reported_epss, v.reported_epss_percentile
    from exposures e
    join assets a on a.id = e.asset_id
    left join kev_entries k on k.cve = e.vuln_key and k.valid_to is null
    left join epss_scores ep on ep.cve = e.vuln_key and ep.valid_to is null
    left join cve_records c5 on c5.source = 'cve5' and c5.cve = e.vuln_key and c5.valid_to is null
    left join cve_records nv on nv.source = 'nvd' and nv.cve = e.vuln_key and nv.valid_to is null
    left join vulnerabilities v on v.key = e.vuln_key
   where e.id = any($1::text[])`;

/** The scanner's own vector when no feed has one: v4.0 over v3.1 over v3.0 (v2 is not scored). */
function reportedVector(reported: FactsRow['reported_cvss']): string | null {
  if (!Array.isArray(reported)) return null;
  for (const version of ['4.0', '3.1', '3.0']) {
    const hit = reported.find(
      (c) => c.version === version && typeof c.vector === 'string' && c.vector.startsWith('CVSS:'),
    );
    if (hit?.vector) return hit.vector;
  }
  return null;
}

const LABEL: Record<Outcome, string> = { act: 'Act', attend: 'Attend', 'track*': 'Track*', track: 'Track' };

export function outcomeLabel(outcome: string): string {
  return LABEL[outcome as Outcome] ?? outcome;
}

export function outcomeOfLabel(label: string): Outcome | undefined {
  return (Object.keys(LABEL) as Outcome[]).find((o) => LABEL[o] === label);
}

/** Apply a scope's stricter SLA window, if it has one for this outcome. */
export function cappedDue(
  dueIso: string,
  firstSeenIso: string,
  outcome: Outcome,
  cap: SlaOverride,
): { due: string; capped: boolean } {
  const window = cap[outcome];
  if (window === undefined) return { due: dueIso, capped: false };
  const capMs = Date.parse(firstSeenIso) + window;
  return capMs < Date.parse(dueIso)
    ? { due: new Date(capMs).toISOString(), capped: true }
    : { due: dueIso, capped: false };
}

export class Triage {
  private readonly catalog: PolicyCatalog;

  constructor(
    private readonly config: Config,
    baseDir: string,
  ) {
    this.catalog = PolicyCatalog.fromConfig(config, baseDir);
  }

  /**
   * Judge a batch of exposures; one query, then the pure policy per exposure. Each SLA clock starts
   * at `slaStart` when given (a new lifecycle), else where the exposure's current one started.
   */
  async triage(
    db: Pool | PoolClient,
    exposureIds: string[],
    now = new Date(),
    slaStart?: Map<string, { at: Date; because: string }>,
  ): Promise<TriageResult[]> {
    if (exposureIds.length === 0) return [];
    const { rows } = await db.query<FactsRow>(factsSql, [exposureIds]);
    return rows.map((r) =>
      this.judge(
        r,
        now,
        slaStart?.get(r.id) ?? { at: r.sla_start ?? r.learned_at, because: 'ctem learned of it' },
      ),
    );
  }

  private judge(r: FactsRow, now: Date, start: { at: Date; because: string }): TriageResult {
    const scopeName = r.scope ?? 'unscoped';
    const scope = this.config.scopes.find((s) => s.name === r.scope);
    const ctx = scope ? scopeContext(scope) : NO_SCOPE;
    const policy = this.catalog.get(ctx.policy);
    const vector = r.cvss_vector ?? reportedVector(r.reported_cvss);
    const epss =
      r.probability !== null && r.percentile !== null
        ? { probability: r.probability, percentile: r.percentile }
        : r.reported_epss !== null
          ? { probability: r.reported_epss, percentile: r.reported_epss_percentile ?? 0 }
          : null;
    const firstSeen = r.first_seen.toISOString();
    const slaStart = start.at.toISOString();
    const facts: PriorityFacts = {
      weakness: r.vuln_key,
      kev: r.kev_date
        ? { dateAdded: r.kev_date, dueDate: r.kev_due, knownRansomware: r.known_ransomware === 'Known' }
        : null,
      epss,
      ssvc:
        r.ssvc_exploitation || r.ssvc_automatable || r.ssvc_technical_impact
          ? {
              exploitation: r.ssvc_exploitation,
              automatable: r.ssvc_automatable,
              technicalImpact: r.ssvc_technical_impact,
            }
          : null,
      cvss: vector ? { vector } : null,
      asset: {
        criticality: r.criticality,
        reachability: ctx.reachability,
        requirements: ctx.requirements as { cr: Requirement; ir: Requirement; ar: Requirement },
      },
      firstSeen: slaStart,
      clockStartedAt: start.because,
    };
    const d = decidePriority(policy, facts, now);
    const { due, capped } = cappedDue(d.dueAt, slaStart, d.outcome, slaOverrideFor(this.config, scopeName));
    const reasons = capped
      ? [...d.reasons, `Scope ${scopeName} caps ${d.label} at a shorter window: due ${due}.`]
      : d.reasons;
    return {
      exposureId: r.id,
      assetId: r.asset_id,
      weaknessKey: r.vuln_key,
      scope: scopeName,
      firstSeen,
      slaStart,
      outcome: d.outcome,
      priority: d.label,
      slaDue: due,
      reasons,
      summary: d.summary,
      policyVersion: d.policy.version,
      policyHash: d.policy.hash,
      state: r.state,
      contextualCvss: d.cvss?.score ?? null,
      kev: facts.kev !== null && facts.kev !== undefined,
    };
  }
}
