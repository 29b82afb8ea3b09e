// One SSH connection to a managed host through node-ssh, with the host key pinned (hostKeys.ts) and
// key or agent authentication. Commands are argument vectors, turned into a single-quoted POSIX
// command line (shellCommand.ts); nothing is ever concatenated into a command unquoted.
import { NodeSSH } from 'node-ssh';
import { pinnedKeyTypes, verifyHostKey, type HostKeyPins, type HostKeyVerdict } from './hostKeys.ts';
import { quoteShellArgument, shellCommandLine } from './shellCommand.ts';

export type SshAuth = { privateKey: string; passphrase?: string } | { agent: string };

export interface SshEndpoint {
  /** The name the host is pinned under (known_hosts), and the address to dial (defaults to it). */
  host: string;
  address?: string;
  port: number;
  username: string;
  auth: SshAuth;
  pins: HostKeyPins;
  connectTimeoutMs: number;
}

export interface CommandOutcome {
  /** Exit status; null when the command ended by a signal or the connection dropped. */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The host presented a key that is not pinned for it. Never worth retrying. */
export class HostKeyRejectedError extends Error {
  constructor(readonly verdict: Extract<HostKeyVerdict, { trusted: false }>) {
    super(verdict.message);
    this.name = 'HostKeyRejectedError';
  }
}

/** Connecting or authenticating failed (network, refused key): possibly transient. */
export class SshConnectError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SshConnectError';
  }
}

export class RemoteCommandTimeoutError extends Error {
  constructor(command: string, ms: number) {
    super(`the remote command ${command} did not finish within ${Math.round(ms / 1000)} s`);
    this.name = 'RemoteCommandTimeoutError';
  }
}

export interface SshSession {
  readonly endpoint: SshEndpoint;
  /**
   * Run an argument vector. `env` becomes constant shell assignments in front of the command
   * (names are identifiers, values are single-quoted).
   */
  run(
    argv: readonly string[],
    options?: { env?: Record<string, string>; timeoutMs?: number },
  ): Promise<CommandOutcome>;
  /**
   * Run a command line verbatim. Only for lines made of tokens that are inert in every shell the far
   * side may use (cmd.exe and PowerShell on Windows OpenSSH as well as POSIX shells); the caller
   * proves it by passing the tokens, which are checked here.
   */
  runInertTokens(tokens: readonly string[], options?: { timeoutMs?: number }): Promise<CommandOutcome>;
  close(): void;
}

const inertToken = /^[A-Za-z0-9+/=._-]+$/;

export async function openSshSession(endpoint: SshEndpoint): Promise<SshSession> {
  const ssh = new NodeSSH();
  let rejected: Extract<HostKeyVerdict, { trusted: false }> | undefined;
  const names = [...new Set([endpoint.host, endpoint.address ?? endpoint.host])];
  const keyTypes = pinnedKeyTypes(endpoint.pins, names, endpoint.port);
  try {
    await ssh.connect({
      host: endpoint.address ?? endpoint.host,
      port: endpoint.port,
      username: endpoint.username,
      readyTimeout: endpoint.connectTimeoutMs,
      ...('agent' in endpoint.auth
        ? { agent: endpoint.auth.agent }
        : { privateKey: endpoint.auth.privateKey, passphrase: endpoint.auth.passphrase }),
      // Offer only the key types that are pinned, so the server presents a key we can check.
      ...(keyTypes.length > 0 ? { algorithms: { serverHostKey: keyTypes as never } } : {}),
      hostVerifier: (key: Buffer) => {
        const verdict = verifyHostKey(endpoint.pins, names, endpoint.port, key);
        if (!verdict.trusted) rejected = verdict;
        return verdict.trusted;
      },
      tryKeyboard: false,
    });
  } catch (err) {
    ssh.dispose();
    if (rejected) throw new HostKeyRejectedError(rejected);
    throw new SshConnectError(
      `could not open an SSH session to ${endpoint.username}@${endpoint.address ?? endpoint.host}:${endpoint.port}: ${(err as Error).message}`,
      { cause: err },
    );
  }

  const exec = async (
    line: string,
    display: string,
    timeoutMs: number | undefined,
  ): Promise<CommandOutcome> => {
    // ssh2 ships no types; closing the channel is all that is needed of it.
    let channel: { close(): void } | undefined;
    let timer: NodeJS.Timeout | undefined;
    // node-ssh ends stdin at once: a prompt (debconf, a conffile question) reads end-of-file and
    // takes its default instead of hanging.
    const outcome = ssh.execCommand(line, {
      onChannel: (c: { close(): void }) => {
        channel = c;
      },
    });
    const timeout = new Promise<never>((_, reject) => {
      if (timeoutMs)
        timer = setTimeout(() => {
          channel?.close();
          reject(new RemoteCommandTimeoutError(display, timeoutMs));
        }, timeoutMs);
    });
    try {
      const r = await Promise.race([outcome, timeout]);
      return { code: r.code, stdout: r.stdout, stderr: r.stderr };
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    endpoint,
    run: async (argv, options = {}) => {
      const assignments = Object.entries(options.env ?? {}).map(([name, value]) => {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
          throw new Error(`environment name ${name} is not an identifier`);
        return `${name}=${quoteShellArgument(value)}`;
      });
      const line = [...assignments, shellCommandLine(argv)].join(' ');
      return await exec(line, argv.join(' '), options.timeoutMs);
    },
    runInertTokens: async (tokens, options = {}) => {
      for (const t of tokens)
        if (!inertToken.test(t))
          throw new Error(`command token ${JSON.stringify(t.slice(0, 40))} is not shell-inert`);
      return await exec(tokens.join(' '), tokens.join(' ').slice(0, 120), options.timeoutMs);
    },
    close: () => ssh.dispose(),
  };
}

export async function withSshSession<T>(
  endpoint: SshEndpoint,
  fn: (session: SshSession) => Promise<T>,
): Promise<T> {
  const session = await openSshSession(endpoint);
  try {
    return await fn(session);
  } finally {
    session.close();
  }
}
