// The Notifier port (domain/ports.ts) for Teams: proactive cards through stored conversation
// references — each person's personal chat with the bot and the scope's channel — one card per
// notification key per conversation, posted once and updated in place afterwards (outbox). A
// notification naming a thread is posted as a reply to the campaign's original card where that
// conversation has it. Digests (the daily queue, gathered escalations, an onboarding summary) are
// one card each, the same way.
// Someone the bot has never heard from gets a personal chat opened for them (POST /v3/conversations),
// which works once the app is installed for them; otherwise the receipt says why they were skipped.
import type {
  DigestNotification,
  Notifier,
  NotificationReceipt,
  OwnerNotification,
} from '../../domain/ports.ts';
import { publishAll } from '../publish.ts';
import type { ChatRuntime, TeamsSide } from '../runtime.ts';

/** Teams conversations for people and channels, and who cannot be reached there. */
async function recipients(
  runtime: ChatRuntime,
  teams: TeamsSide,
  to: string[],
  channels: { teams?: string } | undefined,
): Promise<{ targets: string[]; missing: string[] }> {
  const targets: string[] = [];
  const missing: string[] = [];
  for (const id of to) {
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
  if (channels?.teams) targets.push(channels.teams);
  return { targets: [...new Set(targets)], missing };
}

export function createTeamsNotifier(runtime: ChatRuntime, opts: { waitMs?: number } = {}): Notifier {
  const notConfigured: NotificationReceipt = {
    delivered: [],
    skipped: 'integrations.teams is not configured',
  };
  return {
    name: 'teams',
    async notify(n: OwnerNotification): Promise<NotificationReceipt> {
      const teams = runtime.teams;
      if (!teams) return notConfigured;
      const { targets, missing } = await recipients(runtime, teams, n.to, n.channels);
      return await publishAll(
        runtime,
        'teams',
        targets,
        n.key,
        (conversation) => runtime.delivery.publish('teams', conversation, n),
        missing,
        opts.waitMs,
      );
    },
    async digest(n: DigestNotification): Promise<NotificationReceipt> {
      const teams = runtime.teams;
      if (!teams) return notConfigured;
      const { targets, missing } = await recipients(runtime, teams, n.to, n.channels);
      return await publishAll(
        runtime,
        'teams',
        targets,
        n.key,
        (conversation) => runtime.delivery.publishDigest('teams', conversation, n),
        missing,
        opts.waitMs,
      );
    },
  };
}
