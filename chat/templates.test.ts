import { describe, expect, it } from 'vitest';
import { jsonTemplate } from './templates.ts';

// Scanner text (a package name, a finding title) reaches every Slack message. Slack reads the
// top-level `text` (the notification and fallback text) as mrkdwn too: `<!channel>` would notify the
// whole channel and `<url|label>` would make a link that looks like ours.
const hostile = '<!channel> openssl <https://evil.example/login|Open CTEM> & <@U0ADMIN>';
const escaped =
  '&lt;!channel&gt; openssl &lt;https://evil.example/login|Open CTEM&gt; &amp; &lt;@U0ADMIN&gt;';

describe('Slack messages carry scanner text escaped in every mrkdwn field', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['notification.json.hbs', { summary: hostile, header: 'h', exposures: [], fixes: [], reasons: [] }],
    ['reply.json.hbs', { replyTitle: hostile, exposures: [], fixes: [], reasons: [] }],
    ['digest.json.hbs', { summary: hostile, campaigns: [] }],
    [
      'alert.json.hbs',
      { title: hostile, because: [], facts: [], scope: 'prod', rule: 'new-exposure', at: 'now' },
    ],
  ];
  for (const [name, view] of cases)
    it(`${name}: the top-level text`, () => {
      const payload = jsonTemplate('slack', name)(view) as { text: string };
      expect(payload.text).toContain(escaped);
      expect(payload.text).not.toMatch(/<[!@h]/);
    });
});
