// `ctem parse FILE [--format F]`: a scanner report as normalized findings, one JSON object per line on
// stdout, streaming, no database. Made for pipes (`ctem parse big.json | head`, `| jq`): when the
// reader goes away the command stops quietly instead of dying on EPIPE.

import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { InputError } from '../../domain/finding.ts';
import { FORMATS, parseReport } from '../../scanners/registry.ts';

export interface ParseOptions {
  format?: string;
}

export interface ParseStreams {
  stdout: Writable;
  stderr: Writable;
}

// Lines go out in 64 KiB batches: a write per finding would be a system call per finding on a pipe.
const BATCH_CHARS = 64 * 1024;

/** Run the command; resolves to the exit code (0 ok or reader gone, 2 bad input, 1 anything else). */
export async function runParse(file: string, options: ParseOptions, io: ParseStreams): Promise<number> {
  const out = new LineWriter(io.stdout);
  try {
    for await (const finding of parseReport(file, { format: options.format })) {
      if (!(await out.write(JSON.stringify(finding)))) break;
    }
    await out.flush();
    out.check();
    return 0;
  } catch (err) {
    if (out.readerGone) return 0;
    // Lines not yet written are dropped: a small report that fails prints nothing on stdout. A large
    // one may already have streamed findings; exit code 2 says to discard them.
    const message = err instanceof Error ? err.message : String(err);
    io.stderr.write(`ctem: ${message}\n`);
    return err instanceof InputError ? 2 : 1;
  }
}

export function defineParse(cmd: Command): void {
  cmd
    .argument('<file>', 'scanner report; gzip is read transparently')
    .option('-f, --format <format>', `report format, detected when omitted: ${FORMATS.join(', ')}`)
    .action(async (file: string, opts: ParseOptions) => {
      process.exitCode = await runParse(file, opts, { stdout: process.stdout, stderr: process.stderr });
    });
}

/**
 * Batched, backpressure-aware line output that notices when the reader has gone (EPIPE). Its error
 * listener stays attached: process.stdout outlives the command and a late EPIPE must not crash it.
 */
class LineWriter {
  private buffer = '';
  /** The reader closed the pipe: stop quietly, exit 0. */
  readerGone = false;
  private failure: Error | undefined;

  constructor(private readonly out: Writable) {
    out.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') this.readerGone = true;
      else this.failure ??= err;
    });
  }

  /** Queue one line; false once nothing more can be written and the caller should stop. */
  async write(line: string): Promise<boolean> {
    if (this.readerGone || this.failure) return false;
    this.buffer += `${line}\n`;
    if (this.buffer.length >= BATCH_CHARS) await this.flush();
    return !this.readerGone && !this.failure;
  }

  async flush(): Promise<void> {
    if (this.buffer === '' || this.readerGone || this.failure) return;
    const chunk = this.buffer;
    this.buffer = '';
    if (this.out.write(chunk)) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.out.off('drain', done);
        this.out.off('error', done);
        this.out.off('close', done);
        resolve();
      };
      this.out.on('drain', done);
      this.out.on('error', done);
      this.out.on('close', done);
    });
  }

  /** Throw a write failure that was not the reader going away (a full disk, say). */
  check(): void {
    if (this.failure && !this.readerGone) throw this.failure;
  }
}
