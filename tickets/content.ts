// How a ticket is written: the external key that finds it again, comment markers, and the
// rendering of a ticket view (tickets/view.ts) through the handlebars templates under
// templates/tickets/ (or a file named in ctem.yaml): ADF JSON for Jira Cloud, plain text for
// ServiceNow, HTML for GLPI.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import { projectRoot } from '../runtime/paths.ts';
import type { TicketView } from './viewModel.ts';

export type { TicketView } from './viewModel.ts';

const bundledDir = path.join(projectRoot, 'templates', 'tickets');

/**
 * The key written on a new ticket; stable for a ticket group (a campaign by default), safe as a
 * Jira label and in queries. Tickets of earlier releases carry "ctem-ru-…" (one per remediation
 * unit): the ledger records each ticket's key, and that one is searched.
 */
export function externalKeyFor(groupKey: string): string {
  return `ctem-cmp-${createHash('sha256').update(groupKey).digest('hex').slice(0, 24)}`;
}

/** What every external key of ours starts with, old ("ctem-ru-") and new ("ctem-cmp-"): pollers read these. */
export const externalKeyPrefix = 'ctem-';

/** Marker written into a comment so a retried comment can be recognised on the ticket. */
export function commentMarker(idempotencyKey: string): string {
  return `ctem-ref:${createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 16)}`;
}

/** The ticket's title, from templates/tickets/summary.hbs; Jira and ServiceNow cap it, so it is kept short. */
export function renderSummary(view: TicketView): string {
  const text = loadTemplate(path.join(bundledDir, 'summary.hbs'), false)(view).trim().replace(/\s+/g, ' ');
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}

const handlebars = Handlebars.create();
handlebars.registerHelper('json', (value: unknown) => new Handlebars.SafeString(JSON.stringify(value ?? '')));
handlebars.registerHelper('concat', (...args: unknown[]) =>
  args
    .slice(0, -1)
    .map((a) => (a === undefined || a === null ? '' : String(a)))
    .join(''),
);
handlebars.registerHelper('add', (a: unknown, b: unknown) => Number(a) + Number(b));
/** {{plural 3 "asset"}} → "3 assets", {{plural 1 "asset"}} → "1 asset". */
handlebars.registerHelper(
  'plural',
  (count: unknown, noun: unknown) => `${Number(count)} ${String(noun)}${Number(count) === 1 ? '' : 's'}`,
);

const compiled = new Map<string, Handlebars.TemplateDelegate>();

function loadTemplate(file: string, escapeHtml: boolean): Handlebars.TemplateDelegate {
  const cacheKey = `${escapeHtml}:${file}`;
  const hit = compiled.get(cacheKey);
  if (hit) return hit;
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch {
    throw new Error(`the ticket template ${file} cannot be read; check the template path in ctem.yaml`);
  }
  const template = handlebars.compile(source, { noEscape: !escapeHtml, strict: false });
  compiled.set(cacheKey, template);
  return template;
}

export interface TemplateChoice {
  /** The bundled template, templates/tickets/<kind>.hbs: "<system>.<format>" (adf, txt or html). */
  kind: string;
  /** Override from ctem.yaml, relative to its folder. */
  file?: string;
  baseDir: string;
}

function templateFile(choice: TemplateChoice): string {
  return choice.file
    ? path.resolve(choice.baseDir, choice.file)
    : path.join(bundledDir, `${choice.kind}.hbs`);
}

/** Plain text or HTML body. HTML templates escape values; text templates do not. */
export function renderText(choice: TemplateChoice, view: TicketView): string {
  const template = loadTemplate(templateFile(choice), choice.kind.endsWith('.html'));
  return template(view)
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

export interface AdfNode {
  type: string;
  version?: number;
  text?: string;
  attrs?: Record<string, unknown>;
  marks?: { type: string; attrs?: Record<string, unknown> }[];
  content?: AdfNode[];
}

/** ADF description: the template renders JSON, parsed here so a broken template fails clearly. */
export function renderAdf(choice: TemplateChoice, view: TicketView): AdfNode {
  const file = templateFile(choice);
  const text = loadTemplate(file, false)(view);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`the Jira template ${file} did not render valid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!doc || typeof doc !== 'object' || (doc as AdfNode).type !== 'doc')
    throw new Error(`the Jira template ${file} must render an ADF document ({"type": "doc", …})`);
  return doc as AdfNode;
}

/** A plain-text comment as ADF: one paragraph per block, hard breaks inside. */
export function textToAdf(text: string): AdfNode {
  const paragraphs = text
    .split(/\n{2,}/)
    .map((block) => block.split('\n'))
    .filter((lines) => lines.some((l) => l.length > 0));
  return {
    type: 'doc',
    version: 1,
    content: paragraphs.map((lines) => ({
      type: 'paragraph',
      content: lines.flatMap((line, i): AdfNode[] => [
        ...(i > 0 ? [{ type: 'hardBreak' }] : []),
        ...(line ? [{ type: 'text', text: line }] : []),
      ]),
    })),
  };
}

/** All text of an ADF tree, for finding a comment marker. */
export function adfText(node: unknown): string {
  if (!node || typeof node !== 'object') return typeof node === 'string' ? node : '';
  const n = node as AdfNode;
  return `${n.text ?? ''}${(n.content ?? []).map(adfText).join(' ')}`;
}

/** Stable hash of what is written to the ticket: an unchanged campaign costs no remote update. */
export function contentHash(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}
