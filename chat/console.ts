// A notifier that writes each notification as one line on the process's standard output. Useful
// for the demo and for trying ctem out before chat is set up (`integrations: { console: {} }`):
// it really delivers, to whoever watches the terminal, and says so in its receipt.
import type { Notifier, NotificationReceipt, OwnerNotification } from '../domain/ports.ts';

export function createConsoleNotifier(
  write: (line: string) => void = (l) => process.stdout.write(l),
): Notifier {
  return {
    name: 'console',
    async notify(n: OwnerNotification): Promise<NotificationReceipt> {
      const who = [...n.to.map((p) => `@${p}`), ...(n.channels?.slack ? [`#${n.channels.slack}`] : [])].join(
        ' ',
      );
      const count = n.unit.exposures.length;
      write(
        `  [${n.kind}${n.level !== undefined ? ` L${n.level}` : ''}] to ${who || '(nobody)'}: ${n.text}` +
          ` — unit "${n.unit.action}" (${count} exposure${count === 1 ? '' : 's'})\n`,
      );
      return { delivered: [{ via: 'console', ref: n.key }] };
    },
  };
}
