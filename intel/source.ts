// Where feed bytes come from: a local file or an http(s) URL, gzip-compressed or not (detected from
// the content, not the name), always as a stream so memory stays bounded whatever the size.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { FeedInputError } from './runs.ts';

export function isUrl(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

/** Raw bytes of a file or URL. A URL answering other than 2xx is a clear error. */
export async function openBytes(location: string, init?: RequestInit): Promise<Readable> {
  if (isUrl(location)) {
    const response = await fetch(location, init);
    if (!response.ok || !response.body) {
      throw new FeedInputError(`${location} answered HTTP ${response.status} ${response.statusText}`.trim());
    }
    return Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
  }
  const info = await stat(location).catch(() => undefined);
  if (!info) throw new FeedInputError(`${location} does not exist`);
  if (!info.isFile()) throw new FeedInputError(`${location} is not a file`);
  return createReadStream(location, { highWaterMark: 1 << 20 });
}

/** The bytes, gunzipped when they start with the gzip magic number. */
export async function* decompressed(source: AsyncIterable<Buffer | Uint8Array>): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return;
  const head = Buffer.from(first.value);
  async function* all(): AsyncGenerator<Buffer> {
    yield head;
    for (;;) {
      const next = await it.next();
      if (next.done) return;
      yield Buffer.from(next.value);
    }
  }
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    const gunzip = createGunzip();
    const feeding = pipeline(Readable.from(all()), gunzip);
    // Errors surface through iterating gunzip (pipeline destroys it); keep the promise handled.
    feeding.catch(() => undefined);
    for await (const chunk of gunzip) yield chunk as Buffer;
    await feeding;
  } else {
    yield* all();
  }
}

/** Text lines of a (possibly gzipped) stream, with their 1-based numbers; handles \n and \r\n. */
export async function* lines(
  source: AsyncIterable<Buffer | Uint8Array>,
): AsyncGenerator<{ n: number; text: string }> {
  let rest = '';
  let n = 0;
  const decoder = new TextDecoder('utf-8');
  for await (const chunk of decompressed(source)) {
    const text = rest + decoder.decode(chunk, { stream: true });
    const parts = text.split('\n');
    rest = parts.pop() ?? '';
    for (const p of parts) yield { n: ++n, text: p.endsWith('\r') ? p.slice(0, -1) : p };
  }
  rest += decoder.decode();
  if (rest !== '') yield { n: n + 1, text: rest.endsWith('\r') ? rest.slice(0, -1) : rest };
}
