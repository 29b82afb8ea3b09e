// Adaptive Cards read a TextBlock's text (and a FactSet's titles and values) as markdown: a finding
// titled "[Click here to approve](https://evil.example/approve)" would render as our own link. Scanner
// text reaches cards in many places, so every such text of a rendered card is escaped here (markdown
// backslash escapes), except the one link ctem writes itself: "[Open in CTEM](<configured URL>)".

const OWN_LINK = /^\[Open in CTEM\]\(https?:\/\/[^\s()]+\)$/;

/**
 * Escape what Adaptive Cards' markdown subset would act on: links (their brackets), emphasis, and list
 * or quote markers at a line's start. Nothing else, so our own text reads the same on clients whose
 * escape handling is weak (Teams mobile had such bugs).
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/[\\*_[\]]/g, (c) => `\\${c}`)
    .replace(/^(\s*)([-+>])/gm, '$1\\$2')
    .replace(/^(\s*\d+)([.)])/gm, '$1\\$2');
}

/** A card with every TextBlock text and FactSet fact escaped (a new object; the input is left alone). */
export function plainCard<T>(card: T): T {
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (!node || typeof node !== 'object') return node;
    const obj = node as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) out[k] = walk(v);
    if (obj.type === 'TextBlock' && typeof obj.text === 'string' && !OWN_LINK.test(obj.text))
      out.text = escapeMarkdown(obj.text);
    if (obj.type === 'FactSet' && Array.isArray(obj.facts))
      out.facts = (obj.facts as { title?: unknown; value?: unknown }[]).map((f) => ({
        ...f,
        ...(typeof f.title === 'string' ? { title: escapeMarkdown(f.title) } : {}),
        ...(typeof f.value === 'string' ? { value: escapeMarkdown(f.value) } : {}),
      }));
    return out;
  };
  return walk(card) as T;
}
