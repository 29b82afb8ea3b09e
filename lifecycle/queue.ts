// The daily "your queue" message: once a day, at the time the person's notification policy says
// (lifecycle/notificationPolicy.ts), each owner gets one message with everything waiting for them:
// - every campaign with exposures waiting for their decision, most urgent first, with bulk
//   actions. Urgent campaigns are listed too, marked as sent at once already: the queue is the one
//   place that shows all that waits, and a decision made from it covers the urgent one as well;
// - every reminder queued for them since their last queue (lifecycle/notify.ts writes them to
//   escalation_items under the audience "queue:<person>"), under its campaign, once. A reminder
//   about exposures closed meanwhile is dropped rather than sent stale.
// Once per person and local day, whatever the retries: the person's reminders are claimed under
// the day's key before the message is sent (sent once per key by notify.ts sendOnce), and a claim
// whose message never went out is taken over by the next run, so a crash between claiming,
// sending and recording loses nothing and sends nothing twice.
import type { Deps } from '../runtime/deps.ts';
import type { PoolClient } from '../runtime/pool.ts';
import type { CampaignSummary, DigestNotification } from '../domain/ports.ts';
import { terminalStates } from '../domain/exposure.ts';
import { campaignSummary } from './campaigns.ts';
import { outcomeLabel } from './triage.ts';
import { notificationPolicyFor, queueDayAt, urgentReason, type UrgencyFacts } from './notificationPolicy.ts';
import { campaignMessageKey, queueAudience, sendDigest } from './notify.ts';
import { byUrgency } from './admissionNotices.ts';

/** Campaigns a queue message lists before "and N more". */
export const QUEUE_CAMPAIGNS = 25;
/** Reminder lines a campaign of the queue shows before "and N more". */
const REMINDER_LINES = 10;

export interface QueueRun {
  /** People whose queue was sent in this run. */
  sent: string[];
  /** People with something waiting whose queue time has not come (or was sent today already). */
  waiting: number;
}

interface Waiting {
  scopes: Set<string>;
  /** Campaign → its exposures waiting for a decision (their priority and KEV). */
  campaigns: Map<string, { scope: string; facts: UrgencyFacts[] }>;
}

/** A reminder not yet in a sent queue: unclaimed, or claimed for a queue that never went out. */
const PENDING = `i.audience like 'queue:%' and (i.sent_key is null or (i.sent_key like 'queue:%'
  and not exists (select 1 from notifications n where n.key = i.sent_key)))`;

/** Who has something for a queue: decisions waiting, or reminders not yet sent. */
async function whatWaits(deps: Deps): Promise<Map<string, Waiting>> {
  const { rows } = await deps.pool.query<{
    owner: string;
    scope: string;
    campaign_id: string;
    priority: string | null;
    kev: boolean;
  }>(
    `select e.owner, coalesce(e.scope, 'unscoped') as scope, e.campaign_id, e.priority, e.kev
       from exposures e
      where e.state in ('awaiting-decision', 'reopened') and e.owner is not null and e.campaign_id is not null`,
  );
  const { rows: reminded } = await deps.pool.query<{ person: string; scope: string }>(
    `select distinct substr(i.audience, 7) as person, i.scope from escalation_items i where ${PENDING}`,
  );
  const byOwner = new Map<string, Waiting>();
  const of = (person: string) => {
    const o = byOwner.get(person) ?? { scopes: new Set<string>(), campaigns: new Map() };
    byOwner.set(person, o);
    return o;
  };
  for (const r of rows) {
    const o = of(r.owner);
    o.scopes.add(r.scope);
    const c = o.campaigns.get(r.campaign_id) ?? { scope: r.scope, facts: [] };
    c.facts.push({ priority: outcomeLabel(r.priority ?? 'track'), kev: r.kev });
    o.campaigns.set(r.campaign_id, c);
  }
  for (const r of reminded) of(r.person).scopes.add(r.scope);
  return byOwner;
}

