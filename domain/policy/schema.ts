// A risk policy is a YAML file: how threat intel and the asset's context become SSVC decision points,
// the decision tree itself, floors, and SLA deadlines. Parsed once into precise types; every problem
// names the file, line and field. Pure (text in, policy out), so workflows can use it too.
import { z } from 'zod';
import { parseYamlWithSchema } from '../config.ts';
import { sha256Hex } from './sha256.ts';
import {
  AUTOMATABLE,
  CRITICALITY,
  EXPLOITATION,
  HUMAN_IMPACT,
  OUTCOMES,
  SYSTEM_EXPOSURE,
  TECHNICAL_IMPACT,
  treeKey,
  type Automatable,
  type Exploitation,
  type HumanImpact,
  type Outcome,
  type SystemExposure,
} from './ssvc.ts';

const exploitation = z.enum(EXPLOITATION);
const systemExposure = z.enum(SYSTEM_EXPOSURE);
const automatable = z.enum(AUTOMATABLE);
const technicalImpact = z.enum(TECHNICAL_IMPACT);
const humanImpact = z.enum(HUMAN_IMPACT);
const criticality = z.enum(CRITICALITY);
const outcome = z.enum(OUTCOMES);
const probability = z.number().min(0).max(1);

/** EPSS evidence threshold: met when any threshold given is reached. */
const epssThreshold = z
  .object({ probabilityAtLeast: probability.optional(), percentileAtLeast: probability.optional() })
  .strict()
  .refine((t) => t.probabilityAtLeast !== undefined || t.percentileAtLeast !== undefined, {
    message: 'give probabilityAtLeast, percentileAtLeast or both (or null to ignore EPSS here)',
  });

const oneOrMany = <T extends z.ZodType>(t: T) => z.union([t, z.array(t).min(1)]);

/** A condition is a conjunction: every field given must hold. */
const condition = z
  .object({
    kev: z.boolean().optional(),
    exploitation: oneOrMany(exploitation).optional(),
    exposure: oneOrMany(systemExposure).optional(),
    automatable: automatable.optional(),
    technicalImpact: technicalImpact.optional(),
    humanImpact: oneOrMany(humanImpact).optional(),
    criticality: oneOrMany(criticality).optional(),
    outcome: oneOrMany(outcome).optional(),
    contextualCvssAtLeast: z.number().min(0).max(10).optional(),
  })
  .strict()
  .refine((c) => Object.keys(c).length > 0, { message: 'a condition needs at least one field' });

const ruleName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]*$/, 'must be a lower-case name (letters, digits, . _ -)');

const impactByTechnical = z.object({ partial: humanImpact, total: humanImpact }).strict();

