// CVSS v3.0, v3.1 and v4.0 scoring: strict vector validation first, then the arithmetic of
// ae-cvss-calculator (cross-checked in tests against FIRST's examples, the reference calculators'
// vectors and the CVE records' own scores). Pure: no I/O, safe in workflow code.
//
// Validation is ours, not the library's: the library accepts some values the specifications do not
// (e.g. SC:S in a v4.0 base vector) and throws generic errors for others. Every vector is checked
// against the metric tables below, written from the FIRST specification documents:
//   v3.1 https://www.first.org/cvss/v3.1/specification-document (section 6, Table 15)
//   v4.0 https://www.first.org/cvss/v4.0/specification-document (section 7, Table 23)
import * as calcModule from 'ae-cvss-calculator';

type Calculator = Pick<typeof calcModule, 'Cvss3P0' | 'Cvss3P1' | 'Cvss4P0'>;

/**
 * The package is one UMD bundle: Node's ESM loader hands its classes over as the default export,
 * webpack (Temporal's workflow bundle) as named exports or under CvssCalculator. Take whichever
 * object holds them.
 */
function loadCalculator(): Calculator {
  const m = calcModule as unknown as Record<string, unknown>;
  const nested = (x: unknown): unknown =>
    x !== null && typeof x === 'object' ? (x as Record<string, unknown>).CvssCalculator : undefined;
  for (const candidate of [m, m.default, m.CvssCalculator, nested(m.default)]) {
    if (
      candidate !== null &&
      typeof candidate === 'object' &&
      typeof (candidate as Partial<Calculator>).Cvss4P0 === 'function'
    )
      return candidate as Calculator;
  }
  throw new Error('ae-cvss-calculator did not load: none of its exports holds the Cvss4P0 class');
}
const calc = loadCalculator();

export type CvssVersion = '3.0' | '3.1' | '4.0';
export type CvssSeverity = 'none' | 'low' | 'medium' | 'high' | 'critical';
/** Security requirement of a scope for confidentiality, integrity or availability (CR/IR/AR). */
export type Requirement = 'L' | 'M' | 'H';
/** What threat intelligence says about exploitation; becomes the E (Exploit Maturity) metric. */
export type ExploitMaturity = 'attacked' | 'poc' | 'unreported';
/** FIRST's names for which metric groups went into a score (v4.0 spec section 1.3; used for v3 too). */
export type CvssNomenclature = 'CVSS-B' | 'CVSS-BT' | 'CVSS-BE' | 'CVSS-BTE';

type MetricGroup = 'base' | 'threat' | 'environmental' | 'supplemental';

interface MetricDefinition {
  readonly name: string;
  readonly group: MetricGroup;
  /** Allowed values; "X" (Not Defined) is allowed for every non-base metric. */
  readonly values: readonly string[];
}

const metric = (name: string, group: MetricGroup, values: string): MetricDefinition => ({
  name,
  group,
  values: group === 'base' ? values.split(',') : ['X', ...values.split(',')],
});

// Canonical order is the order of these tables (the order of the specifications' vector tables).
const V3_METRICS: readonly MetricDefinition[] = [
  metric('AV', 'base', 'N,A,L,P'),
  metric('AC', 'base', 'L,H'),
  metric('PR', 'base', 'N,L,H'),
  metric('UI', 'base', 'N,R'),
  metric('S', 'base', 'U,C'),
  metric('C', 'base', 'H,L,N'),
  metric('I', 'base', 'H,L,N'),
  metric('A', 'base', 'H,L,N'),
  metric('E', 'threat', 'U,P,F,H'),
  metric('RL', 'threat', 'O,T,W,U'),
  metric('RC', 'threat', 'U,R,C'),
  metric('CR', 'environmental', 'L,M,H'),
  metric('IR', 'environmental', 'L,M,H'),
  metric('AR', 'environmental', 'L,M,H'),
  metric('MAV', 'environmental', 'N,A,L,P'),
  metric('MAC', 'environmental', 'L,H'),
  metric('MPR', 'environmental', 'N,L,H'),
  metric('MUI', 'environmental', 'N,R'),
  metric('MS', 'environmental', 'U,C'),
  metric('MC', 'environmental', 'H,L,N'),
  metric('MI', 'environmental', 'H,L,N'),
  metric('MA', 'environmental', 'H,L,N'),
];

