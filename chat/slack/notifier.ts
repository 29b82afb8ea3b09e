// The Notifier port (domain/ports.ts) for Slack: one message per notification key per
// recipient — each person's DM (chat.postMessage to their user id) and the scope channel — posted
// the first time and updated in place when the same key comes again (a retried activity, a refresh
// of a campaign's message), through the rate-limited outbox. A notification naming a thread (a
// reminder, an escalation to the owner) is posted in the thread of the campaign's original where
// that conversation has it. Digests (the daily queue, gathered escalations, an onboarding summary)
// are one message each, the same way.
import type {
  DigestNotification,
  Notifier,
  NotificationReceipt,
  OwnerNotification,
} from '../../domain/ports.ts';
import type { ChatRuntime } from '../runtime.ts';
import { publishAll } from '../publish.ts';

/** Slack conversations for people and channels, and who cannot be reached there. */
function recipients(
  runtime: ChatRuntime,
  to: string[],
  channels: { slack?: string } | undefined,
): { targets: string[]; missing: string[] } {
  const targets: string[] = [];
  const missing: string[] = [];
  for (const id of to) {
    const slackId = runtime.people.person(id)?.slack;
    if (slackId) targets.push(slackId);
    else missing.push(`${id} has no Slack account in ctem.yaml (people[].slack)`);
  }
  if (channels?.slack) targets.push(channels.slack);
  return { targets: [...new Set(targets)], missing };
}

export function createSlackNotifier(runtime: ChatRuntime, opts: { waitMs?: number } = {}): Notifier {
  return {
    name: 'slack',
    async notify(n: OwnerNotification): Promise<NotificationReceipt> {
      const { targets, missing } = recipients(runtime, n.to, n.channels);
      return await publishAll(
        runtime,
        'slack',
        targets,
        n.key,
        (conversation) => runtime.delivery.publish('slack', conversation, n),
        missing,
        opts.waitMs,
      );
    },
    async digest(n: DigestNotification): Promise<NotificationReceipt> {
      const { targets, missing } = recipients(runtime, n.to, n.channels);
      return await publishAll(
        runtime,
        'slack',
        targets,
        n.key,
        (conversation) => runtime.delivery.publishDigest('slack', conversation, n),
        missing,
        opts.waitMs,
      );
    },
  };
}