export const policySchema = z
  .object({
    name: ruleName,
    /** Changes whenever the rules change; every decision records it (with the content hash). */
    version: z.string().min(1, 'must be a non-empty version string'),
    description: z.string().optional(),
    exploitation: z
      .object({
        /** In CISA KEV → active exploitation. */
        kev: z.boolean(),
        /** Use the Exploitation value of the CISA ADP SSVC assessment in the CVE record. */
        adpSsvc: z.boolean(),
        /** Use the published vector's Exploit Maturity (v4 E:A → active, E:P / v3 E:P,F,H → public poc). */
        cvssExploitMaturity: z.boolean(),
        /** A scanner's "exploit available" flag → public poc. */
        scannerExploit: z.boolean().default(true),
        epss: z.object({ active: epssThreshold.nullable(), publicPoc: epssThreshold.nullable() }).strict(),
      })
      .strict(),
    /** Asset reachability → SSVC System Exposure. */
    exposure: z
      .object({ internet: systemExposure, internal: systemExposure, isolated: systemExposure })
      .strict(),
    automatable: z.object({ adpSsvc: z.boolean(), fromCvss: z.boolean(), otherwise: automatable }).strict(),
    technicalImpact: z
      .object({ adpSsvc: z.boolean(), fromCvss: z.boolean(), otherwise: technicalImpact })
      .strict(),
    /** Asset criticality × technical impact → SSVC Human Impact (mission and well-being). */
    humanImpact: z
      .object({
        low: impactByTechnical,
        medium: impactByTechnical,
        high: impactByTechnical,
        critical: impactByTechnical,
      })
      .strict(),
    contextualCvss: z
      .object({
        /**
         * The least exposed attack vector an asset of this reachability can be attacked through;
         * a published vector more exposed than that is scored with MAV lowered to it.
         */
        attackVectorCap: z
          .object({
            internet: z.enum(['N', 'A', 'L', 'P']),
            internal: z.enum(['N', 'A', 'L', 'P']),
            isolated: z.enum(['N', 'A', 'L', 'P']),
          })
          .strict(),
        /** Set Exploit Maturity from the exploitation decision point (active → A, public poc → P, none → U). */
        exploitMaturityFromIntel: z.boolean(),
      })
      .strict(),
    /** Rows [exploitation, exposure, automatable, human impact, outcome]; every combination exactly once. */
    tree: z.array(z.tuple([exploitation, systemExposure, automatable, humanImpact, outcome])),
    outcomes: z
      .object({
        act: z.object({ slaDays: z.number().int().positive() }).strict(),
        attend: z.object({ slaDays: z.number().int().positive() }).strict(),
        'track*': z.object({ slaDays: z.number().int().positive() }).strict(),
        track: z.object({ slaDays: z.number().int().positive() }).strict(),
      })
      .strict(),
    /** Raise the tree's outcome to at least `atLeast` when `when` holds. */
    floors: z
      .array(
        z
          .object({ name: ruleName, when: condition, atLeast: outcome, because: z.string().optional() })
          .strict(),
      )
      .default([]),
    /** Shorter deadlines when `when` holds; the earliest applicable deadline wins. */
    deadlines: z
      .array(
        z
          .object({
            name: ruleName,
            when: condition,
            days: z.number().int().positive(),
            /** Clock start: when the exposure was first seen, or (for KEV rules) the later of that and the KEV date. */
            from: z.enum(['firstSeen', 'kevDateAdded']).default('firstSeen'),
            because: z.string().optional(),
          })
          .strict(),
      )
      .default([]),
  })
  .strict()
  .superRefine((p, ctx) => {
    const seen = new Map<string, number>();
    p.tree.forEach((row, i) => {
      const key = treeKey(row[0], row[1], row[2], row[3]);
      const first = seen.get(key);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['tree', i],
          message: `the combination (${row.slice(0, 4).join(', ')}) is already at tree[${first}]`,
        });
      } else seen.set(key, i);
    });
    const missing: string[] = [];
    for (const e of EXPLOITATION)
      for (const x of SYSTEM_EXPOSURE)
        for (const a of AUTOMATABLE)
          for (const h of HUMAN_IMPACT)
            if (!seen.has(treeKey(e, x, a, h))) missing.push(`(${e}, ${x}, ${a}, ${h})`);
    if (missing.length > 0) {
      const shown =
        missing.slice(0, 5).join(', ') + (missing.length > 5 ? ` and ${missing.length - 5} more` : '');
      ctx.addIssue({
        code: 'custom',
        path: ['tree'],
        message: `the tree must decide every combination; missing ${shown}`,
      });
    }
    const names = new Set<string>();
    [
      ...p.floors.map((f, i) => ['floors', i, f.name] as const),
      ...p.deadlines.map((d, i) => ['deadlines', i, d.name] as const),
    ].forEach(([list, i, name]) => {
      if (names.has(name))
        ctx.addIssue({ code: 'custom', path: [list, i, 'name'], message: `duplicate rule name "${name}"` });
      names.add(name);
    });
    p.deadlines.forEach((d, i) => {
      if (d.from === 'kevDateAdded' && d.when.kev !== true)
        ctx.addIssue({
          code: 'custom',
          path: ['deadlines', i, 'from'],
          message: 'from: kevDateAdded needs `kev: true` in the condition',
        });
    });
  });

export type PolicyDocument = z.infer<typeof policySchema>;
export type PolicyCondition = z.infer<typeof condition>;
export type EpssThreshold = z.infer<typeof epssThreshold>;

/** A validated policy with its decision tree indexed and its content hash. */
export interface Policy extends PolicyDocument {
  /** sha256 of the policy's content (canonical JSON, so comments and layout do not change it). */
  readonly hash: string;
  /** Where it was read from, for messages. */
  readonly source: string;
  readonly treeIndex: ReadonlyMap<string, Outcome>;
}

/** JSON with object keys sorted, so equal content always hashes the same. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Parse and validate a policy file's text. Throws ConfigError naming file, line and field. */
export function parsePolicy(text: string, source: string): Policy {
  const doc = parseYamlWithSchema(text, source, policySchema);
  const treeIndex = new Map<string, Outcome>(doc.tree.map((r) => [treeKey(r[0], r[1], r[2], r[3]), r[4]]));
  return { ...doc, hash: sha256Hex(canonicalJson(doc)), source, treeIndex };
}

/** The tree's outcome for one combination (the tree is complete, so there always is one). */
export function treeOutcome(
  policy: Policy,
  e: Exploitation,
  x: SystemExposure,
  a: Automatable,
  h: HumanImpact,
): Outcome {
  const o = policy.treeIndex.get(treeKey(e, x, a, h));
  if (o === undefined)
    throw new Error(`policy ${policy.source} has no tree row for (${e}, ${x}, ${a}, ${h})`);
  return o;
}
