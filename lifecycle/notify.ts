// Reaching people about campaigns, under the notification policy (lifecycle/notificationPolicy.ts):
// - a decision request, a reminder or an escalation to the owner goes out at once only when the
//   exposures it is about are urgent under the owner's policy (Act, KEV…; an SLA breach); otherwise
//   it waits for the owner's next daily queue (lifecycle/queue.ts): a reminder is written down for
//   it (escalation_items, audience "queue:<person>"), a decision request needs nothing written
//   since the queue lists every campaign still waiting for a decision;
// - each campaign has one original message per conversation ("campaign:<id>"): asking again,
//   reminders and escalations to the owner are replies in its thread, and the original is updated in
//   place;
// - escalations to managers, the CISO and channels are gathered per recipient and window
//   (lifecycle/escalations.ts), except for the recipients whose own window is 0s: those get it at
//   once (lifecycle/notificationPolicy.ts says whose policy decides what).
// One message per notification key whatever the retries: the key is locked while sending and stored
// after. With no notifier configured, the record says nobody was told.
import type { Config } from '../domain/config.ts';
import type { EscalationAudience } from '../domain/sla.ts';
import type { Deps } from '../runtime/deps.ts';
import type { Pool, PoolClient } from '../runtime/pool.ts';
import type {
  CampaignSummary,
  DigestNotification,
  NotificationKind,
  NotificationReceipt,
  OwnerNotification,
} from '../domain/ports.ts';
import type { AskOwnerRequest, CampaignNotifyRequest, NotifyOutcome } from '../contracts/lifecycle.ts';
import type { RolloutNotifyRequest } from '../contracts/patching.ts';
import { campaignSummary } from './campaigns.ts';
import { outcomeLabel } from './triage.ts';
import {
  escalationWindowFor,
  notificationPolicyFor,
  urgentReason,
  type UrgencyFacts,
} from './notificationPolicy.ts';

/** Exposures a message lists before "and N more". */
export const MESSAGE_EXPOSURES = 10;

/** The escalation_items audience of what waits for a person's next daily queue. */
export function queueAudience(personId: string): string {
  return `queue:${personId}`;
}

/** The key of a campaign's original message: asks, reminders and escalations thread under it. */
export function campaignMessageKey(campaignId: string): string {
  return `campaign:${campaignId}`;
}

export interface Recipients {
  people: string[];
  channels?: { slack?: string; teams?: string };
}

/** People and channels an audience list reaches in a scope. */
export function recipientsOf(
  config: Config,
  scopeName: string,
  owner: string | undefined,
  audiences: EscalationAudience[],
): Recipients {
  const scope = config.scopes.find((s) => s.name === scopeName);
  const people = new Set<string>();
  const owners = owner ? [owner] : (scope?.roles.owner ?? []);
  let channels: { slack?: string; teams?: string } | undefined;
  for (const a of audiences) {
    if (a === 'owner') owners.forEach((p) => people.add(p));
    else if (a === 'manager') {
      for (const o of owners) {
        const manager = config.people.find((p) => p.id === o)?.manager;
        if (manager) people.add(manager);
      }
    } else if (a === 'channel') {
      if (scope && (scope.channel.slack || scope.channel.teams)) channels = { ...scope.channel };
    } else (scope?.roles[a] ?? []).forEach((p) => people.add(p));
  }
  return { people: [...people], ...(channels ? { channels } : {}) };
}

function mergeReceipts(receipts: NotificationReceipt[]): NotificationReceipt {
  const delivered = receipts.flatMap((r) => r.delivered);
  const skipped = receipts.map((r) => r.skipped).filter((s): s is string => !!s);
  return { delivered, ...(delivered.length === 0 && skipped.length ? { skipped: skipped.join('; ') } : {}) };
}

