// The daily "your queue" message: once a day, at the time the person's notification policy says
// (lifecycle/notificationPolicy.ts), each owner gets one message listing the campaigns waiting for
// their decision, most urgent first, with bulk actions. What is urgent was sent at once already;
// everything else reaches them here. Once per person and local day, whatever the retries.
import type { Deps } from '../runtime/deps.ts';
import type { CampaignSummary, DigestNotification } from '../domain/ports.ts';
import { campaignSummary } from './campaigns.ts';
import { notificationPolicyFor, queueDayAt } from './notificationPolicy.ts';
import { sendDigest } from './notify.ts';
import { byUrgency } from './admissionNotices.ts';

/** Campaigns a queue message lists before "and N more". */
export const QUEUE_CAMPAIGNS = 25;

export interface QueueRun {
  /** People whose queue was sent in this run. */
  sent: string[];
  /** People with campaigns waiting whose queue time has not come (or was sent today already). */
  waiting: number;
}

/** Send every owner's daily queue that is due at `nowMs` and not yet sent for their day. */
export async function sendDailyQueues(deps: Deps, nowMs: number = deps.clock()): Promise<QueueRun> {
  const { rows } = await deps.pool.query<{ owner: string; scope: string; campaign_id: string; n: number }>(
    `select e.owner, coalesce(e.scope, 'unscoped') as scope, e.campaign_id, count(*)::int as n
       from exposures e
      where e.state in ('awaiting-decision', 'reopened') and e.owner is not null and e.campaign_id is not null
      group by e.owner, e.scope, e.campaign_id`,
  );
  const byOwner = new Map<string, { scopes: string[]; campaigns: Map<string, number> }>();
  for (const r of rows) {
    const o = byOwner.get(r.owner) ?? { scopes: [] as string[], campaigns: new Map<string, number>() };
    if (!o.scopes.includes(r.scope)) o.scopes.push(r.scope);
    o.campaigns.set(r.campaign_id, r.n);
    byOwner.set(r.owner, o);
  }
  const run: QueueRun = { sent: [], waiting: 0 };
  for (const [person, o] of byOwner) {
    const scope = o.scopes.sort()[0]!;
    const policy = notificationPolicyFor(deps.config, scope, person);
    const day = queueDayAt(policy, nowMs);
    const key = `queue:${person}:${day}`;
    if (!day || (await alreadySent(deps, key))) {
      run.waiting++;
      continue;
    }
    const summaries = (
      await Promise.all([...o.campaigns.keys()].map((id) => campaignSummary(deps.pool, id, { limit: 3 })))
    ).filter((c): c is CampaignSummary => c !== undefined);
    summaries.sort(byUrgency);
    const exposures = [...o.campaigns.values()].reduce((a, b) => a + b, 0);
    const listed = summaries.slice(0, QUEUE_CAMPAIGNS);
    const n: DigestNotification = {
      key,
      kind: 'queue',
      to: [person],
      title: `Your queue for ${day}: ${summaries.length} campaign${summaries.length === 1 ? '' : 's'}, ${exposures} exposure${
        exposures === 1 ? '' : 's'
      } waiting for your decision`,
      text: 'One decision per campaign covers all its exposures; open a campaign to make an exception for one asset.',
      campaigns: listed.map((campaign) => {
        const waiting = o.campaigns.get(campaign.id) ?? 0;
        return {
          campaign,
          lines: [
            `${waiting} of ${campaign.totals.open} open exposure${campaign.totals.open === 1 ? '' : 's'} waiting for a decision${
              campaign.slaDue ? `; due ${campaign.slaDue.slice(0, 10)}` : ''
            }`,
          ],
        };
      }),
      ...(summaries.length > listed.length ? { more: summaries.length - listed.length } : {}),
    };
    const outcome = await sendDigest(deps, n, scope);
    await deps.pool.query(
      `insert into owner_digests (key, person, kind, campaigns, exposures, receipt) values ($1, $2, 'queue', $3, $4, $5)
       on conflict (key) do nothing`,
      [key, person, summaries.length, exposures, JSON.stringify(outcome)],
    );
    run.sent.push(person);
  }
  return run;
}

async function alreadySent(deps: Deps, key: string): Promise<boolean> {
  const { rowCount } = await deps.pool.query('select 1 from owner_digests where key = $1', [key]);
  return (rowCount ?? 0) > 0;
}
