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

export function defineDashboard(cmd: Command): void {
  cmd
    .command('hash-password')
    .description(
      'read a password on standard input, print its scrypt hash for dashboard.accounts[].passwordHash',
    )
    .action(async () => {
      if (process.stdin.isTTY) process.stderr.write('Password (then Enter and Ctrl-D): ');
      const password = (await readStdin()).replace(/\r?\n$/, '');
      if (password.length < 12)
        throw new UserError('the password must be at least 12 characters long; nothing was hashed', 2);
      process.stdout.write(`${await hashPassword(password)}\n`);
    });
}
