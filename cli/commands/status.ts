import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { load, runningStack, type GlobalOptions } from '../context.ts';
import { checkHealth } from '../../runtime/health.ts';
import { resolveSecret } from '../../runtime/config.ts';
import { ctemHome } from '../../runtime/paths.ts';

export function defineStatus(cmd: Command): void {
  cmd.option('--json', 'machine-readable output').action(async (opts: { json?: boolean }, cmd: Command) => {
    const loaded = load(cmd.optsWithGlobals<GlobalOptions>());
    const home = ctemHome();
    const stack = runningStack(home);
    let databaseUrl: string | undefined;
    if (loaded.config.database.url)
      databaseUrl = resolveSecret(loaded.config.database.url, process.env, loaded.baseDir);
    else if (stack?.databaseUrl.port) {
      const credFile = path.join(home, 'postgres', 'credentials.json');
      if (existsSync(credFile)) {
        const c = JSON.parse(readFileSync(credFile, 'utf8')) as { user: string; password: string };
        databaseUrl = `postgres://${encodeURIComponent(c.user)}:${encodeURIComponent(c.password)}@127.0.0.1:${stack.databaseUrl.port}/ctem`;
      }
    }
    const parts = await checkHealth(loaded, stack, databaseUrl);
    const healthy = parts.every((p) => p.ok);
    if (opts.json) process.stdout.write(`${JSON.stringify({ healthy, parts })}\n`);
    else {
      for (const p of parts)
        process.stdout.write(`${p.ok ? 'ok  ' : 'FAIL'}  ${p.part.padEnd(10)}  ${p.detail}\n`);
      process.stdout.write(healthy ? 'healthy\n' : 'unhealthy\n');
    }
    process.exitCode = healthy ? 0 : 1;
  });
}
