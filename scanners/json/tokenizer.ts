// A purpose-built streaming JSON scanner. It walks only the shallow structure that path patterns can
// reach (tracking keys, indices and full JSON syntax there) and, for a value it must hand over, finds
// its end by bracket and string tracking alone, then JSON.parses just that slice. Everything no
// pattern reaches is skipped without building anything. This is what keeps memory bounded (one value
// at a time, capped) while running several times faster than a general event parser such as
// stream-json, which materializes a token for every string and number of a 1 GB report.

import { InputError } from '../../domain/finding.ts';
import {
  type Classification,
  type JsonPathSegment,
  type MatchNode,
  type PathMatcher,
  pathText,
} from './path.ts';
import { locateSyntaxError } from './syntax.ts';

export type JsonEvent =
  | {
      readonly kind: 'value';
      /** The pattern that matched, verbatim as given to the reader. */
      readonly pattern: string;
      readonly path: JsonPathSegment[];
      readonly value: unknown;
      /** Where the value starts (1-based); absent when the whole file was parsed at once. */
      readonly line?: number;
      readonly column?: number;
    }
  | { readonly kind: 'close'; readonly pattern: string; readonly path: JsonPathSegment[] }
  /** First event of every document: what the top-level value is. */
  | { readonly kind: 'root'; readonly type: 'object' | 'array' | 'null' };

const QUOTE = 34;
const BACKSLASH = 92;
const LBRACE = 123;
const RBRACE = 125;
const LBRACKET = 91;
const RBRACKET = 93;
const COMMA = 44;
const COLON = 58;
const NL = 10;
const CR = 13;
const SPACE = 32;
const TAB = 9;

// What the navigator expects next.
const E_VALUE = 0;
const E_VALUE_OR_CLOSE = 1; // right after '['
const E_KEY_OR_CLOSE = 2; // right after '{'
const E_KEY = 3;
const E_COLON = 4;
const E_COMMA_OR_CLOSE = 5;
const E_END = 6; // after the top-level value

// What the scanner is in the middle of.
const M_NAV = 0;
const M_CONTAINER = 1; // an object/array value being picked or skipped
const M_STRING = 2; // a string value being picked or skipped
const M_SCALAR = 3; // a number or literal being picked or skipped
const M_KEY = 4; // an object key at a navigated level

// Keys and scalars at navigated levels are kept across chunks; a few KiB is far beyond any real one.
const MAX_TOKEN_CHARS = 64 * 1024;
const SCALAR_RE = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)$/;

interface Frame {
  readonly isArray: boolean;
  readonly node: MatchNode;
  readonly scope: string | undefined;
  count: number;
  key: string;
  readonly line: number;
}

export class JsonPicker {
  private buf = '';
  private pos = 0;
  /** Absolute character offset of buf[0]. */
  private base = 0;
  private line = 1;
  /** Absolute offset of the first character of the current line. */
  private lineStart = 0;
  private readonly stack: Frame[] = [];
  private readonly path: JsonPathSegment[] = [];
  private expect = E_VALUE;
  private mode = M_NAV;
  private started = false;
  private events: JsonEvent[] = [];

  // The value (or key) in flight.
  private vStart = 0;
  private vLine = 0;
  private vColumn = 0;
  private vPick: string | undefined;
  private vSegment: JsonPathSegment | undefined;
  /** The value must be null: a container was expected and only null can stand in for an empty one. */
  private vNullOnly = false;
  private vExpect: 'array' | 'object' | 'any' = 'any';
  private depth = 0;
  private inString = false;
  /** Lower bound when counting backslashes before a quote: a position inside a string, not mid-escape. */
  private strFrom = 0;

  constructor(
    private readonly matcher: PathMatcher,
    private readonly file: string,
    private readonly maxValueChars: number,
  ) {}

  /** Feed the next piece of text; returns the events it completed. Throws InputError on bad input. */
  push(chunk: string): JsonEvent[] {
    const keep = this.keepFrom();
    this.buf = keep < this.buf.length ? this.buf.slice(keep) + chunk : chunk;
    this.base += keep;
    this.pos -= keep;
    this.vStart -= keep;
    this.strFrom -= keep;
    this.run();
    if (
      this.mode !== M_NAV &&
      this.vPick !== undefined &&
      this.buf.length - this.vStart > this.maxValueChars
    ) {
      throw this.errorAt(
        `${this.describeValue()} is larger than ${formatSize(this.maxValueChars)}, more than any real report entry; the file is probably corrupt or hostile`,
        this.vLine,
        this.vColumn,
      );
    }
    const events = this.events;
    this.events = [];
    return events;
  }

