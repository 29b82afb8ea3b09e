// Micro-batching of database round trips on the chat request path. A burst of clicks (a hundred a
// second, each on its own message) would otherwise cost each click its own round trips: which
// request ids were seen, which message was clicked, record the decision on it, queue its edit. Each
// round trip is a syscall pair and a backend wake-up, and on a busy host those, not the SQL, are
// what keeps the process from answering the next click. Calls made within a few milliseconds of
// each other share one statement; a lone call waits at most `maxWaitMs`.

export interface BatcherOptions {
  /** Longest a call waits for company before its batch runs. */
  maxWaitMs?: number;
  /** A batch runs at once when it reaches this many calls. */
  maxSize?: number;
}

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (err: unknown) => void;
}

export class Batcher<I, O> {
  private queue: Pending<I, O>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly maxWaitMs: number;
  private readonly maxSize: number;

  /** `run` answers every item of a batch, in order (one answer per item). */
  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    opts: BatcherOptions = {},
  ) {
    this.maxWaitMs = opts.maxWaitMs ?? 5;
    this.maxSize = opts.maxSize ?? 200;
  }

  call(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= this.maxSize) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.maxWaitMs);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    this.run(batch.map((p) => p.item)).then(
      (answers) => {
        if (answers.length !== batch.length) {
          const err = new Error(`a batch of ${batch.length} got ${answers.length} answers`);
          for (const p of batch) p.reject(err);
          return;
        }
        batch.forEach((p, i) => p.resolve(answers[i]!));
      },
      (err: unknown) => {
        for (const p of batch) p.reject(err);
      },
    );
  }
}
