// The campaign lifecycle with a real ticket system, for each of Jira, ServiceNow and GLPI: the
// campaign workflow (workflows/campaign) on the real Temporal server drives the campaign's ticket
// through the integration registry, and the ticket system's own client talks to a local server
// speaking its protocol. One ticket for the campaign across its hosts, created when the owner
// approves; re-rendered when an exposure joins; an SLA breach commented on it; a person closing it
// (Jira webhook with HMAC, ServiceNow outbound REST with the shared secret, GLPI read by the poller)
// starts verification, not resolution; a scan that still sees a weakness reopens it; a scan proving
// the fix closes it; a weakness coming back after that reopens it again. Every wait is on an
// outcome, never on a clock.
import { randomBytes } from 'node:crypto';
import Handlebars from 'handlebars';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { FakeJira } from '../fakes/jira.ts';
import { FakeServiceNow } from '../fakes/servicenow.ts';
import { FakeGlpi } from '../fakes/glpi.ts';
import type { FakeTicketServer } from '../fakes/ticketServer.ts';
import { campaignSummary, readCampaign } from '../../lifecycle/campaigns.ts';
import { adfText, externalKeyFor } from '../../tickets/content.ts';
import type { TicketStatusCategory } from '../../domain/ports.ts';
import { parseConfig, type Config } from '../../domain/config.ts';
import { exposureId as exposureIdOf } from '../../domain/exposure.ts';
import type { Pool } from '../../runtime/pool.ts';
import { rescoredSignal } from '../../contracts/campaign.ts';
import {
  campaignOf,
  eventually,
  newPortLog,
  newScan,
  recordingPorts,
  seedExposures,
  untilState,
  view,
} from '../lifecycle/support.ts';
import { envSecret, hostName, startWebhooks } from './harness.ts';
import { campaignDriver, WAIT } from './campaigns.ts';

interface SystemCase {
  system: 'jira' | 'servicenow' | 'glpi';
  fake: FakeTicketServer;
  /** The integrations.<system> section (YAML, indented under integrations:). */
  section: () => string;
  /** Point the fake's outbound calls at our endpoints; start the poller. Returns a clean-up. */
  connect: (ctx: {
    hooksUrl: string;
    temporal: TestTemporal;
    taskQueue: string;
    hosts: string[];
  }) => Promise<() => Promise<void>>;
  humanClose: (key: string) => Promise<void>;
  category: (key: string) => TicketStatusCategory;
  /** The description as a person reads it (text; HTML as stored for GLPI). */
  description: (key: string) => string;
  /** The raw stored description, for the link back. */
  raw: (key: string) => string;
  comments: (key: string) => string[];
  ticketsWith: (externalKey: string) => string[];
  /** How a value appears in the description (GLPI escapes HTML). */
  shown: (value: string) => string;
}

const jiraWebhookSecret = `jira-hook-${randomBytes(4).toString('hex')}`;
const snSecret = `sn-shared-${randomBytes(4).toString('hex')}`;
const jira = new FakeJira({ email: 'ctem@example.com', apiToken: 'e2e-jira-token', projects: ['SEC'] });
const sn = new FakeServiceNow({ user: 'ctem', password: 'e2e-sn-password' });
const glpi = new FakeGlpi({ appToken: 'e2e-app', userToken: 'e2e-user' });

