// The Notifier port (domain/ports.ts) for Teams: proactive cards through stored conversation
// references — each person's personal chat with the bot and the scope's channel — one card per
// notification key per conversation, posted once and updated in place afterwards (outbox).
// Someone the bot has never heard from gets a personal chat opened for them (POST /v3/conversations),
// which works once the app is installed for them; otherwise the receipt says why they were skipped.
import type { Notifier, NotificationReceipt, OwnerNotification } from '../../domain/ports.ts';
import { publishAll } from '../publish.ts';
import type { ChatRuntime } from '../runtime.ts';

export function createTeamsNotifier(runtime: ChatRuntime, opts: { waitMs?: number } = {}): Notifier {
  return {
    name: 'teams',
    async notify(n: OwnerNotification): Promise<NotificationReceipt> {
      const teams = runtime.teams;
      if (!teams) return { delivered: [], skipped: 'integrations.teams is not configured' };
      const targets: string[] = [];
      const missing: string[] = [];
      for (const id of n.to) {
        const person = runtime.people.person(id);
        const known = await teams.conversations.forPerson(id);
        if (known) {
          targets.push(known.conversationId);
          continue;
        }
        if (!person?.teams) {
          missing.push(`${id} has no Teams account in ctem.yaml (people[].teams)`);
          continue;
        }
        try {
          const opened = await teams.transport.openPersonalChat(
            person.teams,
            teams.config.tenantId,
            teams.config.appId,
            teams.config.serviceUrl,
          );
          await teams.conversations.recordPersonal(id, opened);
          targets.push(opened.conversationId);
        } catch (err) {
          missing.push(
            `no Teams chat with ${id} (${(err as Error).message}); the ctem app must be installed for them`,
          );
        }
      }
      if (n.channels?.teams) targets.push(n.channels.teams);
      return await publishAll(runtime, 'teams', [...new Set(targets)], n, missing, opts.waitMs);
    },
  };
}
