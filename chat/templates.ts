// Chat templates: Handlebars files under templates/slack and templates/teams that render JSON
// (Block Kit, Adaptive Cards). Every value goes through {{json}} so quotes, newlines and hostile
// scanner text stay inside JSON strings; {{md}} additionally escapes Slack mrkdwn control characters
// so a finding title cannot mention @channel or forge a link.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import { projectRoot } from '../runtime/paths.ts';

export type JsonTemplate = (view: unknown) => unknown;

/** A Handlebars environment with the JSON helpers and the folder's partials (files named _name.hbs). */
function env(folder: string): typeof Handlebars {
  const hb = Handlebars.create();
  for (const f of readdirSync(folder).filter((n) => /^_[a-z][a-zA-Z0-9-]*\.hbs$/.test(n)))
    hb.registerPartial(f.slice(1, -4), readFileSync(path.join(folder, f), 'utf8'));
  hb.registerHelper('json', (value: unknown) => JSON.stringify(value ?? ''));
  hb.registerHelper('md', (value: unknown) =>
    String(value ?? '')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;'),
  );
  /** Cut text to a platform's field limit, marking the cut. */
  hb.registerHelper('clip', (value: unknown, max: unknown) => {
    const text = String(value ?? '');
    const n = typeof max === 'number' ? max : 150;
    return text.length <= n ? text : `${text.slice(0, n - 1)}…`;
  });
  hb.registerHelper('concat', (...args: unknown[]) =>
    args
      .slice(0, -1)
      .map((a) => (a === undefined || a === null ? '' : String(a)))
      .join(''),
  );
  hb.registerHelper('bullets', (items: unknown) =>
    Array.isArray(items) ? items.map((i) => `• ${String(i)}`).join('\n') : '',
  );
  hb.registerHelper('lines', (items: unknown) => (Array.isArray(items) ? items.map(String).join('\n') : ''));
  /** The non-empty ones of several texts, one per line: (stack a b c). */
  hb.registerHelper('stack', (...args: unknown[]) =>
    args
      .slice(0, -1)
      .map((a) => (a === undefined || a === null ? '' : String(a)))
      .filter((a) => a !== '')
      .join('\n'),
  );
  /** A bold mrkdwn title over its text: (titled "Scope" (md scope)). */
  hb.registerHelper('titled', (title: unknown, body: unknown) => `*${String(title)}*\n${String(body ?? '')}`);
  /** Inline choice: (pick cond "yes" "no"). */
  hb.registerHelper('pick', (cond: unknown, yes: unknown, no: unknown) => (cond ? yes : no));
  hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hb.registerHelper(
    'gt',
    (a: unknown, b: unknown) => typeof a === 'number' && typeof b === 'number' && a > b,
  );
  return hb;
}

const compiled = new Map<string, JsonTemplate>();

/** A compiled template from templates/<folder>/<name>; its output is parsed as JSON. */
export function jsonTemplate(folder: 'slack' | 'teams', name: string): JsonTemplate {
  const file = path.join(projectRoot, 'templates', folder, name);
  const cached = compiled.get(file);
  if (cached) return cached;
  const render = env(path.dirname(file)).compile(readFileSync(file, 'utf8'), {
    noEscape: true,
    strict: false,
  });
  const template: JsonTemplate = (view) => {
    const text = render(view);
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new Error(`templates/${folder}/${name} rendered invalid JSON: ${(err as Error).message}`, {
        cause: err,
      });
    }
  };
  compiled.set(file, template);
  return template;
}
