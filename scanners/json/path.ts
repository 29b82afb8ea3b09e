// Path patterns for the streaming JSON reader: "Results[*].Vulnerabilities[*]" names every element of
// every Vulnerabilities array inside every element of Results. Keys are literal; `[*]` is any array
// index. A pattern either picks a value (the reader parses it whole and hands it over) or marks a
// scope (the reader walks into it and reports when it closes).

export type JsonPathSegment = string | number;

interface Pattern {
  readonly text: string;
  /** A string is an object key; null is `[*]`. */
  readonly steps: readonly (string | null)[];
  readonly role: 'value' | 'scope';
}

/** What to do with a value, decided from its path alone. */
export type Classification =
  | { readonly action: 'pick'; readonly pattern: string }
  | {
      readonly action: 'enter';
      readonly node: MatchNode;
      /** Container the patterns below need here; 'any' when they disagree (e.g. legacy array vs object). */
      readonly expect: 'array' | 'object' | 'any';
      /** Set when this container is a scope whose end is reported. */
      readonly scope: string | undefined;
    }
  | { readonly action: 'skip' };

const SKIP: Classification = { action: 'skip' };
// Bounds the per-node cache so a hostile file with millions of distinct keys cannot grow it.
const MAX_CACHED_KEYS = 1024;

/** The set of patterns still alive at one container, plus caches shared by all its siblings. */
export class MatchNode {
  /** Pairs flattened: pattern index, number of steps already matched. */
  readonly states: readonly number[];
  indexChild: Classification | undefined;
  readonly keyChildren = new Map<string, Classification>();

  constructor(states: readonly number[]) {
    this.states = states;
  }
}

export class PathMatcher {
  private readonly patterns: Pattern[];
  /** How the top-level value is handled. */
  readonly root: Classification;

  constructor(values: readonly string[], scopes: readonly string[] = []) {
    this.patterns = [
      ...values.map((text) => compile(text, 'value')),
      ...scopes.map((text) => compile(text, 'scope')),
    ];
    const states: number[] = [];
    this.patterns.forEach((_, index) => states.push(index, 0));
    this.root = this.classifyStates(states);
  }

  /** Classify the child of a container at `node` reached by `segment`. */
  classify(node: MatchNode, segment: JsonPathSegment): Classification {
    if (typeof segment === 'number') {
      node.indexChild ??= this.advance(node, null);
      return node.indexChild;
    }
    const cached = node.keyChildren.get(segment);
    if (cached) return cached;
    const result = this.advance(node, segment);
    if (node.keyChildren.size < MAX_CACHED_KEYS) node.keyChildren.set(segment, result);
    return result;
  }

  private advance(node: MatchNode, key: string | null): Classification {
    const next: number[] = [];
    const { states } = node;
    for (let i = 0; i < states.length; i += 2) {
      const index = states[i]!;
      const matched = states[i + 1]!;
      const step = this.patterns[index]!.steps[matched];
      if (step === undefined) continue;
      if (key === null ? step === null : step === key) next.push(index, matched + 1);
    }
    return next.length === 0 ? SKIP : this.classifyStates(next);
  }

  private classifyStates(states: number[]): Classification {
    let scope: string | undefined;
    let wantsArray = false;
    let wantsObject = false;
    const deeper: number[] = [];
    for (let i = 0; i < states.length; i += 2) {
      const pattern = this.patterns[states[i]!]!;
      const matched = states[i + 1]!;
      if (matched === pattern.steps.length) {
        // A value pattern wins over everything else at the same path: the value is handed over whole.
        if (pattern.role === 'value') return { action: 'pick', pattern: pattern.text };
        scope ??= pattern.text;
        continue;
      }
      if (pattern.steps[matched] === null) wantsArray = true;
      else wantsObject = true;
      deeper.push(states[i]!, matched);
    }
    if (deeper.length === 0 && scope === undefined) return SKIP;
    const expect = wantsArray && !wantsObject ? 'array' : wantsObject && !wantsArray ? 'object' : 'any';
    return { action: 'enter', node: new MatchNode(deeper), expect, scope };
  }
}

function compile(text: string, role: Pattern['role']): Pattern {
  const steps: (string | null)[] = [];
  // "a.b[*][*].c" → a, b, *, *, c. Keys may hold any character except '.' and '['.
  const re = /\[\*\]|[^.[]+|\./g;
  let expectKey = true;
  for (const match of text.matchAll(re)) {
    const token = match[0];
    if (token === '.') {
      expectKey = true;
      continue;
    }
    if (token === '[*]') steps.push(null);
    else if (expectKey) steps.push(token);
    else throw new Error(`Bad JSON path pattern "${text}"`);
    expectKey = false;
  }
  if (steps.length === 0) throw new Error(`Empty JSON path pattern "${text}"`);
  return { text, steps, role };
}

/** "Results[2].Vulnerabilities[14]" — how paths appear in error messages. */
export function pathText(path: readonly JsonPathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}
