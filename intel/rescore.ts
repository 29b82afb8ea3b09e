// Re-scoring after a feed load or a policy change: find, in SQL, exactly the exposures whose decision
// or deadline changes, and hand those (and only those) on.
//
// The policy runs in TypeScript (domain/policy) but is applied set-based: per policy in use,
//   1. its decision table (every combination of discrete decision points → outcome and deadline
//      offsets, produced by the policy's own `judge`, see decisionTable.ts),
//   2. its weakness-level points for every CVE that open exposures reference (exploitation,
//      automatable, technical impact, KEV date — computed from current intel with `intelPoints`),
//   3. the contextual CVSS bucket of each (vector, exploitation, scope profile) that occurs,
// go into temporary tables; one join over exposures × assets × those tables gives every exposure's
// outcome and deadline, and `is distinct from` against the stored ones gives the changes.
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { to as copyTo } from 'pg-copy-streams';
import type { Pool, PoolClient } from '../runtime/pool.ts';
import { compileDecisionTable, cvssBucket, type DecisionTable } from '../domain/policy/decisionTable.ts';
import {
  contextualScoreFor,
  epssEvidence,
  intelPoints,
  type IntelPoints,
  type PriorityFacts,
} from '../domain/policy/decide.ts';
import type { Policy } from '../domain/policy/schema.ts';
import {
  AUTOMATABLE,
  CRITICALITY,
  EXPLOITATION,
  SYSTEM_EXPOSURE,
  TECHNICAL_IMPACT,
  type Automatable,
  type Exploitation,
  type TechnicalImpact,
} from '../domain/policy/ssvc.ts';
import { copyRows, type CopyValue } from './copy.ts';
import { reportedCvss } from './intel.ts';
import { NO_SCOPE, profileKey, scopeContext, type ScopeContext } from './scopeContext.ts';

/** States in which an exposure no longer needs a priority. */
export const SETTLED_STATES = ['resolved', 'false-positive'] as const;
const OPEN = `state not in (${SETTLED_STATES.map((s) => `'${s}'`).join(', ')})`;

export interface RescoredExposure {
  id: string;
  assetId: number;
  vulnKey: string;
  previous: { outcome: string | null; dueAt: string | null; policyVersion: string | null };
  next: { outcome: string; dueAt: string; policyVersion: string; policyHash: string };
}

export interface RescoreOptions {
  /** Resolves a scope's policy name (PolicyCatalog.get). */
  policy: (name: string) => Policy;
  /**
   * Scopes as ctem.yaml gives them, by name: they take precedence over the scopes table (which ingest
   * writes), so the re-score judges exactly as triage does.
   */
  scopes?: Record<string, unknown>;
  /** A scope's stricter SLA windows per outcome, in ms from first seen (lifecycle.sla in ctem.yaml). */
  slaCap?: (scope: string) => Partial<Record<'act' | 'attend' | 'track*' | 'track', number>>;
  /**
   * Write the new decisions to exposures (priority, policy_due, policy_version/hash, decided_at; and
   * sla_due where no lifecycle owns the row). Only once they have been handed on: a decision
   * written but not told would never be found again.
   */
  apply?: boolean;
  /** decided_at for applied rows. */
  now?: Date;
  /** Receive the changed exposures in batches (ordered by id) instead of one array. */
  onBatch?: (rows: RescoredExposure[]) => Promise<void>;
  batchSize?: number;
}

export interface RescoreResult {
  /** Open exposures examined. */
  examined: number;
  /** Exposures whose decision or deadline changed. */
  changed: number;
  /** Exposures only re-stamped with a new policy version (same decision and deadline). */
  restamped: number;
  /** The changed exposures, when no onBatch was given. */
  rows?: RescoredExposure[];
  phasesMs: Record<string, number>;
}

interface CveIntelRow {
  cve: string;
  kevDate: string | null;
  probability: number | null;
  percentile: number | null;
  exploitation: string | null;
  automatable: string | null;
  technicalImpact: string | null;
  vector: string | null;
  reportedCvss: string | null;
  exploitAvailable: boolean | null;
}

function unescapeCopy(field: string): string | null {
  if (field === '\\N') return null;
  return field.includes('\\')
    ? field.replace(/\\(.)/g, (_, c: string) => ({ t: '\t', n: '\n', r: '\r' })[c] ?? c)
    : field;
}

