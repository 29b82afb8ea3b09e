// What a campaign's ticket says, before a template renders it: the action, the totals of what the
// campaign holds (exposures, open ones, assets, per state), the earliest deadline, its most urgent
// exposures and hosts, why, and how to fix. A campaign can hold a thousand exposures on hundreds of
// hosts while a ticket field holds some 32,000 characters, so the lists are cut — most urgent first —
// until the rendering fits, and every cut list says how many it left out ("and 940 more"), next to
// the totals and the link to the dashboard: nothing is dropped without saying so.
import { ApplicationFailure } from '@temporalio/activity';
import { exposureStates, terminalStates } from '../domain/exposure.ts';
import { compareVersions } from '../domain/versions.ts';
import type { CampaignSummary } from '../domain/ports.ts';
import { renderSummary } from './content.ts';
import type { HostLine, TicketView } from './viewModel.ts';
import { priorityRankOf } from './grouping.ts';

export type { HostLine, ListedExposure, TicketView } from './viewModel.ts';

type Exposure = CampaignSummary['exposures'][number];

/** How many of each list a view shows; halved while the rendering is too long. */
export interface ListLimits {
  exposures: number;
  hosts: number;
  reasons: number;
  /** Weakness keys and installed versions named per fix line. */
  perFix: number;
  fixes: number;
}

export const defaultListLimits: ListLimits = { exposures: 30, hosts: 30, reasons: 10, perFix: 20, fixes: 10 };

export interface ViewOptions {
  /** Base URL of the dashboard, for the link when the campaign carries none. */
  dashboardUrl?: string;
  /** The key on the ticket as the ledger records it (tickets of earlier releases keep theirs). */
  externalKey: string;
}

/** Long scanner titles and reasons are shortened; the dashboard has them whole. */
const TITLE_CHARS = 200;
const REASON_CHARS = 300;

function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** "CVE-1, CVE-2 and 18 more". */
function namedSome(names: string[], limit: number, noun: string): string {
  const shown = names.slice(0, limit);
  const more = names.length - shown.length;
  if (more === 0) return shown.join(', ');
  return shown.length ? `${shown.join(', ')} and ${more} more` : `${more} ${noun}`;
}

/** Fix instructions per package ("Upgrade openssl from 3.0.2 to 3.0.7 or later (CVE-…)"), else the action. */
function fixInstructions(campaign: CampaignSummary, limits: ListLimits): string[] {
  if (campaign.kind === 'advisory' || campaign.kind === 'config') return [campaign.action];
  const byPackage = new Map<string, { from: Set<string>; to?: string; keys: Set<string> }>();
  for (const e of campaign.exposures) {
    if (!e.package) continue;
    const entry = byPackage.get(e.package.name) ?? { from: new Set<string>(), keys: new Set<string>() };
    if (e.package.version) entry.from.add(e.package.version);
    // The highest fixed version any member needs closes them all.
    const fixed = e.package.fixedVersion;
    if (fixed && (!entry.to || compareVersions(fixed, entry.to) > 0)) entry.to = fixed;
    entry.keys.add(e.weaknessKey);
    byPackage.set(e.package.name, entry);
  }
  const lines = [...byPackage.entries()].map(([name, p]) => {
    const versions = [...p.from].sort(compareVersions);
    const from = versions.length ? ` from ${namedSome(versions, limits.perFix, 'versions')}` : '';
    const to = p.to ? ` to ${p.to} or later` : ' to a fixed version';
    return `Upgrade ${name}${from}${to} (${namedSome([...p.keys], limits.perFix, 'weaknesses')}).`;
  });
  if (lines.length === 0) return [campaign.action];
  const shown = lines.slice(0, Math.max(1, limits.fixes));
  const left = lines.length - shown.length;
  if (left) shown.push(`… and ${left} more package${left === 1 ? '' : 's'}.`);
  return shown;
}

const isOpen = (e: Exposure) => !terminalStates.includes(e.state);

/** Open first, then the most urgent; otherwise as the campaign listed them. */
function byUrgency(exposures: Exposure[]): Exposure[] {
  return exposures
    .map((e, i) => ({ e, i }))
    .sort(
      (a, b) =>
        Number(isOpen(b.e)) - Number(isOpen(a.e)) ||
        priorityRankOf(b.e.priority) - priorityRankOf(a.e.priority) ||
        a.i - b.i,
    )
    .map(({ e }) => e);
}

function hostLines(exposures: Exposure[]): HostLine[] {
  const byHost = new Map<string, { open: Exposure[]; all: Exposure[] }>();
  for (const e of exposures) {
    const h = byHost.get(e.asset) ?? { open: [], all: [] };
    h.all.push(e);
    if (isOpen(e)) h.open.push(e);
    byHost.set(e.asset, h);
  }
  return [...byHost.entries()]
    .map(([name, h]) => ({
      name,
      open: h.open.length,
      exposures: h.all.length,
      priority: (h.open.length ? h.open : h.all).reduce(
        (p, e) => (priorityRankOf(e.priority) > priorityRankOf(p) ? e.priority : p),
        (h.open[0] ?? h.all[0])!.priority,
      ),
    }))
    .sort(
      (a, b) =>
        Number(b.open > 0) - Number(a.open > 0) ||
        priorityRankOf(b.priority) - priorityRankOf(a.priority) ||
        b.open - a.open ||
        a.name.localeCompare(b.name),
    );
}

