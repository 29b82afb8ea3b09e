// Ingest a report file: its format detected (or given), its bytes hashed while it is parsed (the same
// file is the same scan), its findings streamed from the parser registry into ingestReport.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { InputError } from '../domain/finding.ts';
import type { Pool } from '../runtime/pool.ts';
import { detectFormat, HEAD_BYTES, parseReport, parserFor } from '../scanners/registry.ts';
import { ingestReport, checkIngestOptions, type IngestOptions, type IngestSummary } from './ingest.ts';

export interface IngestFileOptions extends IngestOptions {
  /** Read the file as this format instead of detecting it. */
  format?: string;
  /** Bytes of the file parsed so far, of `total` (plain files; gzip reports progress by findings only). */
  onBytes?: (read: number, total: number) => void;
}

export async function ingestFile(pool: Pool, file: string, opts: IngestFileOptions): Promise<IngestSummary> {
  checkIngestOptions(opts);
  const info = await stat(file).catch((err: NodeJS.ErrnoException) => {
    throw new InputError(err.code === 'ENOENT' ? 'no such file; check the path' : err.message, file);
  });
  if (!info.isFile()) throw new InputError('is not a regular file; pass a report file', file);
  const format = opts.format !== undefined ? parserFor(opts.format).format : await detectFileFormat(file);
  const findings =
    opts.onBytes && (await isPlainUtf8(file))
      ? parserFor(format).parse(countedStream(file, info.size, opts.onBytes), { file })
      : parseReport(file, { format });
  return await ingestReport(pool, { source: file, format, findings, fileSha256: sha256OfFile(file) }, opts);
}

/**
 * A file without gzip magic or byte-order mark: the parser can read its bytes as they are, so they
 * can be counted for the progress bar. Anything else goes through parseReport, which unwraps it.
 */
async function isPlainUtf8(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const { bytesRead, buffer } = await handle.read(Buffer.alloc(3), 0, 3, 0);
    const b = buffer.subarray(0, bytesRead);
    const gzip = b[0] === 0x1f && b[1] === 0x8b;
    const bom = (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) || b[0] === 0xff || b[0] === 0xfe;
    return !gzip && !bom;
  } finally {
    await handle.close();
  }
}

function countedStream(
  file: string,
  total: number,
  onBytes: (read: number, total: number) => void,
): Transform {
  let read = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      read += chunk.length;
      onBytes(read, total);
      done(null, chunk);
    },
  });
  const raw = createReadStream(file, { highWaterMark: 1024 * 1024 });
  raw.on('error', (err) => counter.destroy(err));
  counter.on('close', () => raw.destroy());
  return raw.pipe(counter);
}

/** The format of a report file from its first 64 KiB, as parseReport would detect it. */
export async function detectFileFormat(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const { bytesRead, buffer } = await handle.read(Buffer.alloc(HEAD_BYTES), 0, HEAD_BYTES, 0);
    let head: Buffer = buffer.subarray(0, bytesRead);
    if (head[0] === 0x1f && head[1] === 0x8b) head = gunzipHead(head);
    if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) head = head.subarray(3);
    const text = new TextDecoder('utf-8').decode(head.subarray(0, HEAD_BYTES));
    return detectFormat(text, path.basename(file).replace(/\.gz$/i, ''), file).format;
  } finally {
    await handle.close();
  }
}

/** The start of a gzip stream: a truncated member still yields what it decoded. */
function gunzipHead(compressed: Buffer): Buffer {
  try {
    return gunzipSync(compressed, { finishFlush: 2 /* Z_SYNC_FLUSH */ });
  } catch {
    return Buffer.alloc(0);
  }
}

export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}
