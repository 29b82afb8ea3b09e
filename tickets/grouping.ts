// Which ticket an exposure goes to (scopes[].tickets.groupBy): its campaign's by default, or its own
// ticket, its asset's ticket (per owner), or its package's ticket (per owner). A campaign is split
// into the groups of its exposures; a group's ticket shows every member campaign's part together.
// Pure.
import { campaignAction } from '../domain/campaign.ts';
import { terminalStates } from '../domain/exposure.ts';
import type { CampaignSummary } from '../domain/ports.ts';
import type { GroupBy } from './config.ts';

export type { GroupBy } from './config.ts';

type Exposure = CampaignSummary['exposures'][number];

function fixKeyOf(e: Exposure): string {
  return e.package ? `pkg:${e.package.name}` : `weakness:${e.weaknessKey}`;
}

export function groupKeyOf(campaign: CampaignSummary, e: Exposure, groupBy: GroupBy): string {
  const who = `${campaign.scope}:${campaign.owner ?? 'unowned'}`;
  switch (groupBy) {
    case 'campaign':
      return campaign.id;
    case 'exposure':
      return `exposure:${e.id}`;
    case 'asset':
      return `asset:${who}:${e.asset}`;
    case 'fix':
      return `fix:${who}:${fixKeyOf(e)}`;
  }
}

/** The campaign's action for some of its exposures ("Upgrade openssl to 3.0.8 or later on web-01"). */
function actionFor(
  campaign: Pick<CampaignSummary, 'id' | 'kind' | 'subject'>,
  exposures: Exposure[],
): string {
  return campaignAction(
    { key: campaign.id, kind: campaign.kind, subject: campaign.subject },
    exposures.map((e) => ({
      assetName: e.asset,
      ...(e.package?.fixedVersion ? { fixedVersion: e.package.fixedVersion } : {}),
    })),
  );
}

/** The campaign's parts per ticket group, in the order of the campaign's exposures. */
export function splitCampaign(campaign: CampaignSummary, groupBy: GroupBy): Map<string, CampaignSummary> {
  const parts = new Map<string, CampaignSummary>();
  for (const e of campaign.exposures) {
    const key = groupKeyOf(campaign, e, groupBy);
    const part = parts.get(key) ?? { ...campaign, exposures: [] };
    part.exposures.push(e);
    parts.set(key, part);
  }
  // A part counts and describes its own exposures (the campaign's totals when there is one part).
  if (parts.size > 1)
    for (const part of parts.values()) {
      part.totals = totalsOf(part.exposures);
      part.action = actionFor(campaign, part.exposures);
      delete part.more;
    }
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

/** Higher is more urgent; unknown priorities rank last. */
export function priorityRankOf(priority: string): number {
  return priorityRank[priority.toLowerCase()] ?? -1;
}

function mostUrgent(priorities: string[]): string {
  return priorities.reduce(
    (a, b) => (priorityRankOf(b) > priorityRankOf(a) ? b : a),
    priorities[0] ?? 'Track',
  );
}

/**
 * One summary for a group's ticket from its members' parts: every exposure, the most urgent priority,
 * the earliest deadline. Parts of one fix (same kind and subject) say the fix once, over all their
 * assets; different fixes are listed one after the other.
 */
export function mergeParts(groupKey: string, parts: CampaignSummary[]): CampaignSummary {
  const sorted = [...parts].sort((a, b) => a.id.localeCompare(b.id));
  const first = sorted[0];
  if (!first) throw new Error(`ticket group ${groupKey} has no members`);
  if (sorted.length === 1) return { ...first, id: groupKey };
  const exposures = [...new Map(sorted.flatMap((p) => p.exposures).map((e) => [e.id, e])).values()];
  const oneFix = sorted.every((p) => p.kind === first.kind && p.subject === first.subject);
  const action = oneFix
    ? actionFor({ ...first, id: groupKey }, exposures)
    : [...new Set(sorted.map((p) => p.action))].join('; ');
  const dues = sorted
    .map((p) => p.slaDue)
    .filter((d): d is string => !!d)
    .sort();
  const owners = new Set(sorted.map((p) => p.owner));
  const subjects = [...new Set(sorted.map((p) => p.subject))];
  return {
    id: groupKey,
    scope: first.scope,
    ...(owners.size === 1 && first.owner ? { owner: first.owner } : {}),
    kind: oneFix ? first.kind : 'weakness',
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
  return {
    exposures: exposures.length,
    open: exposures.filter((e) => !terminalStates.includes(e.state)).length,
    assets: new Set(exposures.map((e) => e.asset)).size,
    states,
  };
}