/** Current intel of every weakness an open exposure references, streamed out with COPY. */
async function readCveIntel(client: PoolClient): Promise<CveIntelRow[]> {
  const sql = `copy (
    select v.cve, coalesce(k.date_added, c5.kev_date_added, nv.kev_date_added), ep.probability, ep.percentile,
           c5.ssvc_exploitation, c5.ssvc_automatable, c5.ssvc_technical_impact, coalesce(c5.cvss_vector, nv.cvss_vector),
           vr.reported_cvss, vr.reported_epss, vr.reported_epss_percentile, vr.reported_exploit_available
      from (select distinct vuln_key as cve from exposures where ${OPEN}) v
      left join kev_entries k on k.cve = v.cve and k.valid_to is null
      left join epss_scores ep on ep.cve = v.cve and ep.valid_to is null
      left join cve_records c5 on c5.source = 'cve5' and c5.cve = v.cve and c5.valid_to is null
      left join cve_records nv on nv.source = 'nvd' and nv.cve = v.cve and nv.valid_to is null
      left join vulnerabilities vr on vr.key = v.cve
     where k.cve is not null or ep.cve is not null or c5.cve is not null or nv.cve is not null or vr.key is not null
  ) to stdout`;
  const rows: CveIntelRow[] = [];
  let rest = '';
  const decoder = new TextDecoder();
  const parseLine = (line: string): void => {
    const f = line.split('\t').map(unescapeCopy);
    const num = (v: string | null | undefined): number | null =>
      v === null || v === undefined ? null : Number(v);
    // Feeds first; a scanner's reported EPSS only where the EPSS feed has no score.
    const fed = f[2] !== null && f[2] !== undefined;
    rows.push({
      cve: f[0]!,
      kevDate: f[1] ?? null,
      probability: fed ? num(f[2]) : num(f[9]),
      percentile: fed ? num(f[3]) : num(f[10]),
      exploitation: f[4] ?? null,
      automatable: f[5] ?? null,
      technicalImpact: f[6] ?? null,
      vector: f[7] ?? null,
      reportedCvss: f[8] ?? null,
      exploitAvailable: f[11] === 't' ? true : f[11] === 'f' ? false : null,
    });
  };
  await pipeline(
    client.query(copyTo(sql)),
    new Writable({
      write(chunk: Buffer, _enc, done) {
        const text = rest + decoder.decode(chunk, { stream: true });
        const lines = text.split('\n');
        rest = lines.pop() ?? '';
        for (const l of lines) parseLine(l);
        done();
      },
      final(done) {
        if (rest) parseLine(rest);
        done();
      },
    }),
  );
  return rows;
}

const ms = (start: number): number => Math.round(performance.now() - start);

/**
 * The weakness-level points as one number 0..23: exploitation × automatable × technical impact × KEV.
 * Exploitation is code / 8 (the rescore_cvss join relies on that).
 */
function pointsCode(e: Exploitation, a: Automatable, t: TechnicalImpact, kev: boolean): number {
  return (
    ((EXPLOITATION.indexOf(e) * 2 + AUTOMATABLE.indexOf(a)) * 2 + TECHNICAL_IMPACT.indexOf(t)) * 2 +
    (kev ? 1 : 0)
  );
}

/** Reported vectors are parsed once per distinct JSON text: many exposures share a weakness's report. */
const reportedCache = new Map<string, { vector: string } | null>();
function reported(json: string | null): { vector: string } | null {
  if (!json) return null;
  let hit = reportedCache.get(json);
  if (hit === undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch {
      parsed = undefined;
    }
    const best = reportedCvss(parsed);
    hit = best ? { vector: best.vector } : null;
    if (reportedCache.size < 100_000) reportedCache.set(json, hit);
  }
  return hit;
}

/**
 * The policies in use, numbered as the temporary tables key them: by policy index, scope and
 * exposure profile.
 */
interface PolicySet {
  /** Every scope by name; '' is the row for exposures outside any known scope. */
  contexts: Map<string, ScopeContext>;
  /** By policy name. */
  policies: Map<string, Policy>;
  /** By profileKey. */
  profiles: Map<string, ScopeContext>;
  profileIds: Map<string, number>;
  policyList: Policy[];
  /** Policy hash → index in policyList. */
  policyIndex: Map<string, number>;
  /** Each policy's decision table, by index in policyList. */
  tables: DecisionTable[];
  /** CVSS buckets in a decision key: as many as the policy with the most thresholds needs. */
  buckets: number;
}

