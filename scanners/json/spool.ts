// A FIFO that holds values a parser cannot finish yet because the context they need comes later in
// the file (Grype writes "source" after all "matches"; SARIF may put versionControlProvenance after
// "results"). It keeps up to `memoryLimit` characters in memory and spills to a temporary NDJSON
// file beyond that, so a held-back million entries cost disk, not heap.

import { closeSync, createReadStream, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const DEFAULT_MEMORY_LIMIT = 16 * 1024 * 1024;
const WRITE_BATCH = 1024 * 1024;

export class Spool<T> {
  private memory: string[] = [];
  private memoryChars = 0;
  private dir: string | undefined;
  private fd: number | undefined;
  private pending = '';
  private count = 0;

  constructor(private readonly memoryLimit = DEFAULT_MEMORY_LIMIT) {}

  get size(): number {
    return this.count;
  }

  /** Values must survive JSON.stringify/parse: plain data, no undefined inside arrays. */
  push(value: T): void {
    const line = JSON.stringify(value);
    this.count++;
    if (this.fd === undefined) {
      this.memory.push(line);
      this.memoryChars += line.length;
      if (this.memoryChars <= this.memoryLimit) return;
      this.spill();
      return;
    }
    this.pending += `${line}\n`;
    if (this.pending.length >= WRITE_BATCH) this.flush();
  }

  /** Yield everything held, oldest first, and leave the spool empty and reusable. */
  async *drain(): AsyncGenerator<T> {
    try {
      if (this.fd === undefined) {
        const lines = this.memory;
        this.memory = [];
        this.memoryChars = 0;
        for (const line of lines) yield JSON.parse(line) as T;
        return;
      }
      this.flush();
      closeSync(this.fd);
      this.fd = undefined;
      const file = join(this.dir!, 'spool.ndjson');
      const lines = createInterface({
        input: createReadStream(file, { highWaterMark: 1024 * 1024 }),
        crlfDelay: Infinity,
      });
      try {
        for await (const line of lines) if (line !== '') yield JSON.parse(line) as T;
      } finally {
        lines.close();
      }
    } finally {
      this.count = 0;
      this.dispose();
    }
  }

  /** Remove the temporary file, if any. Safe to call more than once. */
  dispose(): void {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
    if (this.dir !== undefined) {
      rmSync(this.dir, { recursive: true, force: true });
      this.dir = undefined;
    }
    this.memory = [];
    this.memoryChars = 0;
    this.pending = '';
  }

  private spill(): void {
    this.dir = mkdtempSync(join(tmpdir(), 'ctem-spool-'));
    this.fd = openSync(join(this.dir, 'spool.ndjson'), 'w', 0o600);
    this.pending = this.memory.join('\n') + '\n';
    this.memory = [];
    this.memoryChars = 0;
    this.flush();
  }

  private flush(): void {
    if (this.fd !== undefined && this.pending !== '') {
      writeSync(this.fd, this.pending);
      this.pending = '';
    }
  }
}
