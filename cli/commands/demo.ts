// `ctem demo`: the whole loop on bundled sample data, on the embedded stack, told step by step
// (app/demo.ts runs it).
import type { Command } from 'commander';
import { refuseFixedClock } from '../context.ts';
import type { CliServices } from '../services.ts';

export function defineDemo(cmd: Command, services: CliServices): void {
  cmd
    .option('--keep', 'keep the scratch folder with the demo database and Temporal state')
    .action(async (opts: { keep?: boolean }) => {
      refuseFixedClock('ctem demo');
      const result = await services.runDemo({ keep: opts.keep });
      // The story resolves every exposure but the one whose risk it accepts on purpose.
      if (!result.exposures.every((e) => e.state === 'resolved' || e.state === 'risk-accepted'))
        process.exitCode = 1;
    });
}
