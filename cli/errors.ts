// How a failed command speaks to the user. Kept free of heavy imports: main loads it for every call.

/** A failure the user can act on: printed as one sentence, exit code 2 (bad input) or 1. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/**
 * Print an error as the user should see it and choose the exit code. Errors are told apart by name
 * (ConfigError from domain/config.ts, InputError from domain/finding.ts), so that this module needs
 * neither of them loaded.
 */
export function reportError(err: unknown): number {
  const name = err instanceof Error ? err.name : '';
  if (name === 'ConfigError') {
    process.stderr.write(`ctem: invalid configuration:\n${(err as Error).message}\n`);
    return 2;
  }
  if (name === 'InputError') {
    process.stderr.write(`ctem: ${(err as Error).message}\n`);
    return 2;
  }
  if (err instanceof UserError) {
    process.stderr.write(`ctem: ${err.message}\n`);
    return err.exitCode;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`ctem: ${message}\n`);
  if (process.env.CTEM_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  return 1;
}