export function ticketView(
  campaign: CampaignSummary,
  opts: ViewOptions,
  limits: ListLimits = defaultListLimits,
): TicketView {
  const ordered = byUrgency(campaign.exposures);
  // The campaign's own totals count what its list may leave out (`more`).
  const totalExposures = Math.max(campaign.totals.exposures, ordered.length);
  const listed = ordered.slice(0, limits.exposures);
  const hosts = hostLines(ordered);
  const shownHosts = hosts.slice(0, limits.hosts);
  const reasons = [...new Set(ordered.filter(isOpen).flatMap((e) => e.reasons))];
  const shownReasons = reasons.slice(0, limits.reasons).map((r) => shorten(r, REASON_CHARS));
  const states = exposureStates
    .filter((s) => (campaign.totals.states[s] ?? 0) > 0)
    .map((state) => ({ state, count: campaign.totals.states[state]! }));
  const view: Omit<TicketView, 'summary'> = {
    campaignId: campaign.id,
    externalKey: opts.externalKey,
    scope: campaign.scope,
    ...(campaign.owner ? { owner: campaign.owner } : {}),
    action: campaign.action,
    priority: campaign.priority,
    ...(campaign.slaDue ? { slaDue: campaign.slaDue, slaDueDate: campaign.slaDue.slice(0, 10) } : {}),
    totals: {
      exposures: totalExposures,
      open: campaign.totals.open,
      assets: Math.max(campaign.totals.assets, hosts.length),
      states,
      statesText: states.map((s) => `${s.count} ${s.state}`).join(', '),
    },
    exposures: listed.map((e) => ({
      id: e.id,
      weaknessKey: e.weaknessKey,
      title: shorten(e.title, TITLE_CHARS),
      asset: e.asset,
      state: e.state,
      priority: e.priority,
    })),
    moreExposures: totalExposures - listed.length,
    hosts: shownHosts,
    moreHosts: Math.max(campaign.totals.assets, hosts.length) - shownHosts.length,
    reasons: shownReasons,
    moreReasons: reasons.length - shownReasons.length,
    fixes: fixInstructions(campaign, limits),
    ...(campaign.url || opts.dashboardUrl
      ? {
          url:
            campaign.url ??
            `${opts.dashboardUrl!.replace(/\/$/, '')}/dashboard?campaign=${encodeURIComponent(campaign.id)}`,
        }
      : {}),
    assets: hosts.map((h) => h.name),
  };
  return { summary: renderSummary({ ...view, summary: '' }), ...view };
}

/**
 * The view whose rendering is at most `limit` characters, with that rendering: the lists are
 * halved until it fits. A template that is too long with every list empty is a configuration
 * mistake, refused naming the limit.
 */
export function fittedView<T>(
  campaign: CampaignSummary,
  opts: ViewOptions & { limit: number; system: string },
  render: (view: TicketView) => T,
  size: (rendered: T) => number,
): { view: TicketView; rendered: T } {
  let limits = defaultListLimits;
  for (;;) {
    const view = ticketView(campaign, opts, limits);
    const rendered = render(view);
    const length = size(rendered);
    if (length <= opts.limit) return { view, rendered };
    if (Object.values(limits).every((n) => n === 0))
      throw ApplicationFailure.nonRetryable(
        `${opts.system}: the ticket of ${campaign.id} renders ${length} characters even without listing any exposure, over integrations.${opts.system}.textLimit (${opts.limit}); shorten the template`,
        'TicketRequestRejected',
      );
    limits = {
      exposures: Math.floor(limits.exposures / 2),
      hosts: Math.floor(limits.hosts / 2),
      reasons: Math.floor(limits.reasons / 2),
      perFix: Math.floor(limits.perFix / 2),
      fixes: Math.floor(limits.fixes / 2),
    };
  }
}

/**
 * A comment or note that `fits`: its first lines, then how many lines were left out (the campaign's
 * page in the dashboard has them all); a single line too long is cut, saying by how much.
 */
export function fitText(text: string, fits: (text: string) => boolean): string {
  if (fits(text)) return text;
  const lines = text.split('\n');
  const keep = (k: number) => {
    const left = lines.length - k;
    return `${lines.slice(0, k).join('\n')}${k ? '\n' : ''}… and ${left} more line${left === 1 ? '' : 's'}.`;
  };
  // The most lines that fit, found by halving (k = 0 always leaves the note alone).
  let lo = 0;
  let hi = lines.length - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(keep(mid))) lo = mid;
    else hi = mid - 1;
  }
  if (lo > 0 || lines.length > 1) return keep(lo);
  const cut = (n: number) => `${text.slice(0, n)}… (${text.length - n} more characters)`;
  let a = 0;
  let b = text.length;
  while (a < b) {
    const mid = Math.ceil((a + b) / 2);
    if (fits(cut(mid))) a = mid;
    else b = mid - 1;
  }
  return cut(a);
}
