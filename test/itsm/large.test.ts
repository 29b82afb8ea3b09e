// A campaign of 1,000 exposures on 300 hosts, filed in each ticket system: one ticket whose
// description stays within the system's limit (Jira Cloud refuses more than 32,767 characters) and
// says what the campaign holds — the totals, the most urgent exposures and hosts, how many more, and
// the link to the rest; GLPI links all 300 hosts with a handful of requests; a close note listing
// every exposure is cut to fit and says so; and a person's change of the ticket reaches each of the
// campaign's workflows (shards) with the exposures it holds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { FakeJira } from '../fakes/jira.ts';
import { FakeServiceNow } from '../fakes/servicenow.ts';
import { FakeGlpi } from '../fakes/glpi.ts';
import type { FakeTicketServer } from '../fakes/ticketServer.ts';
import { adfText, externalKeyFor } from '../../tickets/content.ts';
import { createTicketSystem } from '../../tickets/systems.ts';
import { ticketSystemModule } from '../../tickets/systems.ts';
import { applyInboundTicketChange, type TicketChangeDelivery } from '../../tickets/inbound.ts';
import { campaignWorkflowId } from '../../contracts/campaign.ts';
import { campaignSummary } from '../../lifecycle/campaigns.ts';
import type { Config } from '../../domain/config.ts';
import {
  envSecret,
  hostName,
  seedCampaign,
  setStates,
  silentLog,
  ticketScopeConfig,
  type SeededCampaign,
} from './harness.ts';

interface Case {
  system: 'jira' | 'servicenow' | 'glpi';
  fake: FakeTicketServer;
  section: () => Record<string, unknown>;
  /** The description as stored, and as a person reads it. */
  stored: (key: string) => { raw: string; text: string };
  notes: (key: string) => string[];
}

const jira = new FakeJira({ email: 'ctem@example.com', apiToken: 'tok', projects: ['SEC'] });
const sn = new FakeServiceNow({ user: 'ctem', password: 'pw' });
const glpi = new FakeGlpi({ appToken: 'app', userToken: 'user' });

const cases: Case[] = [
  {
    system: 'jira',
    fake: jira,
    section: () => ({
      url: jira.url,
      auth: { email: 'ctem@example.com', apiToken: envSecret('tok') },
      project: 'SEC',
      dashboardUrl: 'https://ctem.example.com',
    }),
    stored: (key) => {
      const d = jira.issues.get(key)!.fields.description;
      return { raw: JSON.stringify(d), text: adfText(d) };
    },
    notes: (key) => jira.commentTexts(key),
  },
  {
    system: 'servicenow',
    fake: sn,
    section: () => ({
      url: sn.url,
      auth: { username: 'ctem', password: envSecret('pw') },
      dashboardUrl: 'https://ctem.example.com',
    }),
    stored: (key) => ({ raw: sn.records.get(key)!.description, text: sn.records.get(key)!.description }),
    notes: (key) => [sn.records.get(key)!.close_notes],
  },
  {
    system: 'glpi',
    fake: glpi,
    section: () => ({
      url: `${glpi.url}/apirest.php`,
      appToken: envSecret('app'),
      userToken: envSecret('user'),
      dashboardUrl: 'https://ctem.example.com',
    }),
    stored: (key) => {
      const html = glpi.tickets.get(Number(key))!.content;
      return { raw: html, text: html.replace(/<[^>]*>/g, '').replace(/&hellip;/g, '…') };
    },
    notes: (key) => glpi.followupsOf(Number(key)),
  },
];

