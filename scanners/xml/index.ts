// Safe streaming XML reader shared by the XML scanner parsers (Nessus, OpenVAS, Nmap, Qualys).
//
// saxes does the tokenizing; this layer adds what untrusted multi-gigabyte reports need:
// - It reads the Readable chunk by chunk through async iteration, so backpressure is the consumer's
//   pace and memory never holds more than a chunk plus the record being built.
// - A DOCTYPE with an internal subset is refused before saxes even reads it: that is where entity
//   declarations live, i.e. every XXE and "billion laughs" attack. A bare DOCTYPE (`<!DOCTYPE nmaprun>`)
//   and one naming an external DTD (`SYSTEM "https://…/asset_data_report.dtd"`, as every Qualys export
//   does) are accepted: they declare nothing, saxes never fetches anything, and any entity reference
//   other than the five predefined ones fails as undefined.
// - Every token saxes has to accumulate (text node, attribute list, comment, CDATA, DOCTYPE) is capped:
//   if no parse event happens for `maxTokenChars` characters, the file is refused. Nesting depth,
//   record size and record node count are capped too.
// - Callers do not see SAX events; they name what they want with selectors and get either whole small
//   subtrees ("record": one ReportItem) or open/close notifications ("container": a ReportHost, whose
//   children are records). Text outside records is never accumulated at all.
// - saxes errors become an InputError naming file, line and column; truncated and non-XML input get a
//   plain-language message.

import type { Readable } from 'node:stream';
import { SaxesParser } from 'saxes';
import type { SaxesTagPlain } from 'saxes';
import { InputError } from '../../domain/finding.ts';
import { xmlDecoderFor } from './decode.ts';
import type { ChunkDecoder } from './decode.ts';
import type { XmlAttrs, XmlElement } from './element.ts';

export type { XmlAttrs, XmlElement } from './element.ts';
export { child, childText, childTexts, childrenNamed, descend, textOf } from './element.ts';

export interface XmlLimits {
  /** Longest stretch of input without a parse event: bounds any single text node, attribute list, comment. */
  maxTokenChars: number;
  /** Total characters (text + attribute values) in one record. */
  maxRecordChars: number;
  /** Elements in one record. */
  maxRecordNodes: number;
  maxDepth: number;
  /** Input read before the root element starts (XML declaration, comments, DOCTYPE). */
  maxPrologChars: number;
}

export const DEFAULT_XML_LIMITS: Readonly<XmlLimits> = {
  maxTokenChars: 8 * 1024 * 1024,
  maxRecordChars: 32 * 1024 * 1024,
  maxRecordNodes: 500_000,
  maxDepth: 256,
  maxPrologChars: 1024 * 1024,
};

/**
 * Which elements a caller wants. `path` is a `/`-separated list of element names matched against the
 * end of the current element path ("ReportHost/ReportItem"), or against the whole path when it starts
 * with `/` ("/nmaprun/host"). `*` matches any one name. Selectors are tried in order, first match wins;
 * elements inside a record are part of that record and are not matched again.
 */
export interface XmlSelector {
  readonly path: string;
  readonly as: 'record' | 'container';
}

export type XmlEvent =
  | { readonly kind: 'root'; readonly name: string; readonly attrs: XmlAttrs; readonly line: number }
  | {
      readonly kind: 'open';
      readonly selector: string;
      readonly name: string;
      readonly attrs: XmlAttrs;
      readonly line: number;
    }
  | { readonly kind: 'close'; readonly selector: string; readonly name: string; readonly line: number }
  | { readonly kind: 'record'; readonly selector: string; readonly element: XmlElement };

export interface XmlReadOptions {
  /** Path or name for error messages. */
  file: string;
  select: readonly XmlSelector[];
  /** Accepted root element names; another root is refused with a message naming what was expected. */
  roots?: readonly string[];
  /** What the caller expects, for the wrong-root message ("a Nessus .nessus (v2) report"). */
  describe?: string;
  limits?: Partial<XmlLimits>;
}

/** An element while its record is being built. */
interface OpenElement {
  readonly name: string;
  readonly attrs: XmlAttrs;
  children: XmlElement[];
  text: string;
  readonly line: number;
}