/** A decision request speaks for the whole campaign: what to do, on what, by when. */
export function decisionRequestText(c: CampaignSummary, why: string): string {
  const open = c.totals.open;
  return `${c.priority}: ${c.action} — ${open} open exposure${open === 1 ? '' : 's'} on ${c.totals.assets} asset${
    c.totals.assets === 1 ? '' : 's'
  }${c.slaDue ? `; due ${c.slaDue.slice(0, 10)}` : ''}; ${why}`;
}

interface Sendable {
  key: string;
  recipients: Recipients;
  /** Why nothing can be sent, before trying (nobody to reach). */
  audiences: string;
  scope: string;
  campaignId?: string;
  exposureId?: string;
  kind: string;
  level?: number;
  send(deps: Deps): Promise<NotificationReceipt>;
}

/** Lock the key, send unless sent before, store the receipt: once per key whatever the retries. */
async function sendOnce(deps: Deps, s: Sendable): Promise<NotifyOutcome> {
  const { pool } = deps;
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query('select pg_advisory_xact_lock(hashtextextended($1, 7426005))', [s.key]);
    const prior = await client.query<{ receipt: NotificationReceipt; recipients: string[] }>(
      'select receipt, recipients from notifications where key = $1',
      [s.key],
    );
    let outcome: NotifyOutcome;
    if (prior.rows[0]) {
      const r = prior.rows[0];
      outcome = { ...r.receipt, sent: 'now', recipients: r.recipients, alreadySent: true };
    } else {
      let receipt: NotificationReceipt;
      if (s.recipients.people.length === 0 && !s.recipients.channels)
        receipt = {
          delivered: [],
          skipped: `nobody to reach for ${s.audiences} in scope ${s.scope} (add people under scopes[].roles)`,
        };
      else if (deps.integrations.notifiers().length === 0)
        receipt = {
          delivered: [],
          skipped:
            'no notifier configured (integrations.slack, integrations.teams or integrations.console): nobody was told',
        };
      else receipt = await s.send(deps);
      await client.query(
        `insert into notifications (key, kind, campaign_id, exposure_id, level, recipients, receipt)
         values ($1, $2, $3, $4, $5, $6, $7) on conflict (key) do nothing`,
        [
          s.key,
          s.kind,
          s.campaignId ?? null,
          s.exposureId ?? null,
          s.level ?? null,
          s.recipients.people,
          JSON.stringify(receipt),
        ],
      );
      outcome = {
        ...receipt,
        sent: receipt.delivered.length ? 'now' : 'skipped',
        recipients: s.recipients.people,
        alreadySent: false,
      };
    }
    await client.query('commit');
    return outcome;
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

export interface CampaignMessage {
  key: string;
  kind: NotificationKind;
  scope: string;
  owner?: string;
  campaign: CampaignSummary;
  audiences: EscalationAudience[];
  text: string;
  level?: number;
  lines?: string[];
  thread?: string;
  patchRolloutId?: string;
  /** The exposure the receipt is filed under (the first the message is about). */
  exposureId?: string;
  /** Reach these instead of the audiences' people and channels. */
  recipients?: Recipients;
}

/** One message about one campaign, sent once per key. */
export async function sendCampaignMessage(deps: Deps, m: CampaignMessage): Promise<NotifyOutcome> {
  const recipients = m.recipients ?? recipientsOf(deps.config, m.scope, m.owner, m.audiences);
  const n: OwnerNotification = {
    key: m.key,
    kind: m.kind,
    to: recipients.people,
    ...(recipients.channels ? { channels: recipients.channels } : {}),
    campaign: m.campaign,
    ...(m.level !== undefined ? { level: m.level } : {}),
    text: m.text,
    ...(m.lines?.length ? { lines: m.lines } : {}),
    ...(m.thread ? { thread: m.thread } : {}),
    ...(m.patchRolloutId ? { patchRolloutId: m.patchRolloutId } : {}),
  };
  return await sendOnce(deps, {
    key: m.key,
    recipients,
    audiences: m.audiences.join(', '),
    scope: m.scope,
    campaignId: m.campaign.id,
    ...(m.exposureId ? { exposureId: m.exposureId } : {}),
    kind: m.kind,
    ...(m.level !== undefined ? { level: m.level } : {}),
    send: async (d) => mergeReceipts(await Promise.all(d.integrations.notifiers().map((x) => x.notify(n)))),
  });
}

/** One message about many campaigns (queue, escalations, onboarding), sent once per key. */
export async function sendDigest(deps: Deps, n: DigestNotification, scope: string): Promise<NotifyOutcome> {
  return await sendOnce(deps, {
    key: n.key,
    recipients: { people: n.to, ...(n.channels ? { channels: n.channels } : {}) },
    audiences: n.kind,
    scope,
    kind: n.kind,
    send: async (d) => mergeReceipts(await Promise.all(d.integrations.notifiers().map((x) => x.digest(n)))),
  });
}

/**
 * Show the campaign's original message again with what it holds now (header, what is left, the
 * buttons still valid), in every conversation it was posted to. Nothing is sent when it never was.
 */
export async function refreshCampaignMessage(deps: Deps, campaignId: string): Promise<void> {
  const key = campaignMessageKey(campaignId);
  const { rows } = await deps.pool.query<{ recipients: string[]; receipt: NotificationReceipt }>(
    'select recipients, receipt from notifications where key = $1',
    [key],
  );
  const sent = rows[0];
  if (!sent || sent.receipt.delivered.length === 0) return;
  const campaign = await campaignSummary(deps.pool, campaignId, { limit: MESSAGE_EXPOSURES });
  if (!campaign) return;
  const n: OwnerNotification = {
    key,
    kind: 'decision-request',
    to: sent.recipients,
    campaign,
    text: decisionRequestText(campaign, 'updated'),
  };
  await Promise.all(deps.integrations.notifiers().map((x) => x.notify(n)));
}

/** What urgency is judged on, for these exposures (lifecycle/notificationPolicy.ts urgentReason). */
export async function urgencyFacts(db: Pool | PoolClient, exposureIds: string[]): Promise<UrgencyFacts[]> {
  const { rows } = await db.query<{ priority: string | null; kev: boolean }>(
    'select priority, kev from exposures where id = any($1::text[])',
    [exposureIds],
  );
  return rows.map((r) => ({ priority: outcomeLabel(r.priority ?? 'track'), kev: r.kev }));
}

async function wasSent(db: Pool | PoolClient, key: string): Promise<boolean> {
  const { rows } = await db.query<{ delivered: boolean }>(
    `select jsonb_array_length(receipt -> 'delivered') > 0 as delivered from notifications where key = $1`,
    [key],
  );
  return rows[0]?.delivered ?? false;
}

/** One audit event per exposure, each once per key. */
export async function recordEach(
  db: Pool | PoolClient,
  keyPrefix: string,
  exposureIds: string[],
  type: string,
  reason: string,
  data: Record<string, unknown>,
  actor = 'system',
): Promise<void> {
  if (exposureIds.length === 0) return;
  await db.query(
    `insert into events (exposure_id, type, actor, reason, data, idempotency_key)
     select e, $2, $3, $4, $5::jsonb, $6 || ':' || e from unnest($1::text[]) as e
     on conflict (idempotency_key) do nothing`,
    [exposureIds, type, actor, reason, JSON.stringify(data), keyPrefix],
  );
}

/** How a notification reads in the exposures' audit trail. */
export function notificationEvent(kind: string, outcome: NotifyOutcome, channels?: Recipients['channels']) {
  const to = [...outcome.recipients, ...(channels ? Object.values(channels) : [])].join(', ');
  if (outcome.sent === 'queued')
    return {
      type: 'queued',
      reason: `${kind} not urgent under the notification policy: in the owner's daily queue`,
    };
  if (outcome.sent === 'aggregated')
    return { type: 'queued', reason: `${kind} gathered into the next escalation message to ${to}` };
  return outcome.skipped
    ? { type: 'notification-skipped', reason: `${kind} not sent: ${outcome.skipped}` }
    : {
        type: 'notified',
        reason: `${kind} ${outcome.alreadySent ? 'already sent for the campaign' : 'sent'} to ${to}`,
      };
}

/**
 * The owner has to decide on some of the campaign's exposures: at once when the campaign is urgent
 * (its original message the first time, a reply in its thread after that), else in the daily queue.
 */
export async function askOwner(deps: Deps, req: AskOwnerRequest): Promise<NotifyOutcome> {
  const campaign = await campaignSummary(deps.pool, req.campaignId, { limit: MESSAGE_EXPOSURES });
  if (!campaign) throw new Error(`campaign ${req.campaignId} does not exist`);
  const why = req.why.join('; ');
  const policy = notificationPolicyFor(deps.config, req.scope, req.owner);
  let outcome: NotifyOutcome;
  if (!urgentReason(policy, await urgencyFacts(deps.pool, req.exposureIds)))
    outcome = { delivered: [], sent: 'queued', recipients: req.owner ? [req.owner] : [], alreadySent: false };
  else {
    const original = campaignMessageKey(req.campaignId);
    const again = await wasSent(deps.pool, original);
    outcome = await sendCampaignMessage(deps, {
      key: again ? req.key : original,
      kind: again ? 'reminder' : 'decision-request',
      scope: req.scope,
      ...(req.owner ? { owner: req.owner } : {}),
      campaign,
      audiences: ['owner'],
      text: again ? `A decision is needed again: ${why}` : decisionRequestText(campaign, why),
      ...(again ? { thread: original } : {}),
      exposureId: req.exposureIds[0]!,
    });
    if (again) await refreshCampaignMessage(deps, req.campaignId);
  }
  const e = notificationEvent('decision request', outcome);
  await recordEach(deps.pool, `${req.key}:asked`, req.exposureIds, e.type, e.reason, {
    campaignId: req.campaignId,
    why: req.why,
    receipt: outcome,
  });
  return outcome;
}

/**
 * A reminder or an escalation about some of the campaign's exposures. The owner hears it in the
 * campaign's thread when it is urgent under their policy (a breach, or urgent exposures), else in
 * their next daily queue; every other recipient gets it at once if their own escalation window is
 * 0s, else in their next escalation message.
 */
export async function notifyCampaign(deps: Deps, req: CampaignNotifyRequest): Promise<NotifyOutcome> {
  const campaign = await campaignSummary(deps.pool, req.campaignId, { limit: MESSAGE_EXPOSURES });
  if (!campaign) throw new Error(`campaign ${req.campaignId} does not exist`);
  const text =
    req.kind === 'escalation'
      ? `Escalation (level ${req.level}): ${campaign.action}`
      : `Reminder: ${campaign.action}`;
  const told: Told[] = [];
  if (req.audiences.includes('owner')) told.push({ outcome: await tellOwner(deps, req, campaign, text) });
  const others = req.audiences.filter((a) => a !== 'owner');
  if (others.length) told.push(...(await tellOthers(deps, req, campaign, others, text)));
  const outcomes = told.map((t) => t.outcome);
  const merged: NotifyOutcome = {
    delivered: outcomes.flatMap((o) => o.delivered),
    sent: outcomes.some((o) => o.sent === 'now')
      ? 'now'
      : outcomes.some((o) => o.sent === 'aggregated')
        ? 'aggregated'
        : outcomes.some((o) => o.sent === 'queued')
          ? 'queued'
          : 'skipped',
    recipients: [...new Set(outcomes.flatMap((o) => o.recipients))],
    alreadySent: outcomes.length > 0 && outcomes.every((o) => o.alreadySent),
    ...(outcomes.every((o) => o.skipped) && outcomes.length
      ? { skipped: outcomes.map((o) => o.skipped).join('; ') }
      : {}),
  };
  // Each part says what happened to its recipients: sent to some, gathered or queued for others.
  const parts = told.map((t) => notificationEvent(req.kind, t.outcome, t.channels));
  const e = {
    type: notificationEvent(req.kind, merged).type,
    reason: [...new Set(parts.map((p) => p.reason))].join('; '),
  };
  await recordEach(deps.pool, `${req.key}:notified`, req.exposureIds, e.type, e.reason, {
    campaignId: req.campaignId,
    kind: req.kind,
    level: req.level,
    audiences: req.audiences,
    receipt: merged,
  });
  return merged;
}

/** What one part of a message did, and the channels it was for. */
interface Told {
  outcome: NotifyOutcome;
  channels?: Recipients['channels'];
}

async function tellOwner(
  deps: Deps,
  req: CampaignNotifyRequest,
  campaign: CampaignSummary,
  text: string,
): Promise<NotifyOutcome> {
  const policy = notificationPolicyFor(deps.config, req.scope, req.owner);
  const urgent =
    req.kind === 'escalation'
      ? policy.urgentBreach
      : urgentReason(policy, await urgencyFacts(deps.pool, req.exposureIds)) !== undefined;
  if (!urgent) return await queueForOwner(deps, req);
  return await sendCampaignMessage(deps, {
    key: `${req.key}:owner`,
    kind: req.kind,
    scope: req.scope,
    ...(req.owner ? { owner: req.owner } : {}),
    campaign,
    audiences: ['owner'],
    text,
    level: req.level,
    lines: req.lines,
    thread: campaignMessageKey(req.campaignId),
    exposureId: req.exposureIds[0]!,
  });
}

/** Recipients whose own escalation window is 0s are told at once; the others' messages gather it. */
async function tellOthers(
  deps: Deps,
  req: CampaignNotifyRequest,
  campaign: CampaignSummary,
  others: EscalationAudience[],
  text: string,
): Promise<Told[]> {
  const recipients = recipientsOf(deps.config, req.scope, req.owner, others);
  const atOnce: Recipients = { people: [] };
  const gathered: Recipients = { people: [] };
  for (const p of recipients.people)
    (escalationWindowFor(deps.config, req.scope, p) === 0 ? atOnce : gathered).people.push(p);
  if (recipients.channels)
    (escalationWindowFor(deps.config, req.scope) === 0 ? atOnce : gathered).channels = recipients.channels;
  const told: Told[] = [];
  if (atOnce.people.length || atOnce.channels)
    told.push({
      ...(atOnce.channels ? { channels: atOnce.channels } : {}),
      outcome: await sendCampaignMessage(deps, {
        key: `${req.key}:others`,
        kind: req.kind,
        scope: req.scope,
        ...(req.owner ? { owner: req.owner } : {}),
        campaign,
        audiences: others,
        text,
        level: req.level,
        lines: req.lines,
        exposureId: req.exposureIds[0]!,
        recipients: atOnce,
      }),
    });
  if (gathered.people.length || gathered.channels || told.length === 0)
    told.push({
      ...(gathered.channels ? { channels: gathered.channels } : {}),
      outcome: await gatherEscalation(deps, req, gathered),
    });
  return told;
}

/** Write the request down for these audiences' next message (escalation digest or daily queue). */
async function holdFor(deps: Deps, req: CampaignNotifyRequest, audiences: string[]): Promise<void> {
  await deps.pool.query(
    `insert into escalation_items (key, audience, scope, campaign_id, level, kind, line, exposure_ids)
     select $1 || ':' || a, a, $2, $3, $4, $5, $6, $7 from unnest($8::text[]) as a
     on conflict (key) do nothing`,
    [
      req.key,
      req.scope,
      req.campaignId,
      req.level,
      req.kind,
      req.lines.join('\n'),
      req.exposureIds,
      audiences,
    ],
  );
}

/**
 * A reminder (or a breach the policy does not call urgent) for the owner's next daily queue, which
 * lists it once. With the queue switched off, it is on the dashboard only, and the record says so.
 */
async function queueForOwner(deps: Deps, req: CampaignNotifyRequest): Promise<NotifyOutcome> {
  const people = recipientsOf(deps.config, req.scope, req.owner, ['owner']).people;
  const queued = people.filter((p) => notificationPolicyFor(deps.config, req.scope, p).queue.enabled);
  if (queued.length === 0)
    return {
      delivered: [],
      sent: 'skipped',
      skipped: people.length
        ? `not urgent, and the daily queue of ${people.join(', ')} is off (notifications.dailyQueue.enabled: false): on the dashboard only`
        : `nobody to reach for owner in scope ${req.scope} (add people under scopes[].roles)`,
      recipients: [],
      alreadySent: false,
    };
  await holdFor(deps, req, queued.map(queueAudience));
  return { delivered: [], sent: 'queued', recipients: queued, alreadySent: false };
}

/** Escalation lines for the recipients' next escalation message (lifecycle/escalations.ts sends it). */
async function gatherEscalation(
  deps: Deps,
  req: CampaignNotifyRequest,
  recipients: Recipients,
): Promise<NotifyOutcome> {
  const audiences = [
    ...recipients.people.map((p) => `person:${p}`),
    ...(recipients.channels?.slack ? [`slack:${recipients.channels.slack}`] : []),
    ...(recipients.channels?.teams ? [`teams:${recipients.channels.teams}`] : []),
  ];
  if (audiences.length === 0)
    return {
      delivered: [],
      sent: 'skipped',
      skipped: `nobody to reach for ${req.audiences.filter((a) => a !== 'owner').join(', ')} in scope ${req.scope}`,
      recipients: [],
      alreadySent: false,
    };
  await holdFor(deps, req, audiences);
  return { delivered: [], sent: 'aggregated', recipients: recipients.people, alreadySent: false };
}

/**
 * A patch rollout's approval request or escalation, about its campaign (threaded under the
 * campaign's message where the recipients have it). Rollouts of the previous release name a unit:
 * they are told as a campaign of that id with nothing more known.
 */
export async function notifyRollout(deps: Deps, req: RolloutNotifyRequest): Promise<NotifyOutcome> {
  const campaignId = req.campaignId ?? req.unitId ?? req.exposureId;
  const campaign: CampaignSummary = (await campaignSummary(deps.pool, campaignId, {
    limit: MESSAGE_EXPOSURES,
  })) ?? {
    id: campaignId,
    scope: req.scope,
    ...(req.owner ? { owner: req.owner } : {}),
    kind: 'weakness',
    subject: campaignId,
    action: req.text.split('\n')[0] ?? campaignId,
    priority: 'Track',
    totals: { exposures: 0, open: 0, assets: 0, states: {} },
    exposures: [],
  };
  const outcome = await sendCampaignMessage(deps, {
    key: req.key,
    kind: req.kind,
    scope: req.scope,
    ...(req.owner ? { owner: req.owner } : {}),
    campaign,
    audiences: req.audiences,
    text: req.text,
    ...(req.level !== undefined ? { level: req.level } : {}),
    thread: campaignMessageKey(campaignId),
    patchRolloutId: req.patchRolloutId,
    exposureId: req.exposureId,
  });
  const e = notificationEvent(
    req.kind === 'decision-request' ? 'patch approval request' : 'patch escalation',
    outcome,
  );
  await recordEach(deps.pool, req.eventKey, req.exposureIds ?? [req.exposureId], e.type, e.reason, {
    notificationKey: req.key,
    kind: req.kind,
    level: req.level,
    audiences: req.audiences,
    patchRolloutId: req.patchRolloutId,
    receipt: outcome,
  });
  return outcome;
}
