import type { ChildProcess } from 'node:child_process';

/** A server process we started: its recent output, its exit, and a stop that escalates to SIGKILL. */
export interface Supervised {
  /** The last 100 chunks of stdout and stderr, for an error message when it fails to start. */
  output: string[];
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after graceMs; resolves once the process is gone. */
  stop(graceMs: number): Promise<void>;
}

export function supervise(child: ChildProcess, onOutput?: (text: string) => void): Supervised {
  const output: string[] = [];
  const collect = (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    output.push(text);
    if (output.length > 100) output.shift();
    onOutput?.(text);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    output,
    exited,
    stop: async (graceMs) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
