// Publishing one message (a campaign's notification, a digest) to several conversations of one
// platform, for the Notifier ports.
// The notifier is called inside the lifecycle's notification transaction, so it waits only a short
// while: what is delivered by then is reported with its message reference; what is still waiting
// for its rate-limit slot (or a Retry-After) keeps going in the background and is reported as
// queued; what failed for good is reported with the platform's error.
import type { NotificationReceipt } from '../domain/ports.ts';
import type { Delivery, Transport } from './outbox.ts';
import type { ChatRuntime } from './runtime.ts';

const QUEUED: unique symbol = Symbol('queued');

export async function publishAll(
  runtime: ChatRuntime,
  transport: Transport,
  conversations: string[],
  key: string,
  send: (conversation: string) => Promise<Delivery>,
  alreadyMissing: string[] = [],
  waitMs = 2_000,
): Promise<NotificationReceipt> {
  const problems = [...alreadyMissing];
  if (conversations.length === 0)
    return { delivered: [], skipped: problems.join('; ') || `nobody to reach on ${transport}` };
  const results = await Promise.all(
    conversations.map(async (conversation) => {
      const sending = send(conversation);
      sending.catch((err: unknown) => runtime.deps.log.warn({ err, conversation }, 'background send failed'));
      let timer: NodeJS.Timeout | undefined;
      const queued = new Promise<typeof QUEUED>((resolve) => {
        timer = setTimeout(() => resolve(QUEUED), waitMs);
      });
      try {
        const r: Delivery | typeof QUEUED = await Promise.race([sending, queued]);
        return { conversation, r };
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const delivered: NotificationReceipt['delivered'] = [];
  for (const { conversation, r } of results) {
    if (typeof r === 'symbol') delivered.push({ via: transport, ref: `queued:${conversation}` });
    else if (r.ok) delivered.push({ via: transport, ref: r.ref ?? conversation });
    else if (r.permanent) problems.push(`${transport} ${conversation}: ${r.error}`);
    else delivered.push({ via: transport, ref: `queued:${conversation}` });
  }
  if (problems.length > 0) runtime.deps.log.warn({ key, problems }, 'some recipients were not reached');
  return { delivered, ...(delivered.length === 0 ? { skipped: problems.join('; ') } : {}) };
}
