// What the owner hears when a scan files new exposures into their campaign: at once when the new
// ones are urgent under the owner's notification policy (urgentReason, the same rule as for every
// later message: lifecycle/notificationPolicy.ts) — the campaign's message the first time, a reply
// in its thread after that — else nothing until the daily queue. A backlog import (baseline) files
// silently and sends each owner one summary.
import type { Deps } from '../runtime/deps.ts';
import type { NotifyOutcome } from '../contracts/lifecycle.ts';
import type { CampaignSummary, DigestNotification } from '../domain/ports.ts';
import type { TriageResult } from './triage.ts';
import { campaignSummary, mostUrgent, type CampaignPlace } from './campaigns.ts';
import { notificationPolicyFor, urgentReason } from './notificationPolicy.ts';
import {
  campaignMessageKey,
  decisionRequestText,
  MESSAGE_EXPOSURES,
  notificationEvent,
  refreshCampaignMessage,
  sendCampaignMessage,
  sendDigest,
} from './notify.ts';

export interface AdmissionNotice {
  /** The event each admitted exposure records about it. */
  event: { type: string; reason: string; data: Record<string, unknown> };
  outcome?: NotifyOutcome;
}

async function wasDelivered(deps: Deps, key: string): Promise<boolean> {
  const { rows } = await deps.pool.query<{ delivered: boolean }>(
    `select jsonb_array_length(receipt -> 'delivered') > 0 as delivered from notifications where key = $1`,
    [key],
  );
  return rows[0]?.delivered ?? false;
}

export async function askOnAdmission(
  deps: Deps,
  place: CampaignPlace,
  fresh: (TriageResult & { scanId: number })[],
  opts: { baseline: boolean },
): Promise<AdmissionNotice> {
  if (opts.baseline)
    return {
      event: {
        type: 'queued',
        reason: 'filed silently by a backlog import (baseline): the owner gets one summary of it',
        data: { campaignId: place.campaignId, baseline: true },
      },
    };
  const policy = notificationPolicyFor(deps.config, place.scope, place.owner);
  const why = urgentReason(policy, fresh);
  if (why === undefined)
    return {
      event: {
        type: 'queued',
        reason: `${mostUrgent(fresh.map((j) => j.priority))} is not urgent under the notification policy: in ${
          place.owner ?? 'the owner'
        }'s daily queue (${policy.queue.time} ${policy.queue.timezone})`,
        data: { campaignId: place.campaignId },
      },
    };
  const campaign = await campaignSummary(deps.pool, place.campaignId, { limit: MESSAGE_EXPOSURES });
  if (!campaign) throw new Error(`campaign ${place.campaignId} does not exist`);
  const original = campaignMessageKey(place.campaignId);
  const scanId = fresh[0]!.scanId;
  const again = await wasDelivered(deps, original);
  const outcome = await sendCampaignMessage(deps, {
    key: again ? `${original}:joined:${scanId}` : original,
    kind: again ? 'reminder' : 'decision-request',
    scope: place.scope,
    ...(place.owner ? { owner: place.owner } : {}),
    campaign,
    audiences: ['owner'],
    text: again
      ? `${fresh.length} new exposure${fresh.length === 1 ? '' : 's'} joined this campaign (scan ${scanId}, ${why})`
      : decisionRequestText(campaign, `new exposures, ${why}`),
    ...(again ? { thread: original, lines: fresh.slice(0, MESSAGE_EXPOSURES).map(lineOf) } : {}),
    exposureId: fresh[0]!.exposureId,
  });
  if (again) await refreshCampaignMessage(deps, place.campaignId);
  const e = notificationEvent('decision request', outcome);
  const { channels: _c, ...receipt } = outcome as NotifyOutcome & { channels?: unknown };
  return {
    event: { ...e, data: { campaignId: place.campaignId, notificationKey: original, receipt } },
    outcome,
  };
}

function lineOf(j: TriageResult): string {
  return `${j.priority} ${j.weaknessKey} on asset ${j.assetId}`;
}

/**
 * After a backlog import: one message per owner saying what was filed for them — campaigns, most
 * urgent first, with their exposure counts and deadlines. Once per owner and import.
 */
export async function sendOnboardingSummaries(
  deps: Deps,
  scanIds: number[],
  exposureIds: string[],
): Promise<void> {
  const { rows } = await deps.pool.query<{
    owner: string | null;
    scope: string;
    campaign_id: string;
    n: number;
  }>(
    `select owner, coalesce(scope, 'unscoped') as scope, campaign_id, count(*)::int as n from exposures
      where id = any($1::text[]) and campaign_id is not null
      group by owner, scope, campaign_id`,
    [exposureIds],
  );
  const byOwner = new Map<string, { scope: string; campaigns: string[]; exposures: number }>();
  for (const r of rows) {
    if (!r.owner) continue;
    const o = byOwner.get(r.owner) ?? { scope: r.scope, campaigns: [], exposures: 0 };
    o.campaigns.push(r.campaign_id);
    o.exposures += r.n;
    byOwner.set(r.owner, o);
  }
  const tag = scanIds.sort((a, b) => a - b).join('+');
  for (const [owner, o] of byOwner) {
    const summaries = (
      await Promise.all(o.campaigns.map((id) => campaignSummary(deps.pool, id, { limit: 3 })))
    ).filter((c): c is CampaignSummary => c !== undefined);
    summaries.sort(byUrgency);
    const listed = summaries.slice(0, 20);
    const n: DigestNotification = {
      key: `onboarding:${owner}:${tag}`,
      kind: 'onboarding',
      to: [owner],
      title: `Backlog imported: ${summaries.length} campaign${summaries.length === 1 ? '' : 's'}, ${o.exposures} exposure${
        o.exposures === 1 ? '' : 's'
      } for you`,
      text: 'Filed without a message each. Their SLA clocks started when ctem learned of them; the most urgent are listed first, and your daily queue will list what waits for a decision.',
      campaigns: listed.map((campaign) => ({ campaign })),
      ...(summaries.length > listed.length ? { more: summaries.length - listed.length } : {}),
    };
    const outcome = await sendDigest(deps, n, o.scope);
    await deps.pool.query(
      `insert into owner_digests (key, person, kind, campaigns, exposures, receipt) values ($1, $2, 'onboarding', $3, $4, $5)
       on conflict (key) do nothing`,
      [n.key, owner, summaries.length, o.exposures, JSON.stringify(outcome)],
    );
  }
}

const RANK: Record<string, number> = { Act: 3, Attend: 2, 'Track*': 1, Track: 0 };

/** Most urgent first: priority, then the earliest deadline. */
export function byUrgency(a: CampaignSummary, b: CampaignSummary): number {
  return (
    (RANK[b.priority] ?? -1) - (RANK[a.priority] ?? -1) ||
    (a.slaDue ?? '9999').localeCompare(b.slaDue ?? '9999') ||
    a.id.localeCompare(b.id)
  );
}