const V4_METRICS: readonly MetricDefinition[] = [
  metric('AV', 'base', 'N,A,L,P'),
  metric('AC', 'base', 'L,H'),
  metric('AT', 'base', 'N,P'),
  metric('PR', 'base', 'N,L,H'),
  metric('UI', 'base', 'N,P,A'),
  metric('VC', 'base', 'H,L,N'),
  metric('VI', 'base', 'H,L,N'),
  metric('VA', 'base', 'H,L,N'),
  metric('SC', 'base', 'H,L,N'),
  metric('SI', 'base', 'H,L,N'),
  metric('SA', 'base', 'H,L,N'),
  metric('E', 'threat', 'A,P,U'),
  metric('CR', 'environmental', 'H,M,L'),
  metric('IR', 'environmental', 'H,M,L'),
  metric('AR', 'environmental', 'H,M,L'),
  metric('MAV', 'environmental', 'N,A,L,P'),
  metric('MAC', 'environmental', 'L,H'),
  metric('MAT', 'environmental', 'N,P'),
  metric('MPR', 'environmental', 'N,L,H'),
  metric('MUI', 'environmental', 'N,P,A'),
  metric('MVC', 'environmental', 'H,L,N'),
  metric('MVI', 'environmental', 'H,L,N'),
  metric('MVA', 'environmental', 'H,L,N'),
  metric('MSC', 'environmental', 'H,L,N'),
  // Only subsequent-system integrity and availability can be raised to Safety (S).
  metric('MSI', 'environmental', 'S,H,L,N'),
  metric('MSA', 'environmental', 'S,H,L,N'),
  metric('S', 'supplemental', 'N,P'),
  metric('AU', 'supplemental', 'N,Y'),
  metric('R', 'supplemental', 'A,U,I'),
  metric('V', 'supplemental', 'D,C'),
  metric('RE', 'supplemental', 'L,M,H'),
  metric('U', 'supplemental', 'Clear,Green,Amber,Red'),
];

const METRICS: Record<CvssVersion, readonly MetricDefinition[]> = {
  '3.0': V3_METRICS,
  '3.1': V3_METRICS,
  '4.0': V4_METRICS,
};

/** A validated vector: its version, its metrics (Not Defined "X" dropped) and its canonical text. */
export interface CvssVector {
  readonly version: CvssVersion;
  /** Metric name → value, without Not Defined (X) values. */
  readonly metrics: Readonly<Record<string, string>>;
  /** Prefix + metrics in specification order, X values omitted: equal vectors have equal text. */
  readonly vector: string;
}

/** A vector that is not valid CVSS: the message names the vector and the offending metric. */
export class CvssVectorError extends Error {
  constructor(
    readonly input: string,
    /** The metric at fault, when one is (undefined for a bad prefix or an empty vector). */
    readonly metric: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'CvssVectorError';
  }
}

const PREFIX = /^CVSS:(3\.0|3\.1|4\.0)\/(.*)$/s;

