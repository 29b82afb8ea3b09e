// `ctem dashboard hash-password`: read a password on standard input and print the scrypt hash to
// put in dashboard.accounts[].passwordHash (or in the file a file: reference points to). The
// password never appears on the command line, so it stays out of shell history and `ps`.
import type { Command } from 'commander';
import { hashPassword } from '../../runtime/passwords.ts';
import { UserError } from '../errors.ts';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Ask for a password on a terminal without echoing it: raw mode, one line, Backspace edits, Ctrl-C
 * or Ctrl-D on an empty line abandons.
 */
async function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  try {
    return await new Promise<string>((resolve, reject) => {
      let typed = '';
      const onData = (chunk: string) => {
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData);
            resolve(typed);
            return;
          }
          if (ch === '\u0003' || (ch === '\u0004' && typed === '')) {
            stdin.off('data', onData);
            reject(new UserError('no password given; nothing was hashed', 2));
            return;
          }
          if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
          else if (ch >= ' ') typed += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}

export function defineDashboard(cmd: Command): void {
  cmd
    .command('hash-password')
    .description(
      'read a password on standard input, print its scrypt hash for dashboard.accounts[].passwordHash',
    )
    .action(async () => {
      // On a terminal the password is typed without echo; piped, it is read to the end.
      const password = process.stdin.isTTY
        ? await readHidden('Password (not shown): ')
        : (await readStdin()).replace(/\r?\n$/, '');
      if (password.length < 12)
        throw new UserError('the password must be at least 12 characters long; nothing was hashed', 2);
      process.stdout.write(`${await hashPassword(password)}\n`);
    });
}
