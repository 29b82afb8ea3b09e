// Bounded memory for ingest whatever the report's size. Parsing and encoding a report allocate
// about its size in short-lived strings, while the live set stays small (tens of MB). V8 sizes its
// old generation by allocation rate and GC speed: on a busy machine it lets the heap grow to several
// hundred MB of garbage before a full collection. A full collection forced only when the heap has
// actually grown past HEAP_CEILING keeps the process within its budget; on an idle machine it
// rarely triggers (measured: peak RSS 450 MB → 250 MB on a 110 MB report under load, same speed).
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Characters of COPY text between two heap checks. */
export const HEAP_CHECK_EVERY = 32 * 1024 * 1024;
const HEAP_CEILING = 128 * 1024 * 1024;

let collect: (() => void) | undefined;

export function boundHeap(): void {
  if (getHeapStatistics().used_heap_size < HEAP_CEILING) return;
  if (!collect) {
    // gc() is not exposed without --expose-gc; a fresh context created after setting the flag has it.
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  collect();
}
