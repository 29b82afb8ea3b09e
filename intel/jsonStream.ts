// Streaming read of a JSON document shaped like the KEV catalog or an NVD API 2.0 response:
// a root object whose scalar fields are small and one array field is large. Each element of the
// large array is assembled and yielded alone, so memory is bounded by the largest element.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import streamJson from 'stream-json';
import Assembler from 'stream-json/Assembler.js';
import { decompressed } from './source.ts';
import { FeedInputError } from './runs.ts';

export type TopLevelEvent =
  | { kind: 'field'; key: string; value: unknown }
  | { kind: 'item'; key: string; index: number; value: unknown };

interface Token {
  name: string;
  value?: string;
}

function primitive(t: Token): { is: boolean; value?: unknown } {
  switch (t.name) {
    case 'stringValue':
      return { is: true, value: t.value };
    case 'numberValue':
      return { is: true, value: Number(t.value) };
    case 'nullValue':
      return { is: true, value: null };
    case 'trueValue':
      return { is: true, value: true };
    case 'falseValue':
      return { is: true, value: false };
    default:
      return { is: false };
  }
}

/**
 * Yield the root object's fields, and the elements of the arrays named in `arrays` one by one.
 * `what` names the input in error messages.
 */
export async function* topLevelJson(
  bytes: AsyncIterable<Buffer | Uint8Array>,
  arrays: ReadonlySet<string>,
  what: string,
): AsyncGenerator<TopLevelEvent> {
  const parser = streamJson.parser({ streamValues: false });
  const feeding = pipeline(Readable.from(decompressed(bytes)), parser);
  feeding.catch(() => undefined);
  let state: 'start' | 'root' | 'value' | 'array' | 'done' = 'start';
  let key = '';
  let index = 0;
  let assembling: { asm: Assembler; target: 'field' | 'item' } | undefined;
  try {
    for await (const chunk of parser) {
      const t = chunk as Token;
      if (assembling) {
        assembling.asm.consume(t);
        if (assembling.asm.done) {
          const value = assembling.asm.current as unknown;
          if (assembling.target === 'item') yield { kind: 'item', key, index: index++, value };
          else yield { kind: 'field', key, value };
          assembling = undefined;
        }
        continue;
      }
      switch (state) {
        case 'start':
          if (t.name !== 'startObject')
            throw new FeedInputError(`${what} is not a JSON object at the top level`);
          state = 'root';
          break;
        case 'root':
          if (t.name === 'keyValue') {
            key = t.value ?? '';
            state = 'value';
          } else if (t.name === 'endObject') state = 'done';
          break;
        case 'value': {
          state = 'root';
          if (t.name === 'startArray' && arrays.has(key)) {
            state = 'array';
            index = 0;
            break;
          }
          const p = primitive(t);
          if (p.is) yield { kind: 'field', key, value: p.value };
          else {
            assembling = { asm: new Assembler(), target: 'field' };
            assembling.asm.consume(t);
          }
          break;
        }
        case 'array': {
          if (t.name === 'endArray') {
            state = 'root';
            break;
          }
          const p = primitive(t);
          if (p.is) yield { kind: 'item', key, index: index++, value: p.value };
          else {
            assembling = { asm: new Assembler(), target: 'item' };
            assembling.asm.consume(t);
          }
          break;
        }
        case 'done':
          break;
      }
    }
    await feeding;
  } catch (err) {
    if (err instanceof FeedInputError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new FeedInputError(`${what} is not valid JSON: ${message}`);
  }
  if (state !== 'done') throw new FeedInputError(`${what} ends before its JSON document does (truncated?)`);
}