/** Send every owner's daily queue that is due at `nowMs` and not yet sent for their day. */
export async function sendDailyQueues(deps: Deps, nowMs: number = deps.clock()): Promise<QueueRun> {
  const run: QueueRun = { sent: [], waiting: 0 };
  for (const [person, waiting] of await whatWaits(deps)) {
    const scope = [...waiting.scopes].sort()[0]!;
    const day = queueDayAt(notificationPolicyFor(deps.config, scope, person), nowMs);
    const sent = day
      ? await underPersonLock(deps, person, (db) => sendQueue(deps, db, person, day, scope, waiting))
      : false;
    if (sent) run.sent.push(person);
    else run.waiting++;
  }
  return run;
}

/**
 * Run `fn` holding the person's queue lock (a session lock: it is released if the process dies);
 * false without running it when another run holds it.
 */
async function underPersonLock(
  deps: Deps,
  person: string,
  fn: (db: PoolClient) => Promise<boolean>,
): Promise<boolean> {
  const db = await deps.pool.connect();
  try {
    const { rows } = await db.query<{ locked: boolean }>(
      'select pg_try_advisory_lock(hashtextextended($1, 7426033)) as locked',
      [queueAudience(person)],
    );
    if (!rows[0]?.locked) return false;
    try {
      return await fn(db);
    } finally {
      await db.query('select pg_advisory_unlock(hashtextextended($1, 7426033))', [queueAudience(person)]);
    }
  } finally {
    db.release();
  }
}

interface Reminder {
  key: string;
  campaign_id: string;
  kind: string;
  level: number;
  line: string;
  exposure_ids: string[];
}

/** One person's queue for `day`: claim their reminders, send, record. False when already sent. */
async function sendQueue(
  deps: Deps,
  db: PoolClient,
  person: string,
  day: string,
  scope: string,
  waiting: Waiting,
): Promise<boolean> {
  const key = `queue:${person}:${day}`;
  if ((await db.query('select 1 from owner_digests where key = $1', [key])).rowCount) return false;
  // Sent but not recorded (a crash in between): what it carried is what was claimed for it then.
  const sentBefore = (await db.query('select 1 from notifications where key = $1', [key])).rowCount;
  if (!sentBefore)
    await db.query(`update escalation_items i set sent_key = $2 where i.audience = $1 and ${PENDING}`, [
      queueAudience(person),
      key,
    ]);
  const { rows: claimed } = await db.query<Reminder>(
    `select key, campaign_id, kind, level, line, exposure_ids from escalation_items
      where sent_key = $1 order by created_at, key`,
    [key],
  );
  const reminders = await liveReminderLines(db, claimed);
  const campaignIds = [...new Set([...waiting.campaigns.keys(), ...reminders.keys()])];
  const summaries = (
    await Promise.all(campaignIds.map((id) => campaignSummary(deps.pool, id, { limit: 3 })))
  ).filter((c): c is CampaignSummary => c !== undefined);
  if (summaries.length === 0 && !sentBefore) {
    // Only reminders about what closed meanwhile: nothing to say today; they are done with.
    await db.query(`update escalation_items set sent_key = 'stale:' || $1 where sent_key = $1`, [key]);
    return false;
  }
  summaries.sort(byUrgency);
  const sentAtOnce = await originalsSent(db, summaries);
  const listed = summaries.slice(0, QUEUE_CAMPAIGNS);
  const exposures = [...waiting.campaigns.values()].reduce((n, c) => n + c.facts.length, 0);
  const reminderCount = [...reminders.values()].reduce((n, lines) => n + lines.length, 0);
  const n: DigestNotification = {
    key,
    kind: 'queue',
    to: [person],
    title: queueTitle(day, waiting.campaigns.size, exposures, reminderCount, summaries.length),
    text: waiting.campaigns.size
      ? 'One decision per campaign covers all its exposures; open a campaign to make an exception for one asset.'
      : 'Nothing waits for your decision; these reminders were queued since your last queue.',
    campaigns: listed.map((campaign) => {
      const w = waiting.campaigns.get(campaign.id);
      const why = w && urgentReason(notificationPolicyFor(deps.config, w.scope, person), w.facts);
      const sentOn = sentAtOnce.get(campaign.id);
      return {
        campaign,
        ...(why ? { urgent: why } : {}),
        lines: [
          ...(w ? [waitingLine(w.facts.length, campaign)] : []),
          ...(why
            ? [`Urgent (${why}): ${sentOn ? `sent to you at once on ${sentOn}` : 'not sent to you yet'}`]
            : []),
          ...cut(reminders.get(campaign.id) ?? []),
        ],
      };
    }),
    ...(summaries.length > listed.length ? { more: summaries.length - listed.length } : {}),
  };
  const outcome = await sendDigest(deps, n, scope);
  await db.query(
    `insert into owner_digests (key, person, kind, campaigns, exposures, receipt) values ($1, $2, 'queue', $3, $4, $5)
     on conflict (key) do nothing`,
    [key, person, summaries.length, exposures, JSON.stringify(outcome)],
  );
  return !outcome.alreadySent;
}

