// Which ticket an exposure goes to (scopes[].tickets.groupBy): its remediation unit by default, or
// its own ticket, its asset's ticket, or its fix's ticket across assets. A unit is split into the
// groups of its exposures; a group's ticket shows every member unit's part together. Pure.
import type { CampaignSummary } from '../domain/ports.ts';
import type { ScopeTickets } from './config.ts';

export type GroupBy = ScopeTickets['groupBy'];

type Exposure = CampaignSummary['exposures'][number];

function fixKeyOf(e: Exposure): string {
  return e.package ? `pkg:${e.package.name}` : `weakness:${e.weaknessKey}`;
}

export function groupKeyOf(unit: CampaignSummary, e: Exposure, groupBy: GroupBy): string {
  const who = `${unit.scope}:${unit.owner ?? 'unowned'}`;
  switch (groupBy) {
    case 'unit':
      return unit.id;
    case 'exposure':
      return `exposure:${e.id}`;
    case 'asset':
      return `asset:${who}:${e.asset}`;
    case 'fix':
      return `fix:${who}:${fixKeyOf(e)}`;
  }
}

/** The unit's parts per ticket group, in the order of the unit's exposures. */
export function splitUnit(unit: CampaignSummary, groupBy: GroupBy): Map<string, CampaignSummary> {
  const parts = new Map<string, CampaignSummary>();
  for (const e of unit.exposures) {
    const key = groupKeyOf(unit, e, groupBy);
    const part = parts.get(key) ?? { ...unit, exposures: [] };
    part.exposures.push(e);
    parts.set(key, part);
  }
  // A part counts its own exposures (all of the campaign's when there is one part).
  if (parts.size > 1) for (const part of parts.values()) part.totals = totalsOf(part.exposures);
  return parts;
}

const priorityRank: Record<string, number> = {
  act: 3,
  attend: 2,
  'track*': 1,
  track: 0,
  critical: 3,
  high: 2,
  medium: 1,
  low: 0,
};

function mostUrgent(priorities: string[]): string {
  return priorities.reduce(
    (a, b) => ((priorityRank[b.toLowerCase()] ?? -1) > (priorityRank[a.toLowerCase()] ?? -1) ? b : a),
    priorities[0] ?? 'Track',
  );
}

/**
 * One summary for a group's ticket from its members' parts: every exposure, the most urgent priority,
 * the earliest deadline; actions differing only by asset ("Upgrade x on a", "… on b") are joined.
 */
export function mergeParts(groupKey: string, parts: CampaignSummary[]): CampaignSummary {
  const sorted = [...parts].sort((a, b) => a.id.localeCompare(b.id));
  const first = sorted[0];
  if (!first) throw new Error(`ticket group ${groupKey} has no members`);
  if (sorted.length === 1) return { ...first, id: groupKey };
  const actions = [...new Set(sorted.map((p) => p.action))];
  const stems = new Set(actions.map((a) => a.replace(/ on [^ ]+$/, '')));
  const action =
    stems.size === 1 && actions.every((a) => / on [^ ]+$/.test(a))
      ? `${[...stems][0]} on ${[...new Set(actions.map((a) => a.replace(/^.* on /, '')))].sort().join(', ')}`
      : actions.join('; ');
  const dues = sorted
    .map((p) => p.slaDue)
    .filter((d): d is string => !!d)
    .sort();
  const owners = new Set(sorted.map((p) => p.owner));
  const exposures = [...new Map(sorted.flatMap((p) => p.exposures).map((e) => [e.id, e])).values()];
  const subjects = [...new Set(sorted.map((p) => p.subject))];
  return {
    id: groupKey,
    scope: first.scope,
    ...(owners.size === 1 && first.owner ? { owner: first.owner } : {}),
    kind: sorted.every((p) => p.kind === first.kind) ? first.kind : 'weakness',
    subject: subjects.join(', '),
    action,
    priority: mostUrgent(sorted.map((p) => p.priority)),
    ...(dues[0] ? { slaDue: dues[0] } : {}),
    totals: totalsOf(exposures),
    exposures,
    ...(new Set(sorted.map((p) => p.url)).size === 1 && first.url ? { url: first.url } : {}),
  };
}

/** What a list of exposures counts: all of them, the open ones, their assets, per state. */
export function totalsOf(exposures: CampaignSummary['exposures']): CampaignSummary['totals'] {
  const states: CampaignSummary['totals']['states'] = {};
  for (const e of exposures) states[e.state] = (states[e.state] ?? 0) + 1;
  const closed = new Set(['resolved', 'false-positive', 'retired']);
  return {
    exposures: exposures.length,
    open: exposures.filter((e) => !closed.has(e.state)).length,
    assets: new Set(exposures.map((e) => e.asset)).size,
    states,
  };
}
