// A notifier that writes each notification as one line on the process's standard output. Useful
// for the demo and for trying ctem out before chat is set up (`integrations: { console: {} }`):
// it really delivers, to whoever watches the terminal, and says so in its receipt.
import type {
  DigestNotification,
  Notifier,
  NotificationReceipt,
  OwnerNotification,
} from '../domain/ports.ts';

function who(to: string[], channels?: { slack?: string; teams?: string }): string {
  return (
    [...to.map((p) => `@${p}`), ...(channels?.slack ? [`#${channels.slack}`] : [])].join(' ') || '(nobody)'
  );
}

export function createConsoleNotifier(
  write: (line: string) => void = (l) => process.stdout.write(l),
): Notifier {
  return {
    name: 'console',
    async notify(n: OwnerNotification): Promise<NotificationReceipt> {
      const c = n.campaign;
      write(
        `  [${n.kind}${n.level !== undefined ? ` L${n.level}` : ''}]${n.thread ? ' (in thread)' : ''} to ${who(n.to, n.channels)}: ${n.text}` +
          ` — campaign "${c.action}" (${c.totals.open} open exposure${c.totals.open === 1 ? '' : 's'})\n` +
          (n.lines ?? []).map((l) => `      ${l}\n`).join(''),
      );
      return { delivered: [{ via: 'console', ref: n.key }] };
    },
    async digest(n: DigestNotification): Promise<NotificationReceipt> {
      write(
        `  [${n.kind}] to ${who(n.to, n.channels)}: ${n.title}\n` +
          n.campaigns
            .map(
              ({ campaign: c, lines }) =>
                `      ${c.priority} ${c.action} (${c.totals.open} open${c.slaDue ? `, due ${c.slaDue.slice(0, 10)}` : ''})\n` +
                (lines ?? []).map((l) => `        ${l}\n`).join(''),
            )
            .join('') +
          (n.more ? `      … and ${n.more} more campaign${n.more === 1 ? '' : 's'}\n` : ''),
      );
      return { delivered: [{ via: 'console', ref: n.key }] };
    },
  };
}