  /** Signal end of input; returns the last events or throws if the document is incomplete. */
  end(): JsonEvent[] {
    if (this.mode === M_SCALAR) {
      this.finishScalar(this.buf.length);
      this.pos = this.buf.length;
    }
    if (!this.started) throw new InputError('the file is empty; expected a JSON report', this.file);
    if (this.mode !== M_NAV || this.stack.length > 0) {
      const open = this.stack[this.stack.length - 1];
      const what =
        this.mode !== M_NAV
          ? `${this.describeValue()} (started at line ${this.vLine})`
          : `${pathText(this.path) || 'the top-level value'} (opened at line ${open?.line ?? 1})`;
      throw this.errorAt(
        `the file ends inside ${what}; the report is truncated, re-export or re-copy it`,
        this.line,
        this.base + this.buf.length - this.lineStart + 1,
      );
    }
    const events = this.events;
    this.events = [];
    return events;
  }

  private keepFrom(): number {
    switch (this.mode) {
      case M_NAV:
        return this.buf.length;
      case M_KEY:
      case M_SCALAR:
        return this.vStart;
      default: {
        if (this.vPick !== undefined) return this.vStart;
        if (!this.inString && this.mode === M_CONTAINER) return this.buf.length;
        // Skipping inside a string: keep only a trailing run of backslashes, which decides whether a
        // quote at the start of the next chunk is escaped.
        let k = this.buf.length;
        while (k > this.strFrom && this.buf.charCodeAt(k - 1) === BACKSLASH) k--;
        this.strFrom = k;
        return k;
      }
    }
  }

  private run(): void {
    while (this.pos < this.buf.length) {
      switch (this.mode) {
        case M_NAV:
          this.navigate();
          break;
        case M_CONTAINER:
          this.scanContainer();
          break;
        case M_STRING:
          this.scanString();
          break;
        case M_SCALAR:
          this.scanScalar();
          break;
        case M_KEY:
          this.scanKey();
          break;
      }
    }
  }

  private navigate(): void {
    const buf = this.buf;
    const n = buf.length;
    while (this.pos < n && this.mode === M_NAV) {
      const c = buf.charCodeAt(this.pos);
      if (c === SPACE || c === NL || c === CR || c === TAB) {
        if (c === NL) this.newline(this.pos);
        this.pos++;
        continue;
      }
      this.started = true;
      switch (this.expect) {
        case E_VALUE:
        case E_VALUE_OR_CLOSE:
          if (c === RBRACKET && this.expect === E_VALUE_OR_CLOSE) this.closeFrame();
          else this.beginValue(c);
          break;
        case E_KEY_OR_CLOSE:
        case E_KEY:
          if (c === RBRACE && this.expect === E_KEY_OR_CLOSE) this.closeFrame();
          else if (c === QUOTE) {
            this.vStart = this.pos;
            this.strFrom = this.pos + 1;
            this.pos++;
            this.mode = M_KEY;
          } else throw this.unexpected(c, `a property name in double quotes in ${this.where()}`);
          break;
        case E_COLON:
          if (c !== COLON)
            throw this.unexpected(c, `':' after property "${this.top()!.key}" in ${this.where()}`);
          this.pos++;
          this.expect = E_VALUE;
          break;
        case E_COMMA_OR_CLOSE: {
          const top = this.top()!;
          if (c === COMMA) {
            this.pos++;
            this.expect = top.isArray ? E_VALUE : E_KEY;
          } else if (c === (top.isArray ? RBRACKET : RBRACE)) this.closeFrame();
          else
            throw this.unexpected(c, `',' or '${top.isArray ? ']' : '}'}' after a value in ${this.where()}`);
          break;
        }
        default:
          throw this.unexpected(c, 'nothing more after the end of the JSON document');
      }
    }
  }

