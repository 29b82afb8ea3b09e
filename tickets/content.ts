// What a ticket says, rendered from the handlebars templates under templates/tickets/ (or a file
// named in ctem.yaml): ADF JSON for Jira Cloud, plain text for ServiceNow, HTML for GLPI.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import { compareVersions } from '../domain/versions.ts';
import type { CampaignSummary } from '../domain/ports.ts';
import { projectRoot } from '../runtime/paths.ts';

const bundledDir = path.join(projectRoot, 'templates', 'tickets');

/** The key written on the ticket itself; stable for a unit, safe as a Jira label and in queries. */
export function externalKeyFor(campaignId: string): string {
  return `ctem-ru-${createHash('sha256').update(campaignId).digest('hex').slice(0, 24)}`;
}

/** Marker written into a comment so a retried comment can be recognised on the ticket. */
export function commentMarker(idempotencyKey: string): string {
  return `ctem-ref:${createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 16)}`;
}

export interface TicketView {
  summary: string;
  campaignId: string;
  externalKey: string;
  scope: string;
  owner?: string;
  action: string;
  priority: string;
  slaDue?: string;
  /** YYYY-MM-DD of the SLA deadline (Jira's duedate). */
  slaDueDate?: string;
  exposures: CampaignSummary['exposures'];
  assets: string[];
  reasons: string[];
  fixes: string[];
  url?: string;
}

/** Fix instructions per package ("Upgrade openssl from 3.0.2 to 3.0.7 or later (CVE-…)"), else the action. */
function fixInstructions(unit: CampaignSummary): string[] {
  const byPackage = new Map<string, { from: Set<string>; to?: string; keys: string[] }>();
  for (const e of unit.exposures) {
    if (!e.package) continue;
    const entry = byPackage.get(e.package.name) ?? { from: new Set<string>(), keys: [] };
    if (e.package.version) entry.from.add(e.package.version);
    // The highest fixed version any member needs closes them all.
    const fixed = e.package.fixedVersion;
    if (fixed && (!entry.to || compareVersions(fixed, entry.to) > 0)) entry.to = fixed;
    entry.keys.push(e.weaknessKey);
    byPackage.set(e.package.name, entry);
  }
  const fixes = [...byPackage.entries()].map(([name, p]) => {
    const from = p.from.size ? ` from ${[...p.from].join(', ')}` : '';
    const to = p.to ? ` to ${p.to} or later` : ' to a fixed version';
    return `Upgrade ${name}${from}${to} (${[...new Set(p.keys)].join(', ')}).`;
  });
  return fixes.length ? fixes : [unit.action];
}

export function ticketView(unit: CampaignSummary, dashboardUrl?: string): TicketView {
  const summaryTemplate = loadTemplate(path.join(bundledDir, 'summary.hbs'), false);
  const base = {
    campaignId: unit.id,
    externalKey: externalKeyFor(unit.id),
    scope: unit.scope,
    owner: unit.owner,
    action: unit.action,
    priority: unit.priority,
    slaDue: unit.slaDue,
    slaDueDate: unit.slaDue ? unit.slaDue.slice(0, 10) : undefined,
    exposures: unit.exposures,
    assets: [...new Set(unit.exposures.map((e) => e.asset))],
    reasons: [...new Set(unit.exposures.flatMap((e) => e.reasons))],
    fixes: fixInstructions(unit),
    url:
      unit.url ??
      (dashboardUrl ? `${dashboardUrl.replace(/\/$/, '')}/units/${encodeURIComponent(unit.id)}` : undefined),
  };
  const summary = summaryTemplate({ ...base, summary: '' })
    .trim()
    .replace(/\s+/g, ' ');
  // Jira and ServiceNow cap the summary (255 / 160 characters); keep it short for all.
  return { ...base, summary: summary.length > 160 ? `${summary.slice(0, 157)}...` : summary };
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

/** Stable hash of what is written to the ticket: an unchanged unit costs no remote update. */
export function contentHash(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}
