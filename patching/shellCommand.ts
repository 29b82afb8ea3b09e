// Command lines for a remote POSIX shell. sshd hands the command string to the account's login shell,
// so an argument vector must become one string in which every argument is a single inert word:
// each is wrapped in single quotes, inside which a POSIX shell interprets nothing at all, and an
// embedded single quote is closed, escaped and reopened ('\''). Arguments that came from a scanner
// are validated before they get here (domain/packages.ts); quoting is the second wall, not the first.

/** One argument as a single-quoted POSIX shell word. */
export function quoteShellArgument(arg: string): string {
  if (arg.includes('\0')) throw new Error('a command argument contains a NUL byte, which no shell can carry');
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** An argument vector as one POSIX shell command line that runs exactly that vector. */
export function shellCommandLine(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error('an empty command cannot be run');
  return argv.map(quoteShellArgument).join(' ');
}

/** The argument vector as a person reads it in a plan (quoted only where needed). */
export function displayCommand(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_./:=+,@%^~-]+$/.test(a) ? a : quoteShellArgument(a))).join(' ');
}
