// Reaching people: the owner's decision request, SLA reminders and escalations. One message per
// notification key (exposures of a unit share it, so the unit gets one message, not one per CVE);
// the key is locked while sending and stored after, so a retry or a sibling exposure sends nothing
// twice. With no notifier configured, the record says nobody was told.
import type { Config } from '../domain/config.ts';
import type { EscalationAudience } from '../domain/sla.ts';
import type { Deps } from '../runtime/deps.ts';
import type { NotificationReceipt, OwnerNotification, RemediationUnitSummary } from '../domain/ports.ts';
import type { NotifyOutcome, NotifyRequest } from '../contracts/lifecycle.ts';
import { appendEvent } from './events.ts';
import { unitSummary } from './units.ts';

/** People and channels an audience list reaches in a scope. */
export function recipientsOf(
  config: Config,
  scopeName: string,
  owner: string | undefined,
  audiences: EscalationAudience[],
): { people: string[]; channels?: { slack?: string; teams?: string } } {
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

/** A decision request speaks for the whole unit: what to do and which exposures it closes. */
function decisionRequestText(unit: RemediationUnitSummary, why: string): string {
  if (unit.exposures.length === 0) return why;
  const keys = unit.exposures.map((e) => e.weaknessKey);
  const shown =
    keys.length > 5 ? `${keys.slice(0, 5).join(', ')} and ${keys.length - 5} more` : keys.join(', ');
  return `${unit.priority}: ${unit.action} — fixes ${shown}${unit.slaDue ? `; due ${unit.slaDue.slice(0, 10)}` : ''}; ${why}`;
}

export interface SendRequest {
  key: string;
  kind: NotifyRequest['kind'];
  scope: string;
  owner?: string;
  unitId?: string;
  /** The exposure the notification is recorded against (the unit's first one for a unit request). */
  exposureId: string;
  level?: number;
  audiences: EscalationAudience[];
  text: string;
  patchRolloutId?: string;
}

/**
 * Send one notification once per key: the key is locked while sending and stored after, so a retry
 * or a sibling exposure of the unit finds it sent and sends nothing again.
 */
export async function sendNotification(
  deps: Deps,
  req: SendRequest,
): Promise<NotifyOutcome & { channels?: { slack?: string; teams?: string } }> {
  const { pool, config } = deps;
  const recipients = recipientsOf(config, req.scope, req.owner, req.audiences);
  const client = await pool.connect();
  try {
    await client.query('begin');
    // Serialize senders of one key (two exposures of a unit notified at the same moment).
    await client.query('select pg_advisory_xact_lock(hashtextextended($1, 7426005))', [req.key]);
    const prior = await client.query<{ receipt: NotificationReceipt; recipients: string[] }>(
      'select receipt, recipients from notifications where key = $1',
      [req.key],
    );
    let outcome: NotifyOutcome;
    if (prior.rows[0]) {
      const r = prior.rows[0];
      outcome = { ...r.receipt, recipients: r.recipients, alreadySent: true };
    } else {
      const unit: RemediationUnitSummary = (req.unitId
        ? await unitSummary(client, req.unitId)
        : undefined) ?? {
        id: req.unitId ?? req.exposureId,
        scope: req.scope,
        ...(req.owner ? { owner: req.owner } : {}),
        action: req.text,
        priority: 'Track',
        exposures: [],
      };
      const notifiers = deps.integrations.notifiers();
      let receipt: NotificationReceipt;
      if (recipients.people.length === 0 && !recipients.channels)
        receipt = {
          delivered: [],
          skipped: `nobody to reach for ${req.audiences.join(', ')} in scope ${req.scope} (add people under scopes[].roles)`,
        };
      else if (notifiers.length === 0)
        receipt = {
          delivered: [],
          skipped: `no notifier configured (integrations.slack, integrations.teams or integrations.console): nobody was told`,
        };
      else {
        const n: OwnerNotification = {
          key: req.key,
          kind: req.kind,
          to: recipients.people,
          ...(recipients.channels ? { channels: recipients.channels } : {}),
          unit,
          ...(req.level !== undefined ? { level: req.level } : {}),
          text: req.kind === 'decision-request' ? decisionRequestText(unit, req.text) : req.text,
          ...(req.patchRolloutId ? { patchRolloutId: req.patchRolloutId } : {}),
        };
        receipt = mergeReceipts(await Promise.all(notifiers.map((x) => x.notify(n))));
      }
      await client.query(
        `insert into notifications (key, kind, unit_id, exposure_id, level, recipients, receipt)
         values ($1, $2, $3, $4, $5, $6, $7) on conflict (key) do nothing`,
        [
          req.key,
          req.kind,
          req.unitId ?? null,
          req.exposureId,
          req.level ?? null,
          recipients.people,
          JSON.stringify(receipt),
        ],
      );
      outcome = { ...receipt, recipients: recipients.people, alreadySent: false };
    }
    await client.query('commit');
    return { ...outcome, ...(recipients.channels ? { channels: recipients.channels } : {}) };
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** How a notification reads in the exposure's audit trail. */
export function notificationEvent(
  kind: string,
  outcome: NotifyOutcome & { channels?: { slack?: string; teams?: string } },
): { type: string; reason: string } {
  const to = [...outcome.recipients, ...(outcome.channels ? Object.values(outcome.channels) : [])].join(', ');
  return outcome.skipped
    ? { type: 'notification-skipped', reason: `${kind} not sent: ${outcome.skipped}` }
    : {
        type: 'notified',
        reason: `${kind} ${outcome.alreadySent ? 'already sent for the unit' : 'sent'} to ${to}`,
      };
}

export async function notifyAudience(deps: Deps, req: NotifyRequest): Promise<NotifyOutcome> {
  const sent = await sendNotification(deps, req);
  const { channels: _channels, ...outcome } = sent;
  const e = notificationEvent(req.kind, sent);
  await appendEvent(deps.pool, {
    key: req.eventKey,
    exposureId: req.exposureId,
    ...e,
    data: {
      notificationKey: req.key,
      kind: req.kind,
      level: req.level,
      audiences: req.audiences,
      receipt: outcome,
    },
  });
  return outcome;
}
