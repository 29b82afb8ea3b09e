// A small, bounded XML subtree as the streaming reader hands it out (one ReportItem, one <host>…),
// and the few accessors parsers need to read it. Text is kept raw (entities decoded, CDATA merged);
// accessors trim, because scanner XML is pretty-printed and indentation is never meaningful there.

export type XmlAttrs = Readonly<Record<string, string>>;

export interface XmlElement {
  readonly name: string;
  readonly attrs: XmlAttrs;
  readonly children: readonly XmlElement[];
  /** Direct character data (text and CDATA) of this element, concatenated in document order. */
  readonly text: string;
  /** Line of the start tag, for error messages. */
  readonly line: number;
}

/** First child element with this name. */
export function child(el: XmlElement, name: string): XmlElement | undefined {
  for (const c of el.children) if (c.name === name) return c;
  return undefined;
}

/** All child elements with this name, in document order. */
export function childrenNamed(el: XmlElement, name: string): XmlElement[] {
  const out: XmlElement[] = [];
  for (const c of el.children) if (c.name === name) out.push(c);
  return out;
}

/** Trimmed text of an element; undefined when empty. */
export function textOf(el: XmlElement | undefined): string | undefined {
  if (el === undefined) return undefined;
  const t = el.text.trim();
  return t === '' ? undefined : t;
}

/** Trimmed text of the first child with this name; undefined when absent or empty. */
export function childText(el: XmlElement, name: string): string | undefined {
  return textOf(child(el, name));
}

/** Trimmed, non-empty texts of every child with this name. */
export function childTexts(el: XmlElement, name: string): string[] {
  const out: string[] = [];
  for (const c of el.children) {
    if (c.name !== name) continue;
    const t = c.text.trim();
    if (t !== '') out.push(t);
  }
  return out;
}

/** Follow a path of child names ("CVSS_SCORE/CVSS_BASE"); undefined as soon as one step is missing. */
export function descend(el: XmlElement, path: string): XmlElement | undefined {
  let cur: XmlElement | undefined = el;
  for (const step of path.split('/')) {
    if (cur === undefined) return undefined;
    cur = child(cur, step);
  }
  return cur;
}
