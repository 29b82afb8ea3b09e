// The Notifier port (domain/ports.ts) for Slack: one message per notification key per
// recipient — each person's DM (chat.postMessage to their user id) and the scope channel — posted
// the first time and updated in place when the same key comes again (a retried activity, a
// re-sent escalation), through the rate-limited outbox.
import type { Notifier, NotificationReceipt, OwnerNotification } from '../../domain/ports.ts';
import type { ChatRuntime } from '../runtime.ts';
import { publishAll } from '../publish.ts';

export function createSlackNotifier(runtime: ChatRuntime, opts: { waitMs?: number } = {}): Notifier {
  return {
    name: 'slack',
    async notify(n: OwnerNotification): Promise<NotificationReceipt> {
      const targets: string[] = [];
      const missing: string[] = [];
      for (const id of n.to) {
        const slackId = runtime.people.person(id)?.slack;
        if (slackId) targets.push(slackId);
        else missing.push(`${id} has no Slack account in ctem.yaml (people[].slack)`);
      }
      if (n.channels?.slack) targets.push(n.channels.slack);
      return await publishAll(runtime, 'slack', [...new Set(targets)], n, missing, opts.waitMs);
    },
  };
}