/** Validate a CVSS v3.0/v3.1/v4.0 vector string; order-insensitive, canonical output. */
export function parseCvssVector(input: string): CvssVector {
  const text = input.trim();
  const shown = text.length > 120 ? `${text.slice(0, 117)}...` : text;
  if (text === '') throw new CvssVectorError(input, undefined, 'CVSS vector is empty.');
  const prefix = PREFIX.exec(text);
  if (!prefix) {
    const v2 = /^(\(?AV:[LAN]\/AC:[HML]\/Au:[MSN]\/)/.test(text);
    throw new CvssVectorError(
      input,
      undefined,
      v2
        ? `CVSS vector "${shown}" is CVSS v2, which is not supported: use its v3.1 or v4.0 vector.`
        : `CVSS vector "${shown}" must start with CVSS:3.0/, CVSS:3.1/ or CVSS:4.0/.`,
    );
  }
  const version = prefix[1] as CvssVersion;
  const definitions = METRICS[version];
  const byName = new Map(definitions.map((d) => [d.name, d]));
  const seen = new Map<string, string>();
  for (const part of (prefix[2] ?? '').split('/')) {
    const colon = part.indexOf(':');
    if (colon <= 0) {
      throw new CvssVectorError(
        input,
        undefined,
        part === ''
          ? `CVSS vector "${shown}" has an empty metric (a doubled or trailing "/").`
          : `CVSS vector "${shown}": "${part}" is not METRIC:VALUE.`,
      );
    }
    const name = part.slice(0, colon);
    const value = part.slice(colon + 1);
    const definition = byName.get(name);
    if (!definition)
      throw new CvssVectorError(
        input,
        name,
        `CVSS vector "${shown}": ${name} is not a CVSS ${version} metric.`,
      );
    if (seen.has(name))
      throw new CvssVectorError(
        input,
        name,
        `CVSS vector "${shown}": metric ${name} appears more than once.`,
      );
    if (!definition.values.includes(value)) {
      throw new CvssVectorError(
        input,
        name,
        `CVSS vector "${shown}": metric ${name} has value "${value}", allowed: ${definition.values.join(', ')}.`,
      );
    }
    seen.set(name, value);
  }
  const missing = definitions.filter((d) => d.group === 'base' && !seen.has(d.name)).map((d) => d.name);
  if (missing.length > 0) {
    throw new CvssVectorError(
      input,
      missing[0],
      `CVSS vector "${shown}" lacks mandatory base metric${missing.length > 1 ? 's' : ''} ${missing.join(', ')}.`,
    );
  }
  const metrics: Record<string, string> = {};
  const parts: string[] = [];
  for (const d of definitions) {
    const value = seen.get(d.name);
    if (value === undefined || value === 'X') continue;
    metrics[d.name] = value;
    parts.push(`${d.name}:${value}`);
  }
  return { version, metrics, vector: `CVSS:${version}/${parts.join('/')}` };
}

export interface CvssScore {
  readonly version: CvssVersion;
  /** The canonical vector that was scored. */
  readonly vector: string;
  /** Base score (CVSS-B). */
  readonly base: number;
  readonly baseSeverity: CvssSeverity;
  /** v3 only: the Temporal score when the vector has temporal metrics. */
  readonly temporal?: number;
  /** v3 only: the Environmental score (which includes temporal metrics) when it has environmental ones. */
  readonly environmental?: number;
  /** The score using every metric group present: what `nomenclature` names. */
  readonly score: number;
  readonly severity: CvssSeverity;
  readonly nomenclature: CvssNomenclature;
}

/** Qualitative rating, identical for v3.x and v4.0. */
export function cvssSeverity(score: number): CvssSeverity {
  if (score === 0) return 'none';
  if (score < 4) return 'low';
  if (score < 7) return 'medium';
  if (score < 9) return 'high';
  return 'critical';
}

function groupsPresent(v: CvssVector): { threat: boolean; environmental: boolean } {
  const groups = new Set(
    METRICS[v.version].filter((d) => v.metrics[d.name] !== undefined).map((d) => d.group),
  );
  return { threat: groups.has('threat'), environmental: groups.has('environmental') };
}

function nomenclature(v: CvssVector): CvssNomenclature {
  const { threat, environmental } = groupsPresent(v);
  return `CVSS-B${threat ? 'T' : ''}${environmental ? 'E' : ''}` as CvssNomenclature;
}

function baseOnly(v: CvssVector): string {
  const parts = METRICS[v.version]
    .filter((d) => d.group === 'base')
    .map((d) => `${d.name}:${v.metrics[d.name]}`);
  return `CVSS:${v.version}/${parts.join('/')}`;
}

// Scores of canonical vectors already computed. A re-score asks for the same few thousand vectors
// over and over, and v4.0 scoring costs about a millisecond; the function is pure, so a bounded
// memo is safe (it is simply emptied when full).
const MEMO_LIMIT = 50_000;
const memo = new Map<string, CvssScore>();

/** Score a vector (text or already parsed). Throws CvssVectorError for an invalid vector. */
export function scoreCvss(input: string | CvssVector): CvssScore {
  const v = typeof input === 'string' ? parseCvssVector(input) : input;
  const known = memo.get(v.vector);
  if (known) return known;
  const score = computeScore(v);
  if (memo.size >= MEMO_LIMIT) memo.clear();
  memo.set(v.vector, score);
  return score;
}

function computeScore(v: CvssVector): CvssScore {
  const kind = nomenclature(v);
  if (v.version === '4.0') {
    // Cvss4P0's "overall" is the score of everything in the vector (the macrovector method has one
    // formula for B, BT, BE and BTE); the base score is the same formula over the base metrics only.
    const score = new calc.Cvss4P0(v.vector).calculateScores().overall;
    const base = kind === 'CVSS-B' ? score : new calc.Cvss4P0(baseOnly(v)).calculateScores().overall;
    return {
      version: v.version,
      vector: v.vector,
      base,
      baseSeverity: cvssSeverity(base),
      score,
      severity: cvssSeverity(score),
      nomenclature: kind,
    };
  }
  const calculator = v.version === '3.1' ? new calc.Cvss3P1(v.vector) : new calc.Cvss3P0(v.vector);
  const r = calculator.calculateScores();
  const base = r.base ?? 0;
  const { threat, environmental } = groupsPresent(v);
  const temporal = threat ? r.temporal : undefined;
  const env = environmental ? r.environmental : undefined;
  // v3.1 spec section 7.3: the environmental score already incorporates the temporal metrics.
  const score = env ?? temporal ?? base;
  return {
    version: v.version,
    vector: v.vector,
    base,
    baseSeverity: cvssSeverity(base),
    ...(temporal !== undefined ? { temporal } : {}),
    ...(env !== undefined ? { environmental: env } : {}),
    score,
    severity: cvssSeverity(score),
    nomenclature: kind,
  };
}

/** What a scope and its threat intelligence add to a published (base) vector. */
export interface CvssContext {
  /** The scope's security requirements (CR, IR, AR). */
  requirements?: { cr?: Requirement; ir?: Requirement; ar?: Requirement };
  /**
   * Modified base metrics for this asset, e.g. `{ MAV: 'A' }` for an asset reachable only from its
   * local network segment. Names and values are validated like any vector metric.
   */
  modified?: Readonly<Record<string, string>>;
  /** Exploitation evidence (KEV, EPSS, ADP SSVC) → Exploit Maturity, replacing the vector's own E. */
  exploitMaturity?: ExploitMaturity;
}

// v4.0 E has exactly these three values. v3.x has four: "attacked" maps to High (exploit code works
// everywhere or is delivered autonomously — the closest to "exploited in the wild"), "poc" to
// Proof-of-Concept, "unreported" to Unproven.
const EXPLOIT_MATURITY: Record<'3' | '4', Record<ExploitMaturity, string>> = {
  '3': { attacked: 'H', poc: 'P', unreported: 'U' },
  '4': { attacked: 'A', poc: 'P', unreported: 'U' },
};

export interface ContextualCvssScore extends CvssScore {
  /** The published vector the context was applied to (canonical). */
  readonly publishedVector: string;
}

/**
 * The contextual score (what Cyberwatch calls CVSS-BTE): the published vector plus the scope's
 * CIA requirements, the asset's modified metrics and the exploit maturity known from threat intel.
 */
export function contextualCvss(publishedVector: string, context: CvssContext): ContextualCvssScore {
  const published = parseCvssVector(publishedVector);
  const definitions = METRICS[published.version];
  const metrics: Record<string, string> = { ...published.metrics };
  const { cr, ir, ar } = context.requirements ?? {};
  if (cr) metrics.CR = cr;
  if (ir) metrics.IR = ir;
  if (ar) metrics.AR = ar;
  for (const [name, value] of Object.entries(context.modified ?? {})) {
    const definition = definitions.find((d) => d.name === name);
    if (!definition || definition.group !== 'environmental') {
      throw new CvssVectorError(
        `${published.vector}/${name}:${value}`,
        name,
        `${name} is not a CVSS ${published.version} environmental metric (use ${definitions
          .filter((d) => d.group === 'environmental')
          .map((d) => d.name)
          .join(', ')}).`,
      );
    }
    metrics[name] = value;
  }
  if (context.exploitMaturity)
    metrics.E = EXPLOIT_MATURITY[published.version === '4.0' ? '4' : '3'][context.exploitMaturity];
  const text = `CVSS:${published.version}/${Object.entries(metrics)
    .map(([k, v]) => `${k}:${v}`)
    .join('/')}`;
  return { ...scoreCvss(parseCvssVector(text)), publishedVector: published.vector };
}

/** Base metric values of a vector in version-neutral terms, for decisions that look at them. */
export interface BaseCharacteristics {
  attackVector: 'N' | 'A' | 'L' | 'P';
  attackComplexity: 'L' | 'H';
  /** v4.0 AT; "N" for v3 (no such metric). */
  attackRequirements: 'N' | 'P';
  privilegesRequired: 'N' | 'L' | 'H';
  /** v3 R and v4 P/A both mean a user must take part. */
  userInteraction: 'none' | 'required';
  confidentiality: 'H' | 'L' | 'N';
  integrity: 'H' | 'L' | 'N';
  availability: 'H' | 'L' | 'N';
}

export function baseCharacteristics(v: CvssVector): BaseCharacteristics {
  const m = v.metrics;
  const four = v.version === '4.0';
  return {
    attackVector: m.AV as BaseCharacteristics['attackVector'],
    attackComplexity: m.AC as BaseCharacteristics['attackComplexity'],
    attackRequirements: four ? (m.AT as BaseCharacteristics['attackRequirements']) : 'N',
    privilegesRequired: m.PR as BaseCharacteristics['privilegesRequired'],
    userInteraction: m.UI === 'N' ? 'none' : 'required',
    confidentiality: (four ? m.VC : m.C) as BaseCharacteristics['confidentiality'],
    integrity: (four ? m.VI : m.I) as BaseCharacteristics['integrity'],
    availability: (four ? m.VA : m.A) as BaseCharacteristics['availability'],
  };
}
