// Where exactly a piece of JSON is broken. JSON.parse says only "Unexpected token '}'" (V8 sometimes
// adds a position, sometimes not); users need a line, a column and what was expected there. This
// validator runs only after JSON.parse has already failed, so its speed does not matter, and it uses
// an explicit stack so hostile nesting cannot overflow the call stack.

export interface SyntaxProblem {
  /** Offset of the offending character in the text. */
  offset: number;
  /** "expected ',' or '}' but found 't'" */
  message: string;
}

const LITERAL = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;

export function locateSyntaxError(text: string): SyntaxProblem | undefined {
  let i = 0;
  const n = text.length;
  // Containers still open: '{' or '['.
  const stack: string[] = [];
  const problem = (expected: string): SyntaxProblem => {
    const c = text.charCodeAt(i);
    const found = i >= n ? 'the end of the text' : c < 32 ? `character code ${c}` : `'${text[i]}'`;
    return { offset: i, message: `expected ${expected} but found ${found}` };
  };
  const skipSpace = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else break;
    }
  };
  const readString = (): SyntaxProblem | undefined => {
    i++;
    for (;;) {
      if (i >= n) return problem('a closing quote');
      const c = text.charCodeAt(i);
      if (c === 34) {
        i++;
        return undefined;
      }
      if (c < 32) return problem('no raw control characters in a string (they must be escaped)');
      if (c === 92) {
        const e = text[i + 1];
        if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else {
          i++;
          return problem('a valid escape sequence');
        }
      } else i++;
    }
  };

  // expect: what the next token must be.
  let expect: 'value' | 'value-or-close' | 'key' | 'key-or-close' | 'after-value' = 'value';
  for (;;) {
    skipSpace();
    const c = text[i];
    if (expect === 'value' || expect === 'value-or-close') {
      if (c === ']' && expect === 'value-or-close') {
        stack.pop();
        i++;
        expect = 'after-value';
      } else if (c === '{' || c === '[') {
        stack.push(c);
        i++;
        expect = c === '{' ? 'key-or-close' : 'value-or-close';
      } else if (c === '"') {
        const bad = readString();
        if (bad) return bad;
        expect = 'after-value';
      } else {
        LITERAL.lastIndex = i;
        const m = LITERAL.exec(text);
        if (!m) return problem('a JSON value');
        i += m[0].length;
        expect = 'after-value';
      }
    } else if (expect === 'key' || expect === 'key-or-close') {
      if (c === '}' && expect === 'key-or-close') {
        stack.pop();
        i++;
        expect = 'after-value';
        continue;
      }
      if (c !== '"') return problem('a property name in double quotes');
      const bad = readString();
      if (bad) return bad;
      skipSpace();
      if (text[i] !== ':') return problem("':' after the property name");
      i++;
      expect = 'value';
    } else {
      const open = stack[stack.length - 1];
      if (open === undefined) {
        return i < n ? problem('nothing more after the value') : undefined;
      }
      const close = open === '{' ? '}' : ']';
      if (c === ',') {
        i++;
        expect = open === '{' ? 'key' : 'value';
      } else if (c === close) {
        stack.pop();
        i++;
      } else return problem(`',' or '${close}'`);
    }
  }
}
