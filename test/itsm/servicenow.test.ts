// ServiceNow end to end: the campaign workflow on the real Temporal server files one incident for a
// campaign through the real activities and the Table API (Node's fetch) against a local instance; a
// person resolving it makes the business rule call our outbound REST endpoint (or, where none is
// configured, the poller notices), which tells the campaign: its remediating exposures go to
// verification and a re-scan is asked for.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { FakeServiceNow } from '../fakes/servicenow.ts';
import { externalKeyFor } from '../../tickets/content.ts';
import { createTicketSystem } from '../../tickets/systems.ts';
import { servicenow as serviceNowSystem } from '../../tickets/servicenow/index.ts';
import { serviceNowSchema } from '../../tickets/servicenow/config.ts';
import { campaignSummary } from '../../lifecycle/campaigns.ts';
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
import { envSecret, hostName, silentLog, startWebhooks, ticketScopeConfig } from './harness.ts';
import { campaignDriver, WAIT } from './campaigns.ts';

describe('ServiceNow incidents of campaigns', () => {
  let db: TestDatabase;
  let temporal: TestTemporal;
  const sn = new FakeServiceNow({ user: 'ctem.integration', password: 'sn-password-1' });
  const inboundSecret = 'sn-shared-secret';
  const log = newPortLog();
  const ports = recordingPorts(log);

  beforeAll(async () => {
    [db, temporal] = await Promise.all([testDatabase(), testTemporal(), sn.start()]);
  });
  afterAll(async () => {
    await sn.close();
  });

  const ledger = async (key: string) =>
    (
      await db.pool.query<{ last_status: string; remote_status: string | null }>(
        'select last_status, remote_status from tickets where system = $1 and ticket_key = $2',
        ['servicenow', key],
      )
    ).rows[0];

  it(
    'one incident for a campaign: created once, re-rendered on a re-score, noted once, and a person resolving it starts verification',
    async () => {
      const scope = hostName('sn');
      const section = {
        url: sn.url,
        auth: { username: 'ctem.integration', password: envSecret('sn-password-1') },
        fields: { assignment_group: 'Security ^ Ops = Team' },
        priorities: { Act: { urgency: 1, impact: 1 }, Attend: { urgency: 2, impact: 2 } },
        inboundSecret: envSecret(inboundSecret),
        dashboardUrl: 'https://ctem.example.com',
      };
      const config = ticketScopeConfig({ scope, system: 'servicenow', section, rescans: true });
      const taskQueue = temporal.taskQueue('servicenow');
      const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
      const hooks = await startWebhooks({ temporal, pool: db.pool, config });
      sn.options.outbound = {
        url: `${hooks.url}/webhooks/servicenow`,
        header: 'X-Ctem-Secret',
        secret: inboundSecret,
      };
      const drive = campaignDriver({
        client: temporal.client,
        pool: db.pool,
        config,
        taskQueue,
        registry: ports,
      });
      const system = createTicketSystem(serviceNowSystem, serviceNowSchema.parse(section), {
        pool: db.pool,
        log: silentLog,
        baseDir: process.cwd(),
        config,
      });
      try {
        await worker.runUntil(async () => {
          const pkg = { name: 'openssl', fixedVersion: '3.0.8' };
          const [webHost, dbHost] = [hostName('web'), hostName('db')];
          const web = await seedExposures(db.pool, {
            scope,
            host: webHost,
            weaknesses: ['CVE-2099-5101', 'CVE-2099-5102'],
            package: pkg,
            exploited: true,
          });
          const dbs = await seedExposures(db.pool, {
            scope,
            host: dbHost,
            weaknesses: ['CVE-2099-5101'],
            package: pkg,
            exploited: true,
          });
          // A scanner's title with quotes and angle brackets: plain text, not escaped.
          await db.pool.query('update observations set title = $2 where exposure_id = $1', [
            web.ids[1],
            'X.509 email address 4-byte buffer overflow "quote" & <b>',
          ]);
          const ids = [...web.ids, ...dbs.ids];
          await drive.dispatch(ids, 'new', web);
          for (const id of ids) await untilState(temporal.client, db.pool, id, 'awaiting-decision', WAIT);
          const { campaignId, workflowId } = await campaignOf(db.pool, ids[0]!);
          const correlation = externalKeyFor(campaignId);

          // --- create.
          await drive.approveCampaign(campaignId);
          const ref = await drive.ticketOf(campaignId);
          const [incident, ...others] = sn.byCorrelation(correlation);
          expect(others).toEqual([]);
          expect(ref).toMatchObject({ system: 'servicenow', key: incident!.sys_id });
          expect(ref.url).toBe(
            `${sn.url}/nav_to.do?uri=${encodeURIComponent(`incident.do?sys_id=${incident!.sys_id}`)}`,
          );
          expect(incident).toMatchObject({
            short_description: '[CTEM Act] Upgrade openssl to 3.0.8 or later on 2 assets',
            correlation_display: 'CTEM',
            urgency: '1',
            impact: '1',
            assignment_group: 'Security ^ Ops = Team',
            state: '1',
          });
          const summary = (await campaignSummary(db.pool, campaignId))!;
          const text = incident!.description;
          expect(text).toContain('Totals: 3 open of 3 exposures on 2 assets (3 remediating)');
          expect(text).toContain(`- ${webHost}: 2 open of 2 (Act)\n- ${dbHost}: 1 open of 1 (Act)`);
          expect(text).toContain(`Why this priority:\n- ${summary.exposures[0]!.reasons[0]}`);
          expect(text).toContain(
            '1. Upgrade openssl from 1.0 to 3.0.8 or later (CVE-2099-5101, CVE-2099-5102).',
          );
          expect(text).toContain(`SLA deadline: ${summary.slaDue}`);
          expect(text).toContain(
            `Open in CTEM: https://ctem.example.com/dashboard?campaign=${encodeURIComponent(campaignId)}`,
          );
          expect(text).toContain('overflow "quote" & <b>');
          // The lookup before the create asked by correlation_id, encoded.
          const lookup = sn.requests.find(
            (r) => r.method === 'GET' && r.query.get('sysparm_query')?.startsWith('correlation_id='),
          );
          expect(lookup?.query.get('sysparm_query')).toBe(
            `correlation_id=${correlation}^ORDERBYsys_created_on`,
          );

          // --- a re-score makes the campaign Attend: the incident is re-rendered in place.
          const before = await view(temporal.client, db.pool, ids[0]!);
          await temporal.client.workflow.getHandle(workflowId).signal(
            rescoredSignal,
            ids.map((exposureId) => ({
              exposureId,
              priority: 'Attend',
              slaDue: new Date(Date.parse(before.slaDue!) + 86_400_000).toISOString(),
              policyVersion: 'sn-rescore',
            })),
          );
          await eventually(
            'the re-rendered incident',
            async () => sn.records.get(incident!.sys_id)!,
            (r) => r.short_description === '[CTEM Attend] Upgrade openssl to 3.0.8 or later on 2 assets',
            WAIT,
          );
          expect(sn.records.get(incident!.sys_id)).toMatchObject({ urgency: '2', impact: '2' });
          expect(sn.byCorrelation(correlation)).toHaveLength(1);

          // --- a note twice under one key: one work note, carrying its marker.
          await system.comment(ref, 'SLA breached: escalated to the CISO.', `${campaignId}:esc-2`);
          await system.comment(ref, 'SLA breached: escalated to the CISO.', `${campaignId}:esc-2`);
          const notes = sn.records
            .get(incident!.sys_id)!
            .work_notes.filter((n) => n.text.includes('SLA breached'));
          expect(notes).toHaveLength(1);
          expect(notes[0]!.text).toMatch(/\[ctem-ref:[0-9a-f]{16}\]$/);

          // --- a person resolves it: the outbound REST call tells the campaign; its exposures verify.
          expect(await sn.humanResolve(incident!.sys_id, 'dana.reviewer')).toBe(200);
          for (const id of ids) await untilState(temporal.client, db.pool, id, 'verifying', WAIT);
          const rescans = await eventually(
            'the verifying re-scan',
            async () => log.rescans.filter((r) => r.scope === scope),
            (r) => r.length > 0,
            WAIT,
          );
          expect([...rescans[0]!.assetIds].sort()).toEqual([web.assetId, dbs.assetId].sort());
          const changed = await db.pool.query<{ actor: string; n: number }>(
            `select actor, count(*)::int as n from events where type = 'ticket.changed' and data->'ticket'->>'key' = $1 group by actor`,
            [incident!.sys_id],
          );
          expect(changed.rows).toEqual([{ actor: 'servicenow:dana.reviewer', n: 3 }]);
          // A wrong shared secret is refused and signals nothing; delivered again: unchanged.
          expect(await sn.humanResolve(incident!.sys_id, 'mallory', 'guess')).toBe(401);
          await sn.humanResolve(incident!.sys_id, 'dana.reviewer');
          expect(sn.outboundDeliveries.at(-1)).toMatchObject({ status: 200, body: { outcome: 'unchanged' } });

          // --- a scan after the resolve still sees a weakness: we put the incident back in progress.
          const fixedAt = Date.parse((await view(temporal.client, db.pool, ids[0]!)).fixedAt!);
          await drive.dispatch([ids[0]!], 'seen', await newScan(db.pool, scope, new Date(fixedAt + 1_000)));
          await eventually(
            'the reopened incident',
            async () => sn.records.get(incident!.sys_id)!.state,
            (s) => s === '2',
            WAIT,
          );
          expect(await system.status(ref)).toBe('in-progress');
          expect((await ledger(incident!.sys_id))?.last_status).toBe('in-progress');

          // --- a later scan proves them gone: resolved by us, with the data policy's fields.
          const proof = await newScan(db.pool, scope, new Date(fixedAt + 2_000));
          await drive.dispatch(ids, 'gone', proof);
          await temporal.client.workflow.getHandle(workflowId).result();
          const resolved = await eventually(
            'the resolved incident',
            async () => sn.records.get(incident!.sys_id)!,
            (r) => r.state === '6',
            WAIT,
          );
          expect(resolved.close_code).toBe('Solved (Permanently)');
          expect(resolved.close_notes).toContain(`verified fixed by scan ${proof.scanId}`);
          expect((await ledger(incident!.sys_id))?.last_status).toBe('done');
        });
      } finally {
        await hooks.close();
      }
    },
    WAIT * 3,
  );

  it(
    'polls when configured: a resolve whose outbound REST call never came reaches the campaign once, and our own moves are no news',
    async () => {
      const scope = hostName('snpoll');
      const section = {
        url: sn.url,
        auth: { username: 'ctem.integration', password: envSecret('sn-password-1') },
        pollInterval: '1s',
      };
      const config = ticketScopeConfig({ scope, system: 'servicenow', section, rescans: true });
      // No business rule calls us: only the poller can notice the change.
      sn.options.outbound = undefined;
      const taskQueue = temporal.taskQueue('servicenow-poll');
      const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
      const drive = campaignDriver({
        client: temporal.client,
        pool: db.pool,
        config,
        taskQueue,
        registry: ports,
      });
      const polls = () =>
        sn.requests.filter((r) => r.method === 'GET' && r.query.get('sysparm_query')?.includes('STARTSWITH'))
          .length;
      await worker.runUntil(async () => {
        // The production poller, under an id of this test's own (the server is shared).
        const poller = await temporal.client.workflow.start('ticketStatusPoll', {
          taskQueue,
          workflowId: `ticket-poll-servicenow-${taskQueue}`,
          args: [{ system: 'servicenow', intervalMs: 300 }],
        });
        try {
          const seeded = await seedExposures(db.pool, {
            scope,
            host: hostName('web'),
            weaknesses: ['CVE-2099-5201', 'CVE-2099-5202'],
            package: { name: 'openssl', fixedVersion: '3.0.8' },
            exploited: true,
          });
          await drive.dispatch(seeded.ids, 'new', seeded);
          for (const id of seeded.ids)
            await untilState(temporal.client, db.pool, id, 'awaiting-decision', WAIT);
          const { campaignId, workflowId } = await campaignOf(db.pool, seeded.ids[0]!);
          await drive.approveCampaign(campaignId);
          const ref = await drive.ticketOf(campaignId);
          // The poller reads every incident of ours (by the correlation_id prefix, old keys and new).
          const seen = polls();
          await eventually(
            'two polls',
            async () => polls(),
            (n) => n >= seen + 2,
            WAIT,
          );
          const pollQuery = sn.requests
            .filter((r) => r.query.get('sysparm_query')?.includes('STARTSWITH'))
            .at(-1)!
            .query.get('sysparm_query');
          expect(pollQuery).toMatch(/^correlation_idSTARTSWITHctem-\^/);

          // A person resolves it; nothing calls us, the poller notices.
          expect(await sn.humanResolve(ref.key, 'dana.reviewer')).toBe(0);
          for (const id of seeded.ids) await untilState(temporal.client, db.pool, id, 'verifying', WAIT);
          await eventually(
            'the ledger',
            () => ledger(ref.key),
            (r) => r?.last_status === 'done' && r.remote_status === '6',
            WAIT,
          );
          // Our own reopen (a scan still sees a weakness) is not taken for a person's by the poller.
          const fixedAt = Date.parse((await view(temporal.client, db.pool, seeded.ids[0]!)).fixedAt!);
          await drive.dispatch(
            [seeded.ids[0]!],
            'seen',
            await newScan(db.pool, scope, new Date(fixedAt + 1_000)),
          );
          await eventually(
            'the reopened incident',
            async () => sn.records.get(ref.key)!.state,
            (s) => s === '2',
            WAIT,
          );
          const after = polls();
          await eventually(
            'three more polls',
            async () => polls(),
            (n) => n >= after + 3,
            WAIT,
          );
          const changes = await db.pool.query<{ status: string; via: string; n: number }>(
            `select data->>'status' as status, data->>'via' as via, count(*)::int as n from events
              where type = 'ticket.changed' and data->'ticket'->>'key' = $1 group by 1, 2`,
            [ref.key],
          );
          // One change, the person's, recorded once per exposure.
          expect(changes.rows).toEqual([{ status: 'done', via: 'poll', n: 2 }]);
          expect((await view(temporal.client, db.pool, seeded.ids[1]!)).state).toBe('verifying');
          const { rows: cursor } = await db.pool.query(
            'select position from ticket_poll_cursors where system = $1',
            ['servicenow'],
          );
          expect(cursor).toEqual([{ position: sn.records.get(ref.key)!.sys_updated_on }]);
          await temporal.client.workflow.getHandle(workflowId).terminate('test over');
        } finally {
          await poller.terminate('test over').catch(() => undefined);
        }
      });
    },
    WAIT * 3,
  );
});