/** Scopes → policy, exposure profile. '' is the row for exposures outside any known scope. */
async function readPolicySet(client: PoolClient, opts: RescoreOptions): Promise<PolicySet> {
  const scopes = await client.query<{ name: string; config: unknown }>('select name, config from scopes');
  const contexts = new Map<string, ScopeContext>([
    ['', NO_SCOPE],
    ...scopes.rows.map((s) => [s.name, scopeContext(s.config)] as const),
    ...Object.entries(opts.scopes ?? {}).map(([name, c]) => [name, scopeContext(c)] as const),
  ]);
  const policies = new Map<string, Policy>();
  for (const c of contexts.values())
    if (!policies.has(c.policy)) policies.set(c.policy, opts.policy(c.policy));
  const profiles = new Map<string, ScopeContext>();
  for (const c of contexts.values()) profiles.set(profileKey(c), c);
  const profileIds = new Map([...profiles.keys()].map((k, i) => [k, i]));

  const policyList = [...policies.values()];
  const policyIndex = new Map(policyList.map((p, i) => [p.hash, i]));
  const tables = policyList.map((p) => compileDecisionTable(p));
  const buckets = Math.max(...tables.map((t) => t.cvssThresholds.length + 2));
  return { contexts, policies, profiles, profileIds, policyList, policyIndex, tables, buckets };
}

/**
 * Every decision input becomes a small integer and the decision table is keyed by one int8
 * composed of them: one cheap hash join for a million exposures, and one the planner can only
 * make once every table contributing to the key is joined (with the key's parts as separate
 * equalities it joins the small decision table early on a partial key and multiplies the rows).
 * The diff's join (diffDecisions) composes the same key in SQL.
 */
function decisionKey(
  buckets: number,
  pi: number,
  code: number,
  exposure: number,
  criticality: number,
  bucket: number,
): number {
  return (((pi * 24 + code) * 3 + exposure) * 4 + criticality) * buckets + bucket + 1;
}

const RESCORE_TABLES = [
  'rescore_policy',
  'rescore_scope',
  'rescore_decision',
  'rescore_cve',
  'rescore_cvss',
] as const;

async function createRescoreTables(client: PoolClient): Promise<void> {
  await client.query(`create temp table rescore_policy (id int primary key, hash text not null, version text not null,
      default_code int not null) on commit drop`);
  await client.query(`create temp table rescore_scope (scope text primary key, policy_id int not null, exposure int not null,
      profile int not null, cap_act int8, cap_attend int8, cap_track_star int8, cap_track int8) on commit drop`);
  await client.query(`create temp table rescore_decision (key int8 primary key, outcome text not null, days_first int not null,
      days_kev int) on commit drop`);
  await client.query(`create temp table rescore_cve (policy_id int, cve text, code int not null, kev_date date, vector_id int,
      primary key (policy_id, cve)) on commit drop`);
  await client.query(`create temp table rescore_cvss (policy_id int, vector_id int, exploitation int, profile int, bucket int,
      primary key (policy_id, vector_id, exploitation, profile)) on commit drop`);
}

/** The policies, their decision tables and the scopes (with their SLA caps) into rescore_*. */
async function copyPolicyTables(client: PoolClient, set: PolicySet, opts: RescoreOptions): Promise<void> {
  const { contexts, policies, profileIds, policyList, policyIndex, tables, buckets } = set;
  const policyRows: CopyValue[][] = [];
  const decisionRows: CopyValue[][] = [];
  policyList.forEach((p, pi) => {
    const none = intelPoints(p, { weakness: '' });
    policyRows.push([
      pi,
      p.hash,
      p.version,
      pointsCode(none.exploitation.value, none.automatable.value, none.technicalImpact.value, false),
    ]);
    for (const r of tables[pi]!.rows)
      decisionRows.push([
        decisionKey(
          buckets,
          pi,
          pointsCode(r.exploitation, r.automatable, r.technicalImpact, r.kev),
          SYSTEM_EXPOSURE.indexOf(r.exposure),
          CRITICALITY.indexOf(r.criticality),
          r.cvssBucket,
        ),
        r.outcome,
        r.daysFromFirstSeen,
        r.daysFromKev,
      ]);
  });
  await copyRows(client, 'rescore_policy', ['id', 'hash', 'version', 'default_code'], policyRows);
  await copyRows(client, 'rescore_decision', ['key', 'outcome', 'days_first', 'days_kev'], decisionRows);
  await copyRows(
    client,
    'rescore_scope',
    ['scope', 'policy_id', 'exposure', 'profile', 'cap_act', 'cap_attend', 'cap_track_star', 'cap_track'],
    [...contexts].map(([name, c]) => {
      const p = policies.get(c.policy)!;
      const cap = name === '' ? {} : (opts.slaCap?.(name) ?? {});
      return [
        name,
        policyIndex.get(p.hash)!,
        SYSTEM_EXPOSURE.indexOf(p.exposure[c.reachability]),
        profileIds.get(profileKey(c))!,
        cap.act ?? null,
        cap.attend ?? null,
        cap['track*'] ?? null,
        cap.track ?? null,
      ];
    }),
  );
}

