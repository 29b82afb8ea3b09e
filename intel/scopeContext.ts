// The part of a scope that prioritization needs, read from the scopes table (config jsonb holds the
// scope as ctem.yaml gives it) or from the parsed ctem.yaml itself.
import type { Requirement } from '../domain/cvss.ts';
import type { Reachability } from '../domain/policy/ssvc.ts';

export interface ScopeContext {
  policy: string;
  reachability: Reachability;
  requirements: { cr: Requirement; ir: Requirement; ar: Requirement };
}

/** Assets outside any scope: the default policy, internal network, medium requirements. */
export const NO_SCOPE: ScopeContext = {
  policy: 'default',
  reachability: 'internal',
  requirements: { cr: 'M', ir: 'M', ar: 'M' },
};

const requirement = (v: unknown): Requirement => (v === 'L' || v === 'M' || v === 'H' ? v : 'M');

/** Lenient on purpose: the scopes table is written by ingest from an already validated ctem.yaml. */
export function scopeContext(config: unknown): ScopeContext {
  const c = config !== null && typeof config === 'object' ? (config as Record<string, unknown>) : {};
  const cia = c.cia !== null && typeof c.cia === 'object' ? (c.cia as Record<string, unknown>) : {};
  const reachability: Reachability =
    c.reachability === 'isolated' || c.reachability === 'internet' || c.reachability === 'internal'
      ? c.reachability
      : c.internetFacing === true
        ? 'internet'
        : 'internal';
  return {
    policy: typeof c.policy === 'string' && c.policy !== '' ? c.policy : 'default',
    reachability,
    requirements: {
      cr: requirement(cia.confidentiality),
      ir: requirement(cia.integrity),
      ar: requirement(cia.availability),
    },
  };
}

export function profileKey(s: ScopeContext): string {
  return `${s.reachability}|${s.requirements.cr}${s.requirements.ir}${s.requirements.ar}`;
}