// Most elements in a record are leaves; they share this array until a first child arrives, which
// saves an allocation per element (GC was 14% of parse time).
const NO_CHILDREN: XmlElement[] = Object.freeze([]) as unknown as XmlElement[];

function adopt(parent: OpenElement | undefined, node: OpenElement): void {
  if (parent === undefined) return;
  if (parent.children === NO_CHILDREN) parent.children = [node];
  else parent.children.push(node);
}

interface CompiledSelector {
  readonly path: string;
  readonly anchored: boolean;
  readonly steps: readonly string[];
  readonly as: 'record' | 'container';
}

// Feeding saxes bounded slices keeps the event queue (and thus memory) small even when a caller hands
// us one enormous chunk, and lets the token cap react within one slice.
const SLICE_CHARS = 256 * 1024;

function compile(selectors: readonly XmlSelector[]): CompiledSelector[] {
  return selectors.map((s) => {
    const anchored = s.path.startsWith('/');
    const steps = (anchored ? s.path.slice(1) : s.path).split('/');
    if (steps.some((st) => st === '')) throw new Error(`invalid XML selector "${s.path}"`);
    return { path: s.path, anchored, steps, as: s.as };
  });
}

function matches(sel: CompiledSelector, stack: readonly string[]): boolean {
  const n = sel.steps.length;
  if (sel.anchored ? stack.length !== n : stack.length < n) return false;
  const offset = stack.length - n;
  for (let i = n - 1; i >= 0; i--) {
    const step = sel.steps[i];
    if (step !== '*' && step !== stack[offset + i]) return false;
  }
  return true;
}

/** Refusal message shared by the prolog pre-check and the saxes doctype backstop. */
const DTD_REFUSED =
  'refusing a DOCTYPE with an internal subset: entity declarations are how XXE and entity-expansion ' +
  '("billion laughs") attacks work, and no scanner report needs one';

/**
 * Look at the text before the root element (without parsing it) and refuse what must never reach the
 * parser. Returns true once the root element has started, after which the prolog is no longer tracked.
 */
function checkProlog(prolog: string, file: string, limits: XmlLimits): boolean {
  // The first "<" followed by a name character opens the root element; a DOCTYPE must precede it.
  const rootAt = prolog.search(/<[A-Za-z_:]/);
  const head = rootAt < 0 ? prolog : prolog.slice(0, rootAt);
  const doctypeAt = head.indexOf('<!DOCTYPE');
  if (doctypeAt >= 0) {
    const end = head.indexOf('>', doctypeAt);
    const decl = end < 0 ? head.slice(doctypeAt) : head.slice(doctypeAt, end + 1);
    if (decl.includes('[')) throw new InputError(DTD_REFUSED, file, lineAt(prolog, doctypeAt));
    if (end < 0 && decl.length > 4096) {
      throw new InputError('refusing an oversized DOCTYPE declaration', file, lineAt(prolog, doctypeAt));
    }
  }
  const entityAt = head.indexOf('<!ENTITY');
  if (entityAt >= 0) throw new InputError(DTD_REFUSED, file, lineAt(prolog, entityAt));
  if (rootAt < 0 && prolog.length > limits.maxPrologChars) {
    throw new InputError(
      `no root element in the first ${limits.maxPrologChars} characters; this is not a scanner report`,
      file,
    );
  }
  return rootAt >= 0;
}

function lineAt(s: string, index: number): number {
  let line = 1;
  for (let i = s.indexOf('\n'); i >= 0 && i < index; i = s.indexOf('\n', i + 1)) line++;
  return line;
}

function explain(saxesMessage: string): string {
  const msg = saxesMessage.replace(/^\d+:\d+: /, '');
  if (msg.startsWith('unclosed tag: ')) {
    return `the document ends inside <${msg.slice('unclosed tag: '.length)}>: the file is truncated`;
  }
  if (msg === 'document must contain a root element.') return 'the file is empty or is not an XML document';
  if (msg === 'text data outside of root node.')
    return 'this is not an XML document (text outside any element)';
  if (msg.startsWith('undefined entity'))
    return `${msg.replace(/\.$/, '')} (only the five XML entities are allowed)`;
  return `malformed XML: ${msg.replace(/\.$/, '')}`;
}