/** A (policy, CVSS vector, exploitation) combination that occurs: its contextual buckets are needed. */
interface VectorUse {
  policy: Policy;
  pi: number;
  vector: string;
  vectorId: number;
  exploitation: Exploitation;
}

/**
 * Weakness-level points per policy and CVE into rescore_cve; returns the vector combinations that
 * occurred, keyed by policy index, vector id and exploitation.
 */
async function copyCvePoints(
  client: PoolClient,
  policyList: Policy[],
  intel: CveIntelRow[],
): Promise<Map<string, VectorUse>> {
  const vectorIds = new Map<string, number>();
  const pairs = new Map<string, VectorUse>();
  const pointsMemo = new Map<string, IntelPoints>();
  function* cveRows(): Generator<CopyValue[]> {
    for (const [pi, p] of policyList.entries())
      for (const r of intel) {
        const facts: Omit<PriorityFacts, 'asset' | 'firstSeen'> = {
          weakness: r.cve,
          kev: r.kevDate ? { dateAdded: r.kevDate } : null,
          epss:
            r.probability !== null && r.percentile !== null
              ? { probability: r.probability, percentile: r.percentile }
              : null,
          ssvc: {
            exploitation: r.exploitation as Exploitation | null,
            automatable: r.automatable as 'yes' | 'no' | null,
            technicalImpact: r.technicalImpact as 'partial' | 'total' | null,
          },
          cvss: r.vector ? { vector: r.vector } : reported(r.reportedCvss),
          exploitAvailable: r.exploitAvailable,
        };
        // intelPoints depends only on these discrete inputs (not on the exact EPSS numbers), so
        // 300k CVEs collapse into a few thousand evaluations.
        const memoKey = [
          pi,
          r.kevDate ? 'k' : '',
          epssEvidence(p, facts.epss) ?? '',
          r.exploitation ?? '',
          r.automatable ?? '',
          r.technicalImpact ?? '',
          r.exploitAvailable ? 'x' : '',
          facts.cvss?.vector ?? '',
        ].join('|');
        let points = pointsMemo.get(memoKey);
        if (!points) {
          points = intelPoints(p, facts);
          pointsMemo.set(memoKey, points);
        }
        let vectorId: number | null = null;
        const vector = facts.cvss?.vector;
        if (vector && !points.cvssProblem) {
          vectorId = vectorIds.get(vector) ?? vectorIds.size;
          vectorIds.set(vector, vectorId);
          const key = `${pi}|${vectorId}|${points.exploitation.value}`;
          if (!pairs.has(key))
            pairs.set(key, { policy: p, pi, vector, vectorId, exploitation: points.exploitation.value });
        }
        yield [
          pi,
          r.cve,
          pointsCode(
            points.exploitation.value,
            points.automatable.value,
            points.technicalImpact.value,
            points.kev,
          ),
          r.kevDate,
          vectorId,
        ];
      }
  }
  await copyRows(client, 'rescore_cve', ['policy_id', 'cve', 'code', 'kev_date', 'vector_id'], cveRows());
  return pairs;
}

/** Contextual CVSS buckets, only for the (vector, exploitation) pairs that occur, per profile. */
async function copyCvssBuckets(
  client: PoolClient,
  set: PolicySet,
  pairs: Map<string, VectorUse>,
): Promise<void> {
  const bucketRows: CopyValue[][] = [];
  for (const pair of pairs.values()) {
    const th = set.tables[pair.pi]!.cvssThresholds;
    for (const [key, profile] of set.profiles) {
      const bucket =
        th.length === 0
          ? 0
          : cvssBucket(th, contextualScoreFor(pair.policy, pair.vector, pair.exploitation, profile).score);
      bucketRows.push([
        pair.pi,
        pair.vectorId,
        EXPLOITATION.indexOf(pair.exploitation),
        set.profileIds.get(key)!,
        bucket,
      ]);
    }
  }
  await copyRows(
    client,
    'rescore_cvss',
    ['policy_id', 'vector_id', 'exploitation', 'profile', 'bucket'],
    bucketRows,
  );
}

