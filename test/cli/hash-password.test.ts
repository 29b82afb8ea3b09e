// `ctem dashboard hash-password` as a person types it: on a real terminal (a pseudo-terminal from
// util-linux `script`), the password is not echoed; piped, it is read to the end.
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyPassword } from '../../runtime/passwords.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/ctem.js');
const hasScript = spawnSync('script', ['--version']).status === 0;

describe('ctem dashboard hash-password', () => {
  it.skipIf(!hasScript)(
    'does not echo the password typed on a terminal',
    async () => {
      const password = 'correct horse battery staple';
      const child = spawn(
        'script',
        ['-q', '-e', '-c', `${process.execPath} ${bin} dashboard hash-password`, '/dev/null'],
        {
          stdio: ['pipe', 'pipe', 'pipe'],
        },
      );
      let screen = '';
      child.stdout.on('data', (d: Buffer) => (screen += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      // Type once the prompt is on the screen.
      const deadline = Date.now() + 30_000;
      while (!screen.includes('Password') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      child.stdin.write(`${password}\r`);
      expect(await exited).toBe(0);
      expect(screen).toContain('Password (not shown):');
      expect(screen).not.toContain(password);
      const hash = /scrypt\$\S+/.exec(screen)?.[0];
      expect(hash).toBeDefined();
      expect(await verifyPassword(password, hash!)).toBe(true);
    },
    60_000,
  );

  it('reads a piped password to the end and refuses a short one', () => {
    const ok = spawnSync(process.execPath, [bin, 'dashboard', 'hash-password'], {
      input: 'another long password\n',
      encoding: 'utf8',
    });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/^scrypt\$/);
    const short = spawnSync(process.execPath, [bin, 'dashboard', 'hash-password'], {
      input: 'short\n',
      encoding: 'utf8',
    });
    expect(short.status).toBe(2);
    expect(short.stderr).toContain('the password must be at least 12 characters long; nothing was hashed');
  });
});
