import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { runningStack, type GlobalOptions } from '../context.ts';
import type { CliServices, DoctorCheck } from '../services.ts';
import { ctemHome } from '../../runtime/paths.ts';

export function defineDoctor(cmd: Command, services: CliServices): void {
  cmd
    .option('--json', 'machine-readable output')
    .option('--timeout <seconds>', 'per check', '5')
    .action(async (opts: { json?: boolean; timeout: string }, cmd: Command) => {
      const global = cmd.optsWithGlobals<GlobalOptions>();
      // A running `ctem up` of this CTEM_HOME is checked too when ctem.yaml names no services.
      const home = ctemHome();
      const stack = runningStack(home);
      let databaseUrl: string | undefined;
      const credFile = path.join(home, 'postgres', 'credentials.json');
      if (stack?.databaseUrl.port && existsSync(credFile)) {
        const c = JSON.parse(readFileSync(credFile, 'utf8')) as { user: string; password: string };
        databaseUrl = `postgres://${encodeURIComponent(c.user)}:${encodeURIComponent(c.password)}@127.0.0.1:${stack.databaseUrl.port}/ctem`;
      }
      const checks = await services.runDoctor({
        ...(global.config ? { configFile: global.config } : {}),
        ...(databaseUrl ? { databaseUrl } : {}),
        ...(stack ? { temporalAddress: stack.temporal.address } : {}),
        timeoutMs: Math.max(1, Number(opts.timeout) || 5) * 1000,
      });
      const healthy = checks.every((c) => c.status !== 'fail');
      if (opts.json) process.stdout.write(`${JSON.stringify({ healthy, checks })}\n`);
      else process.stdout.write(render(checks, healthy));
      process.exitCode = healthy ? 0 : 1;
    });
}

function render(checks: DoctorCheck[], healthy: boolean): string {
  const width = Math.max(...checks.map((c) => c.name.length), 6);
  const lines = checks.map((c) => {
    const mark = c.status === 'ok' ? 'ok  ' : c.status === 'skip' ? 'skip' : 'FAIL';
    const [first, ...rest] = c.detail.split('\n');
    const pad = ' '.repeat(width + 8);
    return [
      `${mark}  ${c.name.padEnd(width)}  ${first}`,
      ...rest.map((r) => `${pad}${r}`),
      ...(c.advice ? [`${pad}→ ${c.advice}`] : []),
    ].join('\n');
  });
  const failed = checks.filter((c) => c.status === 'fail').length;
  return `${lines.join('\n')}\n${healthy ? 'all checks passed' : `${failed} check${failed === 1 ? '' : 's'} failed`}\n`;
}