/**
 * Every open exposure's decision into rescore_result, keeping those whose decision, deadline or
 * policy differs. Returns the open exposures examined and how many of those kept changed.
 */
async function diffDecisions(
  client: PoolClient,
  buckets: number,
): Promise<{ examined: number; changed: number; restamped: number }> {
  const examined = await client.query<{ n: number }>(
    `select count(*)::int as n from exposures where ${OPEN}`,
  );
  await client.query(`create temp table rescore_result on commit drop as
      with decided as (
        select e.id, e.asset_id, e.vuln_key, e.priority as old_outcome,
               -- The deadline last decided, before pauses moved it (see 010_rescore.sql).
               coalesce(e.policy_due, e.sla_due) as old_due,
               e.policy_version as old_version, e.policy_hash as old_hash, p.hash as policy_hash, p.version, d.outcome,
               -- least() skips nulls: no KEV date, no scope cap.
               -- The SLA clock starts where the lifecycle's started (sla_start), else when ctem learned of it.
               least(coalesce(e.sla_start, e.learned_at) + d.days_first * interval '1 day',
                     greatest(coalesce(e.sla_start, e.learned_at), (c.kev_date::timestamp at time zone 'UTC')) + d.days_kev * interval '1 day',
                     coalesce(e.sla_start, e.learned_at) + case d.outcome when 'act' then s.cap_act when 'attend' then s.cap_attend
                                                   when 'track*' then s.cap_track_star else s.cap_track end
                                    * interval '1 millisecond') as due
          from exposures e
          join assets a on a.id = e.asset_id
          -- The exposure's scope, or '' (no scope, or one ctem.yaml no longer defines).
          left join rescore_scope s1 on s1.scope = coalesce(e.scope, a.scope)
          join rescore_scope s on s.scope = coalesce(s1.scope, '')
          join rescore_policy p on p.id = s.policy_id
          left join rescore_cve c on c.policy_id = s.policy_id and c.cve = e.vuln_key
          left join rescore_cvss b on b.policy_id = s.policy_id and b.vector_id = c.vector_id and b.exploitation = c.code / 8
                                   and b.profile = s.profile
          join rescore_decision d
            on d.key = ((((s.policy_id * 24 + coalesce(c.code, p.default_code)) * 3 + s.exposure) * 4
                        + case a.criticality when 'low' then 0 when 'medium' then 1 when 'high' then 2 else 3 end)::int8 * ${buckets}
                        + coalesce(b.bucket, -1) + 1)
         where e.${OPEN}
      )
      select id, asset_id, vuln_key, old_outcome, old_due, old_version, outcome, due, version, policy_hash,
             (old_outcome is distinct from outcome or old_due is distinct from due) as changed
        from decided
       where old_outcome is distinct from outcome or old_due is distinct from due or old_hash is distinct from policy_hash`);
  const counts = await client.query<{ changed: number; restamped: number }>(
    `select count(*) filter (where changed)::int as changed, count(*) filter (where not changed)::int as restamped from rescore_result`,
  );
  return {
    examined: examined.rows[0]!.n,
    changed: counts.rows[0]!.changed,
    restamped: counts.rows[0]!.restamped,
  };
}

/**
 * "2026-11-08 00:00:00+00" or "2026-11-08 00:00:00.5+00" (UTC, ISO style) → toISOString's form,
 * by string: a million Date round trips would cost a second.
 */
function isoFromCopy(t: string): string {
  const zone = t.lastIndexOf('+');
  const fraction = t.slice(19, zone);
  return `${t.slice(0, 10)}T${t.slice(11, 19)}.${(fraction.slice(1) + '000').slice(0, 3)}Z`;
}

/** One rescore_result line as the hand-off's COPY writes it. */
function rescoredFromCopy(line: string): RescoredExposure {
  const f = line.split('\t').map(unescapeCopy);
  return {
    id: f[0]!,
    assetId: Number(f[1]),
    vulnKey: f[2]!,
    previous: {
      outcome: f[3] ?? null,
      dueAt: f[4] ? isoFromCopy(f[4]) : null,
      policyVersion: f[5] ?? null,
    },
    next: { outcome: f[6]!, dueAt: isoFromCopy(f[7]!), policyVersion: f[8]!, policyHash: f[9]! },
  };
}