  private beginValue(c: number): void {
    const parent = this.top();
    let segment: JsonPathSegment | undefined;
    let cls: Classification;
    if (parent) {
      segment = parent.isArray ? parent.count++ : parent.key;
      cls = this.matcher.classify(parent.node, segment);
    } else cls = this.matcher.root;
    this.vSegment = segment;
    this.vLine = this.line;
    this.vColumn = this.column(this.pos);
    this.vPick = undefined;
    this.vNullOnly = false;

    if (cls.action === 'enter') {
      if (c === LBRACE || c === LBRACKET) {
        const isArray = c === LBRACKET;
        if ((cls.expect === 'array' && !isArray) || (cls.expect === 'object' && isArray)) {
          throw this.shapeError(cls.expect, isArray ? 'an array' : 'an object');
        }
        if (!parent) this.events.push({ kind: 'root', type: isArray ? 'array' : 'object' });
        if (segment !== undefined) this.path.push(segment);
        this.stack.push({ isArray, node: cls.node, scope: cls.scope, count: 0, key: '', line: this.line });
        this.pos++;
        this.expect = isArray ? E_VALUE_OR_CLOSE : E_KEY_OR_CLOSE;
        return;
      }
      // A scalar where a container belongs: null is how producers write "none", anything else is the
      // wrong shape. The scalar scanner checks which it is.
      this.vNullOnly = true;
      this.vExpect = cls.expect;
    } else if (cls.action === 'pick') this.vPick = cls.pattern;

    this.vStart = this.pos;
    if (c === LBRACE || c === LBRACKET) {
      this.mode = M_CONTAINER;
      this.depth = 1;
      this.inString = false;
      this.pos++;
    } else if (c === QUOTE) {
      if (this.vNullOnly) throw this.shapeError(this.vExpect, 'a string');
      this.mode = M_STRING;
      this.strFrom = this.pos + 1;
      this.pos++;
    } else if (
      c === 45 /* - */ ||
      (c >= 48 && c <= 57) ||
      c === 116 /* t */ ||
      c === 102 /* f */ ||
      c === 110
    ) {
      this.mode = M_SCALAR;
      this.pos++;
    } else if (!parent && c === 60 /* < */) {
      throw this.errorAt(
        'this is XML or HTML, not JSON; pass the right --format or export the report as JSON',
        this.line,
        this.vColumn,
      );
    } else if (!parent) {
      throw this.errorAt(
        `this is not JSON: expected '{' or '[' at the start but found ${describeChar(c)}`,
        this.line,
        this.vColumn,
      );
    } else throw this.unexpected(c, `a JSON value in ${this.where(segment)}`);
  }

  private scanContainer(): void {
    const buf = this.buf;
    const n = buf.length;
    let i = this.pos;
    let d = this.depth;
    if (this.inString) {
      const e = findStringEnd(buf, i, this.strFrom);
      if (e < 0) {
        this.pos = n;
        return;
      }
      i = e + 1;
      this.inString = false;
    }
    for (; i < n; i++) {
      const c = buf.charCodeAt(i);
      if (c === QUOTE) {
        const e = findStringEnd(buf, i + 1, i + 1);
        if (e < 0) {
          this.inString = true;
          this.strFrom = i + 1;
          this.depth = d;
          this.pos = n;
          return;
        }
        i = e;
      } else if (c === LBRACE || c === LBRACKET) d++;
      else if (c === RBRACE || c === RBRACKET) {
        if (--d === 0) {
          this.pos = i + 1;
          this.finishValue(i + 1);
          return;
        }
      } else if (c === NL) {
        this.line++;
        this.lineStart = this.base + i + 1;
      }
    }
    this.depth = d;
    this.pos = n;
  }

  private scanString(): void {
    const e = findStringEnd(this.buf, this.pos, this.strFrom);
    if (e < 0) {
      this.pos = this.buf.length;
      return;
    }
    this.pos = e + 1;
    this.finishValue(e + 1);
  }

  private scanScalar(): void {
    const buf = this.buf;
    const n = buf.length;
    let i = this.pos;
    for (; i < n; i++) {
      const c = buf.charCodeAt(i);
      if (c === COMMA || c === RBRACE || c === RBRACKET || c === SPACE || c === NL || c === CR || c === TAB)
        break;
    }
    this.pos = i;
    if (i - this.vStart > MAX_TOKEN_CHARS) {
      throw this.errorAt(`${this.describeValue()} is not a valid JSON value`, this.vLine, this.vColumn);
    }
    if (i < n) this.finishScalar(i);
  }

  private finishScalar(end: number): void {
    const token = this.buf.slice(this.vStart, end);
    if (!SCALAR_RE.test(token)) {
      throw this.errorAt(
        `${this.describeValue()} has "${token.slice(0, 40)}", which is not a JSON value`,
        this.vLine,
        this.vColumn,
      );
    }
    if (this.vNullOnly && token !== 'null') {
      throw this.shapeError(this.vExpect, token === 'true' || token === 'false' ? 'a boolean' : 'a number');
    }
    if (this.vNullOnly && this.stack.length === 0) this.events.push({ kind: 'root', type: 'null' });
    this.finishValue(end);
  }

  private scanKey(): void {
    const e = findStringEnd(this.buf, this.pos, this.strFrom);
    if (e < 0) {
      this.pos = this.buf.length;
      if (this.pos - this.vStart > MAX_TOKEN_CHARS) {
        throw this.errorAt(
          `a property name in ${this.where()} is longer than 64 KiB`,
          this.line,
          this.column(this.vStart),
        );
      }
      return;
    }
    const raw = this.buf.slice(this.vStart + 1, e);
    let key = raw;
    if (raw.includes('\\')) {
      try {
        key = JSON.parse(this.buf.slice(this.vStart, e + 1)) as string;
      } catch {
        throw this.errorAt(
          `a property name in ${this.where()} has an invalid escape`,
          this.line,
          this.column(this.vStart),
        );
      }
    }
    this.top()!.key = key;
    this.pos = e + 1;
    this.mode = M_NAV;
    this.expect = E_COLON;
  }

