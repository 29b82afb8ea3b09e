// Escalations to managers, the CISO, approvers, security leads and scope channels, gathered: the
// campaigns write what escalated (escalation_items, lifecycle/notify.ts), and this sends one message
// per audience once its oldest waiting item is a window old — the recipient's own escalationWindow
// (the person's, else the scope's, else 1h; a channel follows its scope), the same window that
// decided it was gathered rather than sent at once — listing every campaign that escalated to it
// meanwhile. Items are claimed under the message's key before it is sent, and a claimed key with no
// message is sent first on the next run: nothing is lost, nothing is sent twice. Items for an
// owner's daily queue (audience "queue:<person>") are lifecycle/queue.ts's, not sent here.
import type { Deps } from '../runtime/deps.ts';
import { inTransaction } from '../runtime/pool.ts';
import type { CampaignSummary, DigestNotification } from '../domain/ports.ts';
import { campaignSummary } from './campaigns.ts';
import { escalationWindowFor } from './notificationPolicy.ts';
import { sendDigest } from './notify.ts';
import { byUrgency } from './admissionNotices.ts';

interface Item {
  key: string;
  audience: string;
  scope: string;
  campaign_id: string;
  level: number;
  kind: string;
  line: string;
  created_at: Date;
  sent_key: string | null;
}

/** Campaigns an escalation message lists before "and N more". */
const LISTED = 25;

export interface EscalationRun {
  /** Messages sent (one per audience due). */
  messages: number;
  /** Items they carried. */
  items: number;
}

function recipient(audience: string): Pick<DigestNotification, 'to' | 'channels'> {
  const [kind, id] = [audience.slice(0, audience.indexOf(':')), audience.slice(audience.indexOf(':') + 1)];
  if (kind === 'slack') return { to: [], channels: { slack: id } };
  if (kind === 'teams') return { to: [], channels: { teams: id } };
  return { to: [id] };
}

async function send(deps: Deps, key: string, items: Item[]): Promise<void> {
  const byCampaign = new Map<string, Item[]>();
  for (const i of items) byCampaign.set(i.campaign_id, [...(byCampaign.get(i.campaign_id) ?? []), i]);
  const summaries = (
    await Promise.all([...byCampaign.keys()].map((id) => campaignSummary(deps.pool, id, { limit: 3 })))
  ).filter((c): c is CampaignSummary => c !== undefined);
  summaries.sort(byUrgency);
  const listed = summaries.slice(0, LISTED);
  const top = Math.max(...items.map((i) => i.level));
  const n: DigestNotification = {
    key,
    kind: 'escalations',
    ...recipient(items[0]!.audience),
    title: `Escalated: ${summaries.length} campaign${summaries.length === 1 ? '' : 's'} past or near their deadline${
      top >= 2 ? ' (CISO level)' : ''
    }`,
    text: `What escalated since ${items[0]!.created_at.toISOString().slice(0, 16).replace('T', ' ')} UTC, most urgent first.`,
    campaigns: listed.map((campaign) => {
      const mine = byCampaign.get(campaign.id) ?? [];
      return {
        campaign,
        level: Math.max(...mine.map((i) => i.level)),
        lines: [...new Set(mine.flatMap((i) => i.line.split('\n')))].slice(0, 5),
      };
    }),
    ...(summaries.length > listed.length ? { more: summaries.length - listed.length } : {}),
  };
  await sendDigest(deps, n, items[0]!.scope);
}

/** Send every audience's escalations whose window has passed. */
export async function sendEscalationDigests(
  deps: Deps,
  nowMs: number = deps.clock(),
): Promise<EscalationRun> {
  const run: EscalationRun = { messages: 0, items: 0 };
  // Claimed by a run that did not get to send them.
  const { rows: orphans } = await deps.pool.query<Item>(
    `select i.* from escalation_items i
      where i.audience not like 'queue:%' and i.sent_key is not null
        and not exists (select 1 from notifications n where n.key = i.sent_key)
      order by i.created_at`,
  );
  const orphanKeys = new Map<string, Item[]>();
  for (const i of orphans) orphanKeys.set(i.sent_key!, [...(orphanKeys.get(i.sent_key!) ?? []), i]);
  for (const [key, items] of orphanKeys) {
    await send(deps, key, items);
    run.messages++;
    run.items += items.length;
  }
  const { rows: waiting } = await deps.pool.query<{ audience: string; scope: string; oldest: Date }>(
    `select audience, scope, min(created_at) as oldest from escalation_items
      where sent_key is null and audience not like 'queue:%'
      group by audience, scope order by audience`,
  );
  const due = new Set<string>();
  for (const w of waiting) {
    const person = w.audience.startsWith('person:') ? w.audience.slice(7) : undefined;
    const window = escalationWindowFor(deps.config, w.scope, person);
    if (w.oldest.getTime() + window <= nowMs) due.add(w.audience);
  }
  for (const audience of due) {
    const claimed = await inTransaction(deps.pool, async (db) => {
      await db.query('select pg_advisory_xact_lock(hashtextextended($1, 7426021))', [audience]);
      const { rows } = await db.query<Item>(
        `select * from escalation_items where audience = $1 and sent_key is null order by created_at, key`,
        [audience],
      );
      if (rows.length === 0) return undefined;
      const key = `escalations:${audience}:${rows[0]!.created_at.toISOString()}`;
      await db.query(`update escalation_items set sent_key = $2 where key = any($1::text[])`, [
        rows.map((r) => r.key),
        key,
      ]);
      return { key, rows };
    });
    if (!claimed) continue;
    await send(deps, claimed.key, claimed.rows);
    run.messages++;
    run.items += claimed.rows.length;
  }
  return run;
}