const cases: SystemCase[] = [
  {
    system: 'jira',
    fake: jira,
    section: () => `
  jira:
    url: ${jira.url}
    auth: { email: ctem@example.com, apiToken: ${envSecret('e2e-jira-token')} }
    project: SEC
    dashboardUrl: https://ctem.example.com
    webhookSecret: ${envSecret(jiraWebhookSecret)}`,
    connect: async ({ hooksUrl }) => {
      jira.options.webhook = { url: `${hooksUrl}/webhooks/jira`, secret: jiraWebhookSecret };
      return async () => undefined;
    },
    humanClose: async (key) => {
      expect(await jira.humanTransition(key, 'Done', 'Dana Reviewer')).toBe(200);
    },
    category: (key) => (jira.issues.get(key)!.fields.status === 'Done' ? 'done' : 'open'),
    description: (key) => adfText(jira.issues.get(key)!.fields.description),
    raw: (key) => JSON.stringify(jira.issues.get(key)!.fields.description),
    comments: (key) => jira.commentTexts(key),
    ticketsWith: (k) => jira.withLabel(k).map((i) => i.key),
    shown: (v) => v,
  },
  {
    system: 'servicenow',
    fake: sn,
    section: () => `
  servicenow:
    url: ${sn.url}
    auth: { username: ctem, password: ${envSecret('e2e-sn-password')} }
    dashboardUrl: https://ctem.example.com
    inboundSecret: ${envSecret(snSecret)}`,
    connect: async ({ hooksUrl }) => {
      sn.options.outbound = {
        url: `${hooksUrl}/webhooks/servicenow`,
        header: 'x-ctem-secret',
        secret: snSecret,
      };
      return async () => undefined;
    },
    humanClose: async (key) => {
      expect(await sn.humanResolve(key, 'dana.reviewer')).toBe(200);
    },
    category: (key) => (['6', '7'].includes(sn.records.get(key)!.state) ? 'done' : 'open'),
    description: (key) => sn.records.get(key)!.description,
    raw: (key) => sn.records.get(key)!.description,
    // Journal entries, and the close notes our resolve writes.
    comments: (key) => {
      const r = sn.records.get(key)!;
      return [...r.work_notes.map((n) => n.text), ...r.comments.map((n) => n.text), r.close_notes];
    },
    ticketsWith: (k) => sn.byCorrelation(k).map((r) => r.sys_id),
    shown: (v) => v,
  },
  {
    system: 'glpi',
    fake: glpi,
    section: () => `
  glpi:
    url: ${glpi.url}/apirest.php
    appToken: ${envSecret('e2e-app')}
    userToken: ${envSecret('e2e-user')}
    dashboardUrl: https://ctem.example.com
    pollInterval: 1s`,
    connect: async ({ temporal, taskQueue, hosts }) => {
      glpi.computers.push(...hosts.map((name, i) => ({ id: 7 + i, name })));
      // The production poller workflow, under an id of this test's own (the server is shared).
      const poller = await temporal.client.workflow.start('ticketStatusPoll', {
        taskQueue,
        workflowId: `ticket-poll-glpi-${taskQueue}`,
        args: [{ system: 'glpi', intervalMs: 500 }],
      });
      return async () => {
        await poller.terminate('test over').catch(() => undefined);
      };
    },
    humanClose: async (key) => {
      glpi.humanSetStatus(Number(key), 6);
    },
    category: (key) => (glpi.tickets.get(Number(key))!.status >= 5 ? 'done' : 'open'),
    description: (key) => glpi.tickets.get(Number(key))!.content.replace(/<[^>]*>/g, ''),
    raw: (key) => glpi.tickets.get(Number(key))!.content,
    comments: (key) => glpi.followupsOf(Number(key)),
    ticketsWith: (k) => glpi.byExternalId(k).map((t) => String(t.id)),
    shown: (v) => Handlebars.escapeExpression(v),
  },
];

/** One more weakness on an asset already seeded, fixed by the same package upgrade. */
async function addExposure(pool: Pool, assetId: number, scope: string, weakness: string): Promise<string> {
  const scan = await newScan(pool, scope);
  const id = exposureIdOf(assetId, weakness);
  await pool.query(
    `insert into exposures (id, asset_id, vuln_key, scope, state, first_seen, last_seen, first_scan_id, last_scan_id)
     values ($1, $2, $3, $4, 'open', $5, $5, $6, $6)`,
    [id, assetId, weakness, scope, scan.at, scan.scanId],
  );
  await pool.query(
    `insert into vulnerabilities (key, title, reported_cvss, reported_epss, reported_epss_percentile)
     values ($1, $2, $3, 0.95, 0.999) on conflict (key) do nothing`,
    [
      weakness,
      `Test weakness ${weakness}`,
      JSON.stringify([{ version: '3.1', vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }]),
    ],
  );
  await pool.query(
    `insert into observations (exposure_id, scanner, asset_id, vuln_key, first_seen, last_seen, first_scan_id, last_scan_id,
                               kind, title, severity, package_name, package_version, fixed_version, package_type)
     values ($1, 'test', $2, $3, $4, $4, $5, $5, 'vulnerability', $6, 'critical', 'openssl', '1.0', '3.0.8', 'deb')`,
    [id, assetId, weakness, scan.at, scan.scanId, `Test weakness ${weakness}`],
  );
  return id;
}