  private finishValue(end: number): void {
    if (this.vPick !== undefined) {
      const text = this.buf.slice(this.vStart, end);
      if (text.length > this.maxValueChars) {
        throw this.errorAt(
          `${this.describeValue()} is larger than ${formatSize(this.maxValueChars)}, more than any real report entry; the file is probably corrupt or hostile`,
          this.vLine,
          this.vColumn,
        );
      }
      const path = this.vSegment === undefined ? [...this.path] : [...this.path, this.vSegment];
      this.events.push({
        kind: 'value',
        pattern: this.vPick,
        path,
        value: parsePicked(text, path, this.file, this.vLine, this.vColumn),
        line: this.vLine,
        column: this.vColumn,
      });
    }
    this.vPick = undefined;
    this.mode = M_NAV;
    this.expect = this.stack.length > 0 ? E_COMMA_OR_CLOSE : E_END;
  }

  private closeFrame(): void {
    this.pos++;
    const frame = this.stack.pop()!;
    if (frame.scope !== undefined)
      this.events.push({ kind: 'close', pattern: frame.scope, path: [...this.path] });
    if (this.stack.length > 0) this.path.pop();
    this.expect = this.stack.length > 0 ? E_COMMA_OR_CLOSE : E_END;
  }

  private top(): Frame | undefined {
    return this.stack[this.stack.length - 1];
  }

  private newline(index: number): void {
    this.line++;
    this.lineStart = this.base + index + 1;
  }

  private column(index: number): number {
    return this.base + index - this.lineStart + 1;
  }

  private where(segment?: JsonPathSegment): string {
    const path = segment === undefined ? this.path : [...this.path, segment];
    return pathText(path) || 'the top-level value';
  }

  private describeValue(): string {
    const path = this.vSegment === undefined ? this.path : [...this.path, this.vSegment];
    const text = pathText(path);
    return text ? `the value at ${text}` : 'the top-level value';
  }

  private shapeError(expect: 'array' | 'object' | 'any', found: string): InputError {
    const path = this.vSegment === undefined ? this.path : [...this.path, this.vSegment];
    return this.errorAt(shapeMessage(path, expect, found), this.vLine, this.vColumn);
  }

  private unexpected(c: number, expected: string): InputError {
    return this.errorAt(
      `expected ${expected} but found ${describeChar(c)}`,
      this.line,
      this.column(this.pos),
    );
  }

  private errorAt(message: string, line: number, column: number): InputError {
    return new InputError(message, this.file, line, column);
  }
}

/** JSON.parse one picked value; on failure, say where in the file and what was expected. */
function parsePicked(
  text: string,
  path: JsonPathSegment[],
  file: string,
  line: number,
  column: number,
): unknown {
  try {
    return JSON.parse(text);
  } catch {
    const problem = locateSyntaxError(text);
    let where = { line, column };
    if (problem) {
      const before = text.slice(0, problem.offset);
      const newlines = before.split('\n').length - 1;
      where = {
        line: line + newlines,
        column: newlines === 0 ? column + problem.offset : problem.offset - before.lastIndexOf('\n'),
      };
    }
    throw new InputError(
      `invalid JSON in ${pathText(path) || 'the document'}: ${problem?.message ?? 'it does not parse'}`,
      file,
      where.line,
      where.column,
    );
  }
}

function describeChar(c: number): string {
  return c < 32 ? `character code ${c}` : `'${String.fromCharCode(c)}'`;
}

/** The one sentence for "this part of the document has the wrong type". */
export function shapeMessage(
  path: readonly JsonPathSegment[],
  expect: 'array' | 'object' | 'any',
  found: string,
): string {
  const wanted = expect === 'array' ? 'an array' : expect === 'object' ? 'an object' : 'an object or array';
  const text = pathText(path);
  const subject = text ? `"${text}"` : 'the top-level value';
  return `expected ${subject} to be ${wanted} but found ${found}; is this the right --format?`;
}

/** Index of the closing quote at or after `from`, or -1 when the string runs past the buffer. */
function findStringEnd(buf: string, from: number, lower: number): number {
  for (;;) {
    const q = buf.indexOf('"', from);
    if (q < 0) return -1;
    let b = q - 1;
    while (b >= lower && buf.charCodeAt(b) === BACKSLASH) b--;
    if ((q - 1 - b) % 2 === 0) return q;
    from = q + 1;
  }
}

export function formatSize(chars: number): string {
  return chars >= 1024 * 1024
    ? `${Math.round(chars / (1024 * 1024))} MiB`
    : `${Math.round(chars / 1024)} KiB`;
}
