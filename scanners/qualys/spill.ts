// A FIFO that stays in memory while small and moves to a temporary NDJSON file when it grows. The
// Qualys Asset Data Report lists every host's detections first and the vulnerability details (title,
// severity, CVEs) only at the end, so detections must wait for the glossary; on a large report that
// wait must not hold the whole file in memory.

import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export class SpillQueue<T> {
  private memory: T[] = [];
  private memoryChars = 0;
  private dir: string | undefined;
  private out: WriteStream | undefined;
  private path: string | undefined;

  /** @param limitChars approximate serialized size kept in memory before spilling to disk. */
  constructor(private readonly limitChars = 64 * 1024 * 1024) {}

  get spilled(): boolean {
    return this.out !== undefined;
  }

  async push(item: T): Promise<void> {
    if (this.out === undefined) {
      this.memory.push(item);
      // Evidence dominates the size; a rough estimate is enough to decide when to spill.
      this.memoryChars += estimateChars(item);
      if (this.memoryChars <= this.limitChars) return;
      await this.spill();
      return;
    }
    await this.write(item);
  }

  /** Everything pushed, in order. Call once, after the last push. */
  async *drain(): AsyncGenerator<T, void, undefined> {
    if (this.out === undefined || this.path === undefined) {
      const items = this.memory;
      this.memory = [];
      yield* items;
      return;
    }
    const out = this.out;
    const finished = once(out, 'finish');
    out.end();
    await finished;
    const lines = createInterface({ input: createReadStream(this.path, 'utf8'), crlfDelay: Infinity });
    for await (const line of lines) {
      if (line !== '') yield JSON.parse(line) as T;
    }
  }

  async dispose(): Promise<void> {
    this.out?.destroy();
    this.memory = [];
    if (this.dir !== undefined) await rm(this.dir, { recursive: true, force: true });
  }

  private async spill(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'ctem-qualys-'));
    this.path = join(this.dir, 'pending.ndjson');
    this.out = createWriteStream(this.path, { mode: 0o600 });
    const items = this.memory;
    this.memory = [];
    this.memoryChars = 0;
    for (const item of items) await this.write(item);
  }

  private async write(item: T): Promise<void> {
    const out = this.out as WriteStream;
    if (!out.write(`${JSON.stringify(item)}\n`)) await once(out, 'drain');
  }
}

function estimateChars(item: unknown): number {
  let n = 64;
  if (item !== null && typeof item === 'object') {
    for (const v of Object.values(item)) if (typeof v === 'string') n += v.length;
  }
  return n;
}
