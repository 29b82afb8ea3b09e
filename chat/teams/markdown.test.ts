import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../domain/config.ts';
import { PeopleDirectory } from '../identity.ts';
import type { AlertModel } from '../messages.ts';
import { escapeMarkdown } from './markdown.ts';
import { TeamsRenderer } from './render.ts';

const link = '[Click here to approve](https://evil.example/approve)';
/** A markdown link not broken by an escape: [text](url) with unescaped brackets. */
const liveLink = /(?<!\\)\[[^\]]*(?<!\\)\]\(/;

describe('scanner text in Teams cards is plain text, not markdown', () => {
  it('escapes links, emphasis, code and list markers', () => {
    expect(escapeMarkdown(link)).toBe('\\[Click here to approve\\](https://evil.example/approve)');
    expect(escapeMarkdown(link)).not.toMatch(liveLink);
    expect(escapeMarkdown('**bold** _it_ \\[x](y)')).toBe('\\*\\*bold\\*\\* \\_it\\_ \\\\\\[x\\](y)');
    expect(escapeMarkdown('- item\n1. first\n> quote')).toBe('\\- item\n1\\. first\n\\> quote');
    expect(escapeMarkdown('CVE-2021-44228 in log4j-core 2.14.1')).toBe('CVE-2021-44228 in log4j-core 2.14.1');
  });

  it('an alert card: the title and facts from a scan are escaped; the link ctem writes stays a link', () => {
    const config = parseConfig('version: 1');
    const renderer = new TeamsRenderer(config, new PeopleDirectory(config));
    const alert: AlertModel = {
      type: 'alert',
      rule: 'new-exposure',
      scope: 'prod',
      title: link,
      because: [`the package ${link} is in KEV`],
      facts: [{ title: 'Package', value: link }],
      at: '2026-12-07T12:00:00Z',
      url: 'https://ctem.example.com/dashboard',
    };
    const card = renderer.activity(alert).attachments[0]!.content as { body: Record<string, unknown>[] };
    const texts: string[] = [];
    for (const b of card.body) {
      if (b.type === 'TextBlock') texts.push(String(b.text));
      if (b.type === 'FactSet') for (const f of b.facts as { value: string }[]) texts.push(f.value);
    }
    const own = texts.filter((t) => t === '[Open in CTEM](https://ctem.example.com/dashboard)');
    expect(own).toHaveLength(1);
    const scanned = texts.filter((t) => t.includes('evil.example'));
    expect(scanned.length).toBeGreaterThanOrEqual(3);
    for (const t of scanned) expect(t).not.toMatch(liveLink);
  });
});