describe('the campaign workflow with each ticket system', () => {
  let db: TestDatabase;
  let temporal: TestTemporal;
  // Re-scans and notifications go to recording ports; tickets go to the ticket system.
  const log = newPortLog();
  const ports = recordingPorts(log);

  beforeAll(async () => {
    [db, temporal] = await Promise.all([
      testDatabase(),
      testTemporal(),
      jira.start(),
      sn.start(),
      glpi.start(),
    ]);
  });
  afterAll(async () => {
    await Promise.all([jira.close(), sn.close(), glpi.close()]);
  });

  for (const [index, c] of cases.entries()) {
    it(
      `${c.system}: one ticket for a campaign on two hosts — create, update, comment, human close, reopen, close, reopen on regression`,
      async () => {
        const scope = `tix-${c.system}`;
        const [webHost, dbHost] = [hostName(`${c.system}-web`), hostName(`${c.system}-db`)];
        const config: Config = parseConfig(`
version: 1
people:
  - { id: olivia, name: Olivia Owner }
integrations:
  recording: {}${c.section()}
scopes:
  - name: ${scope}
    internetFacing: true
    criticality: critical
    roles: { owner: [olivia], approver: [olivia] }
    tickets: { system: ${c.system} }
    scan: { connector: recording }
    lifecycle:
      verifyWithin: 1h
      ladder:
        - { at: 100%, notify: [owner] }
`);
        const taskQueue = temporal.taskQueue(`itsm-e2e-${c.system}`);
        const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
        const hooks = await startWebhooks({ temporal, pool: db.pool, config });
        const drive = campaignDriver({
          client: temporal.client,
          pool: db.pool,
          config,
          taskQueue,
          registry: ports,
        });
        const ledgerStatus = async (key: string) =>
          (
            await db.pool.query<{ last_status: string }>(
              'select last_status from tickets where system = $1 and ticket_key = $2',
              [c.system, key],
            )
          ).rows[0]?.last_status;
        const pkg = { name: 'openssl', fixedVersion: '3.0.8' };
        const weakness = (n: number) => `CVE-2099-71${index}${n}`;
        let disconnect = async (): Promise<void> => undefined;
        let workflowId: string | undefined;
        try {
          await worker.runUntil(async () => {
            disconnect = await c.connect({
              hooksUrl: hooks.url,
              temporal,
              taskQueue,
              hosts: [webHost, dbHost],
            });
            const web = await seedExposures(db.pool, {
              scope,
              host: webHost,
              weaknesses: [weakness(1), weakness(2)],
              package: pkg,
              exploited: true,
            });
            const dbs = await seedExposures(db.pool, {
              scope,
              host: dbHost,
              weaknesses: [weakness(1)],
              package: pkg,
              exploited: true,
            });
            const ids = [...web.ids, ...dbs.ids];
            const [first] = ids as [string];
            await drive.dispatch(ids, 'new', web);
            for (const id of ids) await untilState(temporal.client, db.pool, id, 'awaiting-decision', WAIT);
            const campaign = await campaignOf(db.pool, first);
            const campaignId = campaign.campaignId;
            workflowId = campaign.workflowId;
            for (const id of ids) expect((await campaignOf(db.pool, id)).campaignId).toBe(campaignId);

            // --- create: the campaign is approved once, one ticket for its exposures on both hosts.
            await drive.approveCampaign(campaignId);
            const ticket = await drive.ticketOf(campaignId);
            expect(ticket.system).toBe(c.system);
            const externalKey = externalKeyFor(campaignId);
            expect(c.ticketsWith(externalKey)).toEqual([ticket.key]);

            // --- what it says: what, where, priority and why, SLA deadline, the fix, a link back.
            const summary = (await campaignSummary(db.pool, campaignId))!;
            const text = c.description(ticket.key);
            expect(text).toContain(c.shown(summary.action));
            expect(summary.action).toBe('Upgrade openssl to 3.0.8 or later on 2 assets');
            expect(text).toContain('3 open of 3 exposures on 2 assets');
            for (const e of summary.exposures) {
              expect(text).toContain(e.weaknessKey);
              expect(text).toContain(c.shown(e.asset));
              for (const reason of e.reasons) expect(text).toContain(c.shown(reason));
            }
            expect(summary.exposures[0]!.reasons.length).toBeGreaterThan(0);
            expect(text).toMatch(new RegExp(`Priority:\\s+${summary.priority}`));
            expect(summary.slaDue).toBeDefined();
            expect(text).toContain(summary.slaDue!);
            expect(text).toContain(
              `Upgrade openssl from 1.0 to 3.0.8 or later (${weakness(1)}, ${weakness(2)})`,
            );
            // (GLPI's HTML escapes the link's '=' as an entity.)
            expect(c.raw(ticket.key).replaceAll('&#x3D;', '=')).toContain(
              `https://ctem.example.com/dashboard?campaign=${encodeURIComponent(campaignId)}`,
            );
            if (c.system === 'jira')
              expect(jira.issues.get(ticket.key)!.fields.duedate).toBe(summary.slaDue!.slice(0, 10));
            if (c.system === 'glpi')
              expect(
                glpi.itemTickets
                  .filter((l) => String(l.tickets_id) === ticket.key)
                  .map((l) => l.items_id)
                  .sort(),
              ).toEqual([7, 8]);

            // --- update: a third weakness on web joins the campaign; its approval re-renders the same ticket.
            const third = await addExposure(db.pool, web.assetId, scope, weakness(3));
            await drive.dispatch([third], 'new', await newScan(db.pool, scope));
            await untilState(temporal.client, db.pool, third, 'awaiting-decision', WAIT);
            expect((await campaignOf(db.pool, third)).campaignId).toBe(campaignId);
            await drive.approve([third]);
            await eventually(
              'the re-rendered ticket',
              async () => c.description(ticket.key),
              (t) => t.includes(weakness(3)) && t.includes('4 open of 4 exposures on 2 assets'),
              WAIT,
            );
            expect(c.ticketsWith(externalKey)).toEqual([ticket.key]);
            const all = [...ids, third];

            // --- comment on escalation: a re-score pulls one deadline into the past, its SLA is breached.
            const before = await view(temporal.client, db.pool, first);
            await temporal.client.workflow.getHandle(workflowId).signal(rescoredSignal, [
              {
                exposureId: first,
                priority: before.priority,
                slaDue: new Date(Date.parse(web.at) - 60_000).toISOString(),
                policyVersion: 'e2e-breach',
              },
            ]);
            const breached = await eventually(
              'the escalation comment',
              async () => c.comments(ticket.key).filter((t) => t.includes('SLA breached')),
              (n) => n.length > 0,
              WAIT,
            );
            expect(breached).toHaveLength(1);
            expect(breached[0]).toContain(weakness(1));

            // --- inbound: a person closes the ticket; every exposure verifies, none is resolved on their word.
            await c.humanClose(ticket.key);
            for (const id of all) {
              const v = await untilState(temporal.client, db.pool, id, 'verifying', WAIT);
              expect(v.fixedAt).toBeDefined();
            }
            const fixedAt = Date.parse((await view(temporal.client, db.pool, first)).fixedAt!);
            const rescan = await eventually(
              'the re-scan of both hosts',
              async () =>
                log.rescans.filter(
                  (r) => r.scope === scope && r.notBefore === new Date(fixedAt).toISOString(),
                ),
              (r) => r.length > 0,
              WAIT,
            );
            expect([...rescan[0]!.assetIds].sort()).toEqual([web.assetId, dbs.assetId].sort());
            // Recorded once the change is signalled (the poller acknowledges after signalling).
            await eventually(
              'the ledger',
              () => ledgerStatus(ticket.key),
              (s) => s === 'done',
              WAIT,
            );

            // --- reopen: a scan after that close still sees the first weakness.
            const stillThere = await newScan(db.pool, scope, new Date(fixedAt + 1_000));
            await drive.dispatch([first], 'seen', stillThere);
            await untilState(temporal.client, db.pool, first, 'remediating', WAIT);
            await eventually(
              'the reopened ticket',
              async () => c.category(ticket.key),
              (s) => s !== 'done',
              WAIT,
            );
            expect(c.comments(ticket.key).some((t) => t.includes('did not remove'))).toBe(true);
            expect(await ledgerStatus(ticket.key)).not.toBe('done');

            // --- close: a later scan proves all four gone; the ticket is closed by us, once.
            const proof = await newScan(db.pool, scope, new Date(fixedAt + 2_000));
            await drive.dispatch(all, 'gone', proof);
            await temporal.client.workflow.getHandle(workflowId).result();
            for (const id of all) expect((await view(temporal.client, db.pool, id)).state).toBe('resolved');
            await eventually(
              'the closed ticket',
              async () => c.category(ticket.key),
              (s) => s === 'done',
              WAIT,
            );
            expect(await ledgerStatus(ticket.key)).toBe('done');
            expect(
              c.comments(ticket.key).some((t) => t.includes(`verified fixed by scan ${proof.scanId}`)),
            ).toBe(true);

            // --- regression: the first weakness comes back; approved again, the same ticket reopens.
            const back = await newScan(db.pool, scope, new Date(fixedAt + 3_000));
            await drive.dispatch([first], 'reappeared', back);
            await untilState(temporal.client, db.pool, first, 'awaiting-decision', WAIT);
            expect((await campaignOf(db.pool, first)).campaignId).toBe(campaignId);
            await drive.approve([first]);
            await eventually(
              'the ticket reopened on regression',
              async () => c.category(ticket.key),
              (s) => s !== 'done',
              WAIT,
            );
            await eventually(
              'the ledger',
              () => ledgerStatus(ticket.key),
              (s) => s !== 'done',
              WAIT,
            );
            expect(c.comments(ticket.key).some((t) => t.includes('needs fixing again'))).toBe(true);
            expect((await readCampaign(db.pool, campaignId))!.ticket).toEqual(ticket);
            expect(c.ticketsWith(externalKey)).toEqual([ticket.key]);
          });
        } finally {
          await disconnect();
          await hooks.close();
          if (workflowId)
            await temporal.client.workflow
              .getHandle(workflowId)
              .terminate('test over')
              .catch(() => undefined);
        }
      },
      WAIT * 4,
    );
  }
});