/**
 * The changed exposures, in batches to opts.onBatch; without one, collected and returned.
 * Streamed out with COPY (text, timestamps in UTC ISO form): for a million changes it is several
 * times cheaper than a cursor's row-by-row protocol. Each batch is handed on before more is read.
 */
async function handOffChanges(client: PoolClient, opts: RescoreOptions): Promise<RescoredExposure[]> {
  const batchSize = opts.batchSize ?? 10_000;
  const collected: RescoredExposure[] = [];
  await client.query(`set local timezone = 'UTC'`);
  await client.query(`set local datestyle = 'ISO'`);
  let batch: RescoredExposure[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const rows = batch;
    batch = [];
    if (opts.onBatch) await opts.onBatch(rows);
    else for (const r of rows) collected.push(r);
  };
  let rest = '';
  const decoder = new TextDecoder();
  await pipeline(
    client.query(
      copyTo(`copy (select id, asset_id, vuln_key, old_outcome, old_due, old_version, outcome, due, version, policy_hash
                        from rescore_result where changed order by id) to stdout`),
    ),
    new Writable({
      write(chunk: Buffer, _enc, done) {
        const text = rest + decoder.decode(chunk, { stream: true });
        const lines = text.split('\n');
        rest = lines.pop() ?? '';
        for (const l of lines) batch.push(rescoredFromCopy(l));
        if (batch.length >= batchSize) flush().then(() => done(), done);
        else done();
      },
      final(done) {
        if (rest) batch.push(rescoredFromCopy(rest));
        flush().then(() => done(), done);
      },
    }),
  );
  return collected;
}

/** The new decisions onto the exposures rescore_result holds. */
async function applyDecisions(client: PoolClient, decidedAt: Date): Promise<void> {
  // sla_due only where no lifecycle owns the row: a running workflow writes its own deadline
  // (the decision plus any pause) when it handles the re-score.
  await client.query(
    `update exposures e set priority = r.outcome, policy_version = r.version, policy_hash = r.policy_hash,
            policy_due = r.due,
            sla_due = case when e.workflow_run is null or e.state = 'open' then r.due else e.sla_due end,
            decided_at = $1, updated_at = now()
       from rescore_result r where r.id = e.id`,
    [decidedAt],
  );
}

export async function rescoreExposures(pool: Pool, opts: RescoreOptions): Promise<RescoreResult> {
  const phasesMs: Record<string, number> = {};
  const client = await pool.connect();
  try {
    await client.query('begin');
    // Hash joins throughout: temporary tables' row estimates are poor, and a nested loop over a
    // million exposures probing a temporary table (local buffers, 8 MB by default) turns seconds
    // into minutes. work_mem lets the 300k-row intel hash stay in memory.
    await client.query(`set local enable_nestloop = off`);
    await client.query(`set local work_mem = '256MB'`);
    let t = performance.now();
    const set = await readPolicySet(client, opts);
    await createRescoreTables(client);
    await copyPolicyTables(client, set, opts);
    phasesMs.policies = ms(t);

    // Weakness-level points per policy, from current intel.
    t = performance.now();
    const intel = await readCveIntel(client);
    phasesMs.readIntel = ms(t);
    t = performance.now();
    const pairs = await copyCvePoints(client, set.policyList, intel);
    phasesMs.cvePoints = ms(t);

    t = performance.now();
    await copyCvssBuckets(client, set, pairs);
    for (const table of RESCORE_TABLES) await client.query(`analyze ${table}`);
    phasesMs.cvssBuckets = ms(t);

    t = performance.now();
    const { examined, changed, restamped } = await diffDecisions(client, set.buckets);
    phasesMs.diff = ms(t);

    t = performance.now();
    const collected = await handOffChanges(client, opts);
    phasesMs.handOff = ms(t);

    if (opts.apply) {
      t = performance.now();
      await applyDecisions(client, opts.now ?? new Date());
      phasesMs.apply = ms(t);
    }
    await client.query('commit');
    return {
      examined,
      changed,
      restamped,
      ...(opts.onBatch ? {} : { rows: collected }),
      phasesMs,
    };
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
