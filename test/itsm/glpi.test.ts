// GLPI end to end: the campaign workflow on the real Temporal server files one ticket for a campaign
// through the real activities and GLPI's REST API (sessions, Ticket, the search engine, Item_Ticket,
// ITILFollowup) against a local GLPI, linked to each of its hosts GLPI knows; a technician solving
// it is found by the polling workflow, which tells the campaign: its exposures go to verification.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { FakeGlpi } from '../fakes/glpi.ts';
import { externalKeyFor } from '../../tickets/content.ts';
import { createTicketSystem } from '../../tickets/systems.ts';
import { glpi as glpiSystem } from '../../tickets/glpi/index.ts';
import { glpiSchema } from '../../tickets/glpi/config.ts';
import { campaignSummary } from '../../lifecycle/campaigns.ts';
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
import { envSecret, hostName, silentLog, ticketScopeConfig } from './harness.ts';
import { campaignDriver, WAIT } from './campaigns.ts';

describe('GLPI tickets of campaigns', () => {
  let db: TestDatabase;
  let temporal: TestTemporal;
  const glpi = new FakeGlpi({ appToken: 'glpi-app-token', userToken: 'glpi-user-token', computers: [] });
  const log = newPortLog();
  const ports = recordingPorts(log);

  beforeAll(async () => {
    [db, temporal] = await Promise.all([testDatabase(), testTemporal(), glpi.start()]);
  });
  afterAll(async () => {
    await glpi.close();
  });

  it(
    'one ticket for a campaign, linked to each host GLPI knows; updated, followed up once, and a technician solving it starts verification',
    async () => {
      const scope = hostName('glpi');
      const section = {
        url: `${glpi.url}/apirest.php`,
        appToken: envSecret('glpi-app-token'),
        userToken: envSecret('glpi-user-token'),
        urgencies: { Act: 5, Attend: 4 },
        entity: 0,
        dashboardUrl: 'https://ctem.example.com',
      };
      const config = ticketScopeConfig({ scope, system: 'glpi', section, rescans: true });
      const taskQueue = temporal.taskQueue('glpi');
      const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
      const drive = campaignDriver({
        client: temporal.client,
        pool: db.pool,
        config,
        taskQueue,
        registry: ports,
      });
      const system = createTicketSystem(glpiSystem, glpiSchema.parse(section), {
        pool: db.pool,
        log: silentLog,
        baseDir: process.cwd(),
        config,
      });
      const [webHost, dbHost, labHost] = [hostName('web'), hostName('db'), hostName('lab')];
      // GLPI knows web by its name and db by its short name (the inventory has db's FQDN); not lab.
      glpi.computers.push({ id: 12, name: webHost }, { id: 7, name: dbHost });
      await worker.runUntil(async () => {
        const poller = await temporal.client.workflow.start('ticketStatusPoll', {
          taskQueue,
          workflowId: `ticket-poll-glpi-${taskQueue}`,
          args: [{ system: 'glpi', intervalMs: 200 }],
        });
        try {
          const pkg = { name: 'openssl', fixedVersion: '3.0.8' };
          const seeded = [];
          for (const [host, weaknesses] of [
            [webHost, ['CVE-2099-6101', 'CVE-2099-6102']],
            [dbHost, ['CVE-2099-6101']],
            [labHost, ['CVE-2099-6101']],
          ] as const)
            seeded.push(
              await seedExposures(db.pool, {
                scope,
                host,
                weaknesses: [...weaknesses],
                package: pkg,
                exploited: true,
              }),
            );
          await db.pool.query('update assets set fqdn = $2 where id = $1', [
            seeded[1]!.assetId,
            `${dbHost}.prod.example.com`,
          ]);
          // A scanner's title with quotes and angle brackets: escaped in GLPI's HTML.
          await db.pool.query('update observations set title = $2 where exposure_id = $1', [
            seeded[0]!.ids[1],
            'X.509 email address 4-byte buffer overflow "quote" & <b>',
          ]);
          const ids = seeded.flatMap((s) => s.ids);
          await drive.dispatch(ids, 'new', seeded[0]!);
          for (const id of ids) await untilState(temporal.client, db.pool, id, 'awaiting-decision', WAIT);
          const { campaignId, workflowId } = await campaignOf(db.pool, ids[0]!);
          const searchesBefore = glpi.count('GET', /^\/apirest\.php\/search\/Computer$/);

          // --- create: one ticket, linked to the two hosts GLPI knows, in one bulk add.
          await drive.approveCampaign(campaignId);
          const ref = await drive.ticketOf(campaignId);
          const [ticket, ...others] = glpi.byExternalId(externalKeyFor(campaignId));
          expect(others).toEqual([]);
          expect(ref).toEqual({
            system: 'glpi',
            key: String(ticket!.id),
            url: `${glpi.url}/front/ticket.form.php?id=${ticket!.id}`,
          });
          expect(ticket).toMatchObject({
            name: '[CTEM Act] Upgrade openssl to 3.0.8 or later on 3 assets',
            urgency: 5,
            status: 1,
            type: 1,
          });
          const summary = (await campaignSummary(db.pool, campaignId))!;
          expect(ticket!.content).toContain(`<li>${summary.exposures[0]!.reasons[0]}</li>`);
          expect(ticket!.content).toContain('4 open of 4 exposures on 3 assets (4 remediating)');
          expect(ticket!.content).toContain('overflow &quot;quote&quot; &amp; &lt;b&gt;');
          expect(ticket!.time_to_resolve).toBe(summary.slaDue!.replace('T', ' ').slice(0, 19));
          expect(
            glpi.itemTickets
              .filter((l) => l.tickets_id === ticket!.id)
              .map((l) => [l.itemtype, l.items_id])
              .sort(),
          ).toEqual([
            ['Computer', 12],
            ['Computer', 7],
          ]);
          expect(glpi.count('POST', /^\/apirest\.php\/Item_Ticket$/)).toBe(1);
          // The four names (db's FQDN and short name among them) in one search.
          expect(glpi.count('GET', /^\/apirest\.php\/search\/Computer$/) - searchesBefore).toBe(1);

          // --- a new weakness on web joins; its approval updates the same ticket, links not repeated.
          const joinScan = await newScan(db.pool, scope);
          const joined = `${seeded[0]!.assetId}:CVE-2099-6103`;
          await db.pool.query(
            `insert into exposures (id, asset_id, vuln_key, scope, state, first_seen, last_seen, first_scan_id, last_scan_id)
             values ($1, $2, 'CVE-2099-6103', $3, 'open', $4, $4, $5, $5)`,
            [joined, seeded[0]!.assetId, scope, joinScan.at, joinScan.scanId],
          );
          await db.pool.query(
            `insert into observations (exposure_id, scanner, asset_id, vuln_key, first_seen, last_seen, first_scan_id, last_scan_id,
                                       kind, title, severity, package_name, package_version, fixed_version, package_type)
             values ($1, 'test', $2, 'CVE-2099-6103', $3, $3, $4, $4, 'vulnerability', 'Test weakness CVE-2099-6103', 'critical', 'openssl', '1.0', '3.0.8', 'deb')`,
            [joined, seeded[0]!.assetId, joinScan.at, joinScan.scanId],
          );
          await drive.dispatch([joined], 'new', joinScan);
          await untilState(temporal.client, db.pool, joined, 'awaiting-decision', WAIT);
          await drive.approve([joined]);
          await eventually(
            'the updated ticket',
            async () => glpi.tickets.get(ticket!.id)!.content,
            (c) => c.includes('CVE-2099-6103'),
            WAIT,
          );
          expect(glpi.tickets.size).toBe(1);
          expect(glpi.itemTickets.filter((l) => l.tickets_id === ticket!.id)).toHaveLength(2);
          expect(glpi.count('POST', /^\/apirest\.php\/Item_Ticket$/)).toBe(1);

          // --- a followup once per key.
          await system.comment(ref, 'SLA reminder: half of the window is gone.', `${campaignId}:rem-1`);
          await system.comment(ref, 'SLA reminder: half of the window is gone.', `${campaignId}:rem-1`);
          expect(glpi.followupsOf(ticket!.id).filter((c) => c.includes('SLA reminder'))).toHaveLength(1);

          // --- a technician solves it in GLPI: the poller notices and tells the campaign.
          const all = [...ids, joined];
          glpi.humanSetStatus(ticket!.id, 5);
          for (const id of all) await untilState(temporal.client, db.pool, id, 'verifying', WAIT);
          const rescans = await eventually(
            'the verifying re-scan',
            async () => log.rescans.filter((r) => r.scope === scope),
            (r) => r.length > 0,
            WAIT,
          );
          expect([...rescans[0]!.assetIds].sort()).toEqual(seeded.map((s) => s.assetId).sort());
          // Later polls do not repeat it.
          const pollsBefore = glpi.count('GET', /^\/apirest\.php\/Ticket$/);
          await eventually(
            'three more polls',
            async () => glpi.count('GET', /^\/apirest\.php\/Ticket$/),
            (n) => n >= pollsBefore + 3,
            WAIT,
          );
          const changes = await db.pool.query<{ n: number }>(
            `select count(*)::int as n from events where type = 'ticket.changed' and data->'ticket'->>'key' = $1`,
            [ref.key],
          );
          expect(changes.rows[0]!.n).toBe(all.length);
          const { rows } = await db.pool.query('select position from ticket_poll_cursors where system = $1', [
            'glpi',
          ]);
          expect(rows[0]?.position).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);

          // --- a scan still sees a weakness: reopened by us; a later scan proves all gone: closed by us.
          const fixedAt = Date.parse((await view(temporal.client, db.pool, ids[0]!)).fixedAt!);
          await drive.dispatch([ids[0]!], 'seen', await newScan(db.pool, scope, new Date(fixedAt + 1_000)));
          await eventually(
            'the reopened ticket',
            async () => glpi.tickets.get(ticket!.id)!.status,
            (s) => s === 2,
            WAIT,
          );
          const proof = await newScan(db.pool, scope, new Date(fixedAt + 2_000));
          await drive.dispatch(all, 'gone', proof);
          await temporal.client.workflow.getHandle(workflowId).result();
          await eventually(
            'the closed ticket',
            async () => glpi.tickets.get(ticket!.id)!.status,
            (s) => s === 6,
            WAIT,
          );
          expect(
            glpi.followupsOf(ticket!.id).some((c) => c.includes(`verified fixed by scan ${proof.scanId}`)),
          ).toBe(true);
          // No change of ours was taken for a technician's by the polls since.
          const polled = glpi.count('GET', /^\/apirest\.php\/Ticket$/);
          await eventually(
            'two more polls',
            async () => glpi.count('GET', /^\/apirest\.php\/Ticket$/),
            (n) => n >= polled + 2,
            WAIT,
          );
          const after = await db.pool.query<{ n: number }>(
            `select count(*)::int as n from events where type = 'ticket.changed' and data->'ticket'->>'key' = $1`,
            [ref.key],
          );
          expect(after.rows[0]!.n).toBe(all.length);
        } finally {
          await poller.terminate('test over').catch(() => undefined);
        }
      });
      // Every session was closed again.
      expect(glpi.sessions.size).toBe(0);
      expect(glpi.killed.length).toBeGreaterThan(5);
    },
    WAIT * 3,
  );
});