/**
 * Stream an XML document and yield the selected records and container boundaries in document order.
 * Throws InputError for malformed, truncated, hostile or oversized input.
 */
export async function* readXml(
  input: Readable,
  opts: XmlReadOptions,
): AsyncGenerator<XmlEvent, void, undefined> {
  for await (const batch of readXmlBatches(input, opts)) yield* batch;
}

/**
 * Same as readXml, one array of events per input chunk: an async step per chunk instead of per
 * event, which is measurable at 100k+ records per second. The next chunk is read only once the
 * consumer asks for the next batch (backpressure).
 */
export async function* readXmlBatches(
  input: Readable,
  opts: XmlReadOptions,
): AsyncGenerator<readonly XmlEvent[], void, undefined> {
  const { file } = opts;
  const limits: XmlLimits = { ...DEFAULT_XML_LIMITS, ...opts.limits };
  const selectors = compile(opts.select);
  const parser = new SaxesParser({ xmlns: false, position: true });

  const events: XmlEvent[] = [];
  const stack: string[] = [];
  /** Selector path of the container opened at each depth, if any. */
  const containerAt: (string | undefined)[] = [];
  /** Open elements of the record being built; empty outside records. */
  const record: OpenElement[] = [];
  let recordSelector = '';
  let recordChars = 0;
  let recordNodes = 0;
  let progressed = false;
  let rootSeen = false;

  const fail = (message: string): never => {
    throw new InputError(message, file, parser.line, parser.column + 1);
  };

  const addRecordChars = (n: number): void => {
    recordChars += n;
    if (recordChars > limits.maxRecordChars) {
      const start = record[0];
      fail(
        `<${start?.name ?? '?'}> starting at line ${start?.line ?? '?'} is larger than ${limits.maxRecordChars} characters`,
      );
    }
  };

  const onText = (t: string): void => {
    progressed = true;
    const node = record[record.length - 1];
    if (node === undefined) return;
    node.text += t;
    addRecordChars(t.length);
  };

  // Keep the number of saxes handlers at six: saxes stores handlers with computed property names, and
  // past a handful of those V8 turns the parser into a dictionary-mode object, which makes every
  // per-character property read slow (measured: 75 → 17 MB/s with eight handlers). Comments and
  // processing instructions therefore have no handler; they only matter to the token cap, where a
  // comment counts as "no progress" — harmless, since real reports do not carry megabytes of comments.
  parser.on('error', (err: Error) => fail(explain(err.message)));
  parser.on('doctype', (doctype: string) => {
    progressed = true;
    if (doctype.includes('[')) fail(DTD_REFUSED);
  });
  parser.on('cdata', (data: string) => {
    progressed = true;
    if (record.length > 0) onText(data);
  });

  parser.on('opentag', (tag: SaxesTagPlain) => {
    progressed = true;
    const depth = stack.length;
    if (depth >= limits.maxDepth) fail(`elements nested deeper than ${limits.maxDepth} levels`);
    const { name, attributes } = tag;
    stack.push(name);

    if (record.length > 0) {
      const node: OpenElement = {
        name,
        attrs: attributes,
        children: NO_CHILDREN,
        text: '',
        line: parser.line,
      };
      adopt(record[record.length - 1], node);
      record.push(node);
      if (++recordNodes > limits.maxRecordNodes) {
        fail(
          `<${recordSelector}> starting at line ${record[0]?.line} has more than ${limits.maxRecordNodes} elements`,
        );
      }
      let n = 0;
      for (const k in attributes) n += attributes[k]?.length ?? 0;
      if (n > 0) addRecordChars(n);
      return;
    }

    if (depth === 0) {
      rootSeen = true;
      if (opts.roots !== undefined && !opts.roots.includes(name)) {
        const expected = opts.roots.map((r) => `<${r}>`).join(' or ');
        fail(
          `expected ${opts.describe ?? 'a document'} (root element ${expected}) but the root element is <${name}>`,
        );
      }
      events.push({ kind: 'root', name, attrs: attributes, line: parser.line });
    }

    for (const sel of selectors) {
      if (!matches(sel, stack)) continue;
      if (sel.as === 'record') {
        const node: OpenElement = {
          name,
          attrs: attributes,
          children: NO_CHILDREN,
          text: '',
          line: parser.line,
        };
        record.push(node);
        recordSelector = sel.path;
        recordNodes = 1;
        recordChars = 0;
        let n = 0;
        for (const k in attributes) n += attributes[k]?.length ?? 0;
        if (n > 0) addRecordChars(n);
        // Only now is character data worth keeping; outside records saxes does not even accumulate it.
        parser.on('text', onText);
      } else {
        containerAt[depth] = sel.path;
        events.push({ kind: 'open', selector: sel.path, name, attrs: attributes, line: parser.line });
      }
      break;
    }
  });

  parser.on('closetag', (tag: SaxesTagPlain) => {
    progressed = true;
    stack.pop();
    const depth = stack.length;
    if (record.length > 0) {
      const node = record.pop();
      if (record.length === 0 && node !== undefined) {
        parser.off('text');
        events.push({ kind: 'record', selector: recordSelector, element: node });
      }
      return;
    }
    const sel = containerAt[depth];
    if (sel !== undefined) {
      containerAt[depth] = undefined;
      events.push({ kind: 'close', selector: sel, name: tag.name, line: parser.line });
    }
  });

  let decoder: ChunkDecoder | undefined;
  let prolog = '';
  let quiet = 0;

  const feed = (text: string): void => {
    for (let at = 0; at < text.length; at += SLICE_CHARS) {
      const slice = at === 0 && text.length <= SLICE_CHARS ? text : text.slice(at, at + SLICE_CHARS);
      if (!rootSeen) {
        prolog += slice;
        if (checkProlog(prolog, file, limits)) prolog = '';
      }
      progressed = false;
      parser.write(slice);
      // An event anywhere in the slice resets the count, so a token can exceed the cap by at most a slice.
      quiet = progressed ? 0 : quiet + slice.length;
      if (quiet > limits.maxTokenChars) {
        fail(`a single text node, tag or comment is longer than ${limits.maxTokenChars} characters`);
      }
    }
  };

  for await (const chunk of input as AsyncIterable<Buffer | string>) {
    let text: string;
    if (typeof chunk === 'string') {
      text = chunk;
    } else {
      decoder ??= xmlDecoderFor(chunk, file);
      text = decoder.write(chunk);
    }
    if (text.length > 0) feed(text);
    if (events.length > 0) yield events.splice(0);
  }
  const tail = decoder?.end() ?? '';
  if (tail.length > 0) feed(tail);
  parser.close();
  if (events.length > 0) yield events.splice(0);
}

/**
 * Name of the root element in the first bytes of a document, skipping the XML declaration, comments,
 * processing instructions and DOCTYPE; undefined if the head does not look like XML. For `detect()`.
 */
export function sniffXmlRoot(head: string): string | undefined {
  let i = 0;
  const n = head.length;
  while (i < n) {
    const lt = head.indexOf('<', i);
    if (lt < 0) return undefined;
    // Only whitespace may precede markup in a prolog.
    if (head.slice(i, lt).trim() !== '') return undefined;
    if (head.startsWith('<?', lt)) {
      const end = head.indexOf('?>', lt + 2);
      if (end < 0) return undefined;
      i = end + 2;
    } else if (head.startsWith('<!--', lt)) {
      const end = head.indexOf('-->', lt + 4);
      if (end < 0) return undefined;
      i = end + 3;
    } else if (head.startsWith('<!DOCTYPE', lt)) {
      const end = head.indexOf('>', lt);
      if (end < 0) return undefined;
      i = end + 1;
    } else {
      const m = /^<([A-Za-z_][\w.:-]*)/.exec(head.slice(lt, lt + 200));
      return m?.[1];
    }
  }
  return undefined;
}
