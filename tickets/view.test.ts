// A campaign's ticket within each system's text limit, however large the campaign: the totals say
// what it holds, the lists show the most urgent exposures and hosts and say how many more there are.
import { describe, expect, it } from 'vitest';
import type { CampaignSummary } from '../domain/ports.ts';
import { adfText, renderAdf, renderText } from './content.ts';
import { JiraTicketSystem } from './jira/client.ts';
import { jiraSchema } from './jira/config.ts';
import { ServiceNowTicketSystem } from './servicenow/client.ts';
import { serviceNowSchema } from './servicenow/config.ts';
import { GlpiTicketSystem } from './glpi/client.ts';
import { glpiSchema } from './glpi/config.ts';
import { fitText, ticketView } from './view.ts';

const deps = { readSecret: () => 'unused', baseDir: process.cwd() };

/** 1,000 exposures on 300 hosts: 10 hosts carry an Act weakness, the rest Attend and Track. */
function largeCampaign(): CampaignSummary {
  const exposures: CampaignSummary['exposures'] = [];
  for (let i = 0; i < 1000; i++) {
    const host = `host-${String(i % 300).padStart(3, '0')}.prod.example.com`;
    const urgent = i % 300 < 10 && i < 300;
    exposures.push({
      id: `${i % 300}:CVE-2099-${String(1000 + i).padStart(5, '0')}`,
      weaknessKey: `CVE-2099-${String(1000 + i).padStart(5, '0')}`,
      title: `A long scanner title for weakness ${i} in the TLS stack of OpenSSL, with the affected function names and versions spelled out at length`,
      asset: host,
      state: i % 50 === 0 ? 'verifying' : 'remediating',
      priority: urgent ? 'Act' : i % 3 === 0 ? 'Attend' : 'Track',
      reasons: [`CVSS 9.${i % 10} (AV:N/AC:L)`, urgent ? 'CISA KEV: known exploited' : `EPSS 0.${i % 90}`],
      package: { name: 'openssl', version: `3.0.${i % 7}`, fixedVersion: '3.0.14' },
    });
  }
  return {
    id: 'cmp:prod:olivia:0123456789ab',
    scope: 'prod',
    owner: 'olivia',
    kind: 'package',
    subject: 'openssl',
    action: 'Upgrade openssl to 3.0.14 or later on 300 assets',
    priority: 'Act',
    slaDue: '2031-05-01T12:00:00.000Z',
    totals: { exposures: 1000, open: 1000, assets: 300, states: { remediating: 980, verifying: 20 } },
    // Shuffled, as merged ticket groups list them: the view orders by urgency itself.
    exposures: exposures.reverse(),
  };
}

const jira = new JiraTicketSystem(
  jiraSchema.parse({
    url: 'https://x.atlassian.net',
    auth: { accessToken: 'env:T' },
    project: 'SEC',
    dashboardUrl: 'https://ctem.example.com',
  }),
  deps,
);
const sn = new ServiceNowTicketSystem(
  serviceNowSchema.parse({
    url: 'https://x.service-now.com',
    auth: { token: 'env:T' },
    dashboardUrl: 'https://ctem.example.com',
  }),
  deps,
);
const glpi = new GlpiTicketSystem(
  glpiSchema.parse({
    url: 'https://g/apirest.php',
    userToken: 'env:T',
    dashboardUrl: 'https://ctem.example.com',
  }),
  deps,
);

