// The `ctem` process: the command line with the composition root's services. Each service loads
// its module when first used, so that a command starts without loading what it does not need.
import { main as cliMain } from '../cli/main.ts';
import type { CliServices } from '../cli/services.ts';

export const services: CliServices = {
  compose: async (opts) => (await import('./compose.ts')).compose(opts),
  startStack: async (opts) => await (await import('./stack.ts')).startStack(opts),
  runDemo: async (opts) => await (await import('./demo.ts')).runDemo(opts),
  runDoctor: async (opts) => await (await import('./doctor.ts')).runDoctor(opts),
};

export async function main(argv: string[]): Promise<number> {
  return await cliMain(argv, services);
}
