// Reaching people about campaigns, under the notification policy (lifecycle/notificationPolicy.ts):
// - a decision request goes out at once only when the campaign is urgent (Act, KEV…); otherwise it
//   waits for the owner's daily queue (lifecycle/queue.ts);
// - each campaign has one original message per conversation ("campaign:<id>"): asking again,
//   reminders and escalations to the owner are replies in its thread, and the original is updated in
//   place;
// - escalations to managers, the CISO and channels are gathered per audience and window
//   (lifecycle/escalations.ts), unless the scope's window is 0.
// One message per notification key whatever the retries: the key is locked while sending and stored
// after. With no notifier configured, the record says nobody was told.
import type { Config } from '../domain/config.ts';
import type { EscalationAudience } from '../domain/sla.ts';
import type { Deps } from '../runtime/deps.ts';
import type { Pool, PoolClient } from '../runtime/pool.ts';
import { terminalStates } from '../domain/exposure.ts';
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
import { isUrgent, notificationPolicyFor } from './notificationPolicy.ts';

/** Exposures a message lists before "and N more". */
export const MESSAGE_EXPOSURES = 10;

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

/** The campaign has an open exposure in CISA KEV. */
async function hasKev(db: Pool | PoolClient, campaignId: string): Promise<boolean> {
  const { rows } = await db.query<{ kev: boolean }>(
    `select coalesce(bool_or(kev), false) as kev from exposures
      where campaign_id = $1 and state <> all($2::text[])`,
    [campaignId, terminalStates],
  );
  return rows[0]?.kev ?? false;
}

/** Whether the campaign's decision requests go out at once under its owner's policy. */
export async function campaignIsUrgent(deps: Deps, campaign: CampaignSummary): Promise<boolean> {
  const policy = notificationPolicyFor(deps.config, campaign.scope, campaign.owner);
  return isUrgent(policy, { priority: campaign.priority, kev: await hasKev(deps.pool, campaign.id) });
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
  let outcome: NotifyOutcome;
  if (!(await campaignIsUrgent(deps, campaign)))
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
 * campaign's thread (a plain reminder of a campaign that is not urgent waits for the daily queue);
 * every other audience gets it in its next escalation message, or at once if the scope's window is 0.
 */
export async function notifyCampaign(deps: Deps, req: CampaignNotifyRequest): Promise<NotifyOutcome> {
  const campaign = await campaignSummary(deps.pool, req.campaignId, { limit: MESSAGE_EXPOSURES });
  if (!campaign) throw new Error(`campaign ${req.campaignId} does not exist`);
  const policy = notificationPolicyFor(deps.config, req.scope, req.owner);
  const breach = req.kind === 'escalation';
  const text = breach
    ? `Escalation (level ${req.level}): ${campaign.action}`
    : `Reminder: ${campaign.action}`;
  const outcomes: NotifyOutcome[] = [];
  const ownerToo = req.audiences.includes('owner');
  const others = req.audiences.filter((a) => a !== 'owner');
  if (ownerToo) {
    const urgent = breach ? policy.urgentBreach : await campaignIsUrgent(deps, campaign);
    outcomes.push(
      urgent
        ? await sendCampaignMessage(deps, {
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
          })
        : { delivered: [], sent: 'queued', recipients: req.owner ? [req.owner] : [], alreadySent: false },
    );
  }
  if (others.length) {
    const recipients = recipientsOf(deps.config, req.scope, req.owner, others);
    if (policy.escalationWindowMs === 0)
      outcomes.push(
        await sendCampaignMessage(deps, {
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
          recipients,
        }),
      );
    else outcomes.push(await gatherEscalation(deps, req, recipients));
  }
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
  const e = notificationEvent(req.kind, merged);
  await recordEach(deps.pool, `${req.key}:notified`, req.exposureIds, e.type, e.reason, {
    campaignId: req.campaignId,
    kind: req.kind,
    level: req.level,
    audiences: req.audiences,
    receipt: merged,
  });
  return merged;
}

/** Escalation lines for the audiences' next escalation message (lifecycle/escalations.ts sends it). */
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