describe('the ticket of a large campaign', () => {
  const campaign = largeCampaign();
  const rendered = {
    jira: () => {
      const view = jira.view(campaign);
      const doc = renderAdf({ kind: 'jira.adf', baseDir: process.cwd() }, view);
      const raw = JSON.stringify(doc);
      return { view, size: raw.length, text: adfText(doc), raw };
    },
    servicenow: () => {
      const view = sn.view(campaign);
      const text = renderText({ kind: 'servicenow.txt', baseDir: process.cwd() }, view);
      return { view, size: text.length, text, raw: text };
    },
    glpi: () => {
      const view = glpi.view(campaign);
      const html = renderText({ kind: 'glpi.html', baseDir: process.cwd() }, view);
      return { view, size: html.length, text: html, raw: html };
    },
  };

  for (const [system, render] of Object.entries(rendered))
    it(`${system}: stays within 32,000 characters and says what it holds and what it leaves out`, () => {
      const { view, size, text, raw } = render();
      expect(size).toBeLessThanOrEqual(32_000);
      // Most of the room is used: the lists were cut, not emptied.
      expect(view.exposures.length).toBeGreaterThanOrEqual(10);
      expect(text).toContain('1000 open of 1000 exposures on 300 assets (980 remediating, 20 verifying)');
      expect(text).toContain(`and ${1000 - view.exposures.length} more exposures`);
      expect(text).toContain(`and ${300 - view.hosts.length} more hosts`);
      expect(text).toContain('2031-05-01T12:00:00.000Z');
      expect(text).toContain('Upgrade openssl to 3.0.14 or later on 300 assets');
      // The most urgent come first: the ten Act exposures and their hosts.
      expect(view.exposures.slice(0, 10).map((e) => e.priority)).toEqual(Array(10).fill('Act'));
      expect(view.hosts.slice(0, 10).map((h) => h.priority)).toEqual(Array(10).fill('Act'));
      expect(text).toContain(view.exposures[0]!.weaknessKey);
      expect(text).toContain(view.hosts[0]!.name);
      // The fix names its versions and weaknesses in part, and says how many more.
      expect(view.fixes[0]).toMatch(
        /^Upgrade openssl from 3\.0\.0, .* to 3\.0\.14 or later \(CVE-.* and \d+ more\)\.$/,
      );
      expect(raw.replaceAll('&#x3D;', '=')).toContain(
        'https://ctem.example.com/dashboard?campaign=cmp%3Aprod%3Aolivia%3A0123456789ab',
      );
      // Linking reaches every asset, whatever the lists show.
      expect(view.assets).toHaveLength(300);
    });

  it('lists fewer under a lower limit, and still names the totals', () => {
    const small = new ServiceNowTicketSystem(
      serviceNowSchema.parse({
        url: 'https://x.service-now.com',
        auth: { token: 'env:T' },
        textLimit: 4_000,
      }),
      deps,
    );
    const view = small.view(campaign);
    const text = renderText({ kind: 'servicenow.txt', baseDir: process.cwd() }, view);
    expect(text.length).toBeLessThanOrEqual(4_000);
    expect(view.exposures.length).toBeLessThan(rendered.servicenow().view.exposures.length);
    expect(text).toContain('1000 open of 1000 exposures on 300 assets');
    expect(text).toContain(`and ${1000 - view.exposures.length} more exposures`);
  });

  it('lists everything when it fits', () => {
    const view = ticketView({ ...campaign, exposures: campaign.exposures.slice(0, 3) }, { externalKey: 'k' });
    expect(view.exposures).toHaveLength(3);
    // The campaign's totals stand: the summary given lists 3 of its 1,000.
    expect(view.moreExposures).toBe(997);
  });

  it('refuses a template too long even with empty lists, naming the limit', () => {
    const verbose = new ServiceNowTicketSystem(
      serviceNowSchema.parse({
        url: 'https://x.service-now.com',
        auth: { token: 'env:T' },
        textLimit: 2_000,
      }),
      deps,
    );
    expect(() => verbose.view({ ...campaign, action: 'x'.repeat(2_500) })).toThrow(
      /renders \d+ characters even without listing any exposure, over integrations\.servicenow\.textLimit \(2000\)/,
    );
  });

  it('cuts a long comment to its first lines and says how many it left out', () => {
    const lines = Array.from(
      { length: 1000 },
      (_, i) => `CVE-2099-${1000 + i} on host-${i % 300} verified fixed by scan 42`,
    );
    const fitted = fitText(lines.join('\n'), (t) => t.length <= 5_000);
    expect(fitted.length).toBeLessThanOrEqual(5_000);
    const kept = fitted.split('\n');
    expect(kept[0]).toBe(lines[0]);
    expect(kept.at(-1)).toBe(`… and ${1000 - (kept.length - 1)} more lines.`);
    expect(fitText('short', () => true)).toBe('short');
    // One line too long on its own is cut, saying by how much.
    expect(fitText('y'.repeat(300), (t) => t.length <= 100)).toMatch(/^y+… \(\d+ more characters\)$/);
  });
});