describe('the ticket of a campaign of 1,000 exposures on 300 hosts', () => {
  let db: TestDatabase;
  const seeded = new Map<string, { config: Config; campaign: SeededCampaign; hosts: string[] }>();

  beforeAll(async () => {
    [db] = await Promise.all([testDatabase(), jira.start(), sn.start(), glpi.start()]);
  });
  afterAll(async () => {
    await Promise.all([jira.close(), sn.close(), glpi.close()]);
  });

  /** 300 hosts: 100 with 4 weaknesses, 200 with 3 (1,000 exposures), as three shards of 400. */
  async function largeCampaign(c: Case) {
    const scope = hostName(`large-${c.system}`);
    const config = ticketScopeConfig({ scope, system: c.system, section: c.section() });
    const hosts = Array.from({ length: 300 }, (_, i) => `${scope}-host-${String(i).padStart(3, '0')}`);
    const campaign = await seedCampaign(db.pool, config, {
      scope,
      hosts: hosts.map((host, i) => ({
        host,
        weaknesses: Array.from(
          { length: i < 100 ? 4 : 3 },
          (_, k) => `CVE-2099-${String(10000 + k * 300 + i)}`,
        ),
      })),
      shardCap: 400,
    });
    // Long scanner titles; the first ten exposures are the urgent ones (Act), the rest Attend.
    await db.pool.query(
      `update observations set title = 'A long scanner title for ' || vuln_key || ' in the TLS stack of OpenSSL, naming the affected functions and versions at length'
        where exposure_id = any($1::text[])`,
      [campaign.ids],
    );
    await db.pool.query(`update exposures set priority = 'attend' where id = any($1::text[])`, [
      campaign.ids.slice(10),
    ]);
    campaign.summary = (await campaignSummary(db.pool, campaign.campaignId))!;
    seeded.set(c.system, { config, campaign, hosts });
    return { config, campaign, hosts };
  }

  for (const c of cases)
    it(`${c.system}: one ticket within the limit that names the totals, the most urgent, and how many more`, async () => {
      const { config, campaign, hosts } = await largeCampaign(c);
      expect(campaign.summary.totals).toMatchObject({ exposures: 1000, open: 1000, assets: 300 });
      if (c.system === 'glpi') hosts.forEach((name, i) => glpi.computers.push({ id: 1000 + i, name }));
      const module = ticketSystemModule(c.system)!;
      const system = createTicketSystem(module, module.configSchema.parse(c.section()), {
        pool: db.pool,
        log: silentLog,
        baseDir: process.cwd(),
        config,
      });
      const ref = await system.upsert(campaign.summary);
      const { raw, text } = c.stored(ref.key);
      expect(raw.length).toBeLessThanOrEqual(32_000);
      expect(text).toContain('1000 open of 1000 exposures on 300 assets (1000 remediating)');
      expect(text).toContain('Upgrade openssl to 3.0.8 or later on 300 assets');
      const listed = (text.match(/CVE-2099-\d{5}/g) ?? []).length;
      expect(listed).toBeGreaterThanOrEqual(10);
      expect(text).toMatch(/and \d+ more exposures/);
      expect(text).toMatch(/and \d+ more hosts/);
      expect(raw.replaceAll('&#x3D;', '=')).toContain(
        `https://ctem.example.com/dashboard?campaign=${encodeURIComponent(campaign.campaignId)}`,
      );
      // The ten urgent exposures (Act) come first.
      const first = campaign.summary.exposures.filter((e) => e.priority === 'Act').map((e) => e.weaknessKey);
      expect(first).toHaveLength(10);
      for (const key of first) expect(text).toContain(key);
      // The ledger knows every exposure, so a change of the ticket reaches all of them.
      const { rows } = await db.pool.query<{ n: number; external_key: string }>(
        'select cardinality(exposure_ids) as n, external_key from tickets where system = $1 and ticket_key = $2',
        [c.system, ref.key],
      );
      expect(rows).toEqual([{ n: 1000, external_key: externalKeyFor(campaign.campaignId) }]);

      if (c.system === 'glpi') {
        // All 300 hosts linked: 12 searches of 25 names, 3 bulk adds of 100.
        expect(glpi.itemTickets.filter((l) => String(l.tickets_id) === ref.key)).toHaveLength(300);
        expect(glpi.count('GET', /^\/apirest\.php\/search\/Computer$/)).toBe(12);
        expect(glpi.count('POST', /^\/apirest\.php\/Item_Ticket$/)).toBe(3);
        // An update with nothing new links nothing again.
        await system.upsert({ ...campaign.summary, priority: 'Attend' });
        expect(glpi.count('POST', /^\/apirest\.php\/Item_Ticket$/)).toBe(3);
      }

      // Verified fixed, every one: the close note lists them as far as it fits, and says how many more.
      await setStates(db.pool, campaign.ids, 'resolved');
      const lines = campaign.summary.exposures.map(
        (e) => `${e.weaknessKey} on ${e.asset} verified fixed by scan 4242 at 2031-05-02T00:00:00.000Z`,
      );
      await system.close(ref, lines.join('\n'));
      expect(await system.status(ref)).toBe('done');
      const note = c.notes(ref.key).find((n) => n.includes('verified fixed by scan 4242'))!;
      expect(note.length).toBeLessThanOrEqual(32_000);
      expect(note).toContain(lines[0]!);
      expect(note).toMatch(/… and \d+ more lines\./);
    });

  it("a person's change reaches each of the campaign's workflows with the exposures it holds", async () => {
    const { campaign } = seeded.get('servicenow') ?? (await largeCampaign(cases[1]!));
    const { rows } = await db.pool.query<{ ticket_key: string }>(
      'select ticket_key from tickets where system = $1 and group_key = $2',
      ['servicenow', campaign.campaignId],
    );
    const deliveries: TicketChangeDelivery[] = [];
    const outcome = await applyInboundTicketChange(
      db.pool,
      {
        system: 'servicenow',
        key: rows[0]!.ticket_key,
        category: 'open',
        remote: '2',
        actor: 'dana',
        via: 'webhook',
      },
      async (d) => void deliveries.push(...d),
    );
    expect(outcome).toEqual({ outcome: 'signalled', group: campaign.campaignId, workflows: 3 });
    expect(deliveries.map((d) => d.workflowId)).toEqual(
      [1, 2, 3].map((s) => campaignWorkflowId(campaign.campaignId, s)),
    );
    expect(deliveries.map((d) => d.exposureIds.length)).toEqual([400, 400, 200]);
    expect(new Set(deliveries.flatMap((d) => d.exposureIds))).toEqual(new Set(campaign.ids));
  });
});