function waitingLine(waiting: number, c: CampaignSummary): string {
  return `${waiting} of ${c.totals.open} open exposure${c.totals.open === 1 ? '' : 's'} waiting for a decision${
    c.slaDue ? `; due ${c.slaDue.slice(0, 10)}` : ''
  }`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function queueTitle(day: string, campaigns: number, exposures: number, reminders: number, listed: number) {
  const parts = [
    ...(campaigns
      ? [`${plural(campaigns, 'campaign')}, ${plural(exposures, 'exposure')} waiting for your decision`]
      : []),
    ...(reminders
      ? [`${plural(reminders, 'reminder')}${campaigns ? '' : ` about ${plural(listed, 'campaign')}`}`]
      : []),
  ];
  return `Your queue for ${day}: ${parts.join('; ') || 'nothing new'}`;
}

/**
 * The reminders' lines per campaign, oldest first, without repeats, each only while the exposure it
 * is about is still open in that campaign ("Reminder: …", "Reminder (level 1): …", "Escalation (level 2): …").
 */
async function liveReminderLines(db: PoolClient, items: Reminder[]): Promise<Map<string, string[]>> {
  const { rows } = await db.query<{ id: string; campaign_id: string | null }>(
    `select id, campaign_id from exposures where id = any($1::text[]) and state <> all($2::text[])`,
    [[...new Set(items.flatMap((i) => i.exposure_ids))], terminalStates],
  );
  const openIn = new Map(rows.map((r) => [r.id, r.campaign_id]));
  const byCampaign = new Map<string, string[]>();
  for (const item of items) {
    const lines = item.line.split('\n');
    // One line per exposure, in order (workflows/campaign/turn.ts); otherwise keep them all.
    const paired = lines.length === item.exposure_ids.length;
    const live = lines.filter((_, i) => !paired || openIn.get(item.exposure_ids[i]!) === item.campaign_id);
    if (!paired && !item.exposure_ids.some((id) => openIn.get(id) === item.campaign_id)) continue;
    // A later step of the SLA ladder says so: the same line again is not the same reminder.
    const label =
      item.kind === 'escalation'
        ? `Escalation (level ${item.level})`
        : item.level > 0
          ? `Reminder (level ${item.level})`
          : 'Reminder';
    const all = byCampaign.get(item.campaign_id) ?? [];
    for (const l of live) if (!all.includes(`${label}: ${l}`)) all.push(`${label}: ${l}`);
    if (all.length) byCampaign.set(item.campaign_id, all);
  }
  return byCampaign;
}

function cut(lines: string[]): string[] {
  return lines.length <= REMINDER_LINES
    ? lines
    : [...lines.slice(0, REMINDER_LINES), `… and ${plural(lines.length - REMINDER_LINES, 'more reminder')}`];
}

/** The day each campaign's original message was delivered (sent at once because it was urgent). */
async function originalsSent(db: PoolClient, campaigns: CampaignSummary[]): Promise<Map<string, string>> {
  const { rows } = await db.query<{ key: string; at: Date }>(
    `select key, at from notifications
      where key = any($1::text[]) and jsonb_array_length(receipt -> 'delivered') > 0`,
    [campaigns.map((c) => campaignMessageKey(c.id))],
  );
  const byKey = new Map(rows.map((r) => [r.key, r.at.toISOString().slice(0, 10)]));
  const out = new Map<string, string>();
  for (const c of campaigns) {
    const at = byKey.get(campaignMessageKey(c.id));
    if (at) out.set(c.id, at);
  }
  return out;
}
