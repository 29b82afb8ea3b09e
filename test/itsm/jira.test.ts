// Jira end to end: the campaign workflow on the real Temporal server files one issue for a campaign
// across its hosts through the real activities and jira.js against a local Jira Cloud; a person
// closing the issue sends the signed webhook, which reaches the campaign as ticketChanged: its
// remediating exposures go to verification and a re-scan is asked for.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCloudClient } from 'jira.js';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { FakeJira } from '../fakes/jira.ts';
import { externalKeyFor } from '../../tickets/content.ts';
import { createTicketSystem } from '../../tickets/systems.ts';
import { jira as jiraSystem } from '../../tickets/jira/index.ts';
import { jiraSchema } from '../../tickets/jira/config.ts';
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
import { envSecret, hostName, silentLog, startWebhooks, ticketScopeConfig } from './harness.ts';
import { campaignDriver, WAIT } from './campaigns.ts';

describe('Jira issues of campaigns', () => {
  let db: TestDatabase;
  let temporal: TestTemporal;
  const jira = new FakeJira({ email: 'ctem@example.com', apiToken: 'jira-api-token-1', projects: ['SEC'] });
  const webhookSecret = 'jira-webhook-secret';
  const log = newPortLog();
  const ports = recordingPorts(log);

  beforeAll(async () => {
    [db, temporal] = await Promise.all([testDatabase(), testTemporal(), jira.start()]);
  });
  afterAll(async () => {
    await jira.close();
  });

  it(
    'one issue for a campaign on two hosts: created once, edited when an exposure joins, commented once, and a person closing it starts verification',
    async () => {
      const scope = hostName('jira');
      const section = {
        url: jira.url,
        auth: { email: 'ctem@example.com', apiToken: envSecret('jira-api-token-1') },
        project: 'SEC',
        priorities: { Act: 'Highest', Attend: 'High' },
        webhookSecret: envSecret(webhookSecret),
        maxRetryAfter: '5s',
        dashboardUrl: 'https://ctem.example.com',
      };
      const config = ticketScopeConfig({ scope, system: 'jira', section, rescans: true });
      const taskQueue = temporal.taskQueue('jira');
      const worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
      const hooks = await startWebhooks({ temporal, pool: db.pool, config });
      jira.options.webhook = { url: `${hooks.url}/webhooks/jira`, secret: webhookSecret };
      const drive = campaignDriver({
        client: temporal.client,
        pool: db.pool,
        config,
        taskQueue,
        registry: ports,
      });
      const system = createTicketSystem(jiraSystem, jiraSchema.parse(section), {
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
            weaknesses: ['CVE-2099-4101', 'CVE-2099-4102'],
            package: pkg,
            exploited: true,
          });
          const dbs = await seedExposures(db.pool, {
            scope,
            host: dbHost,
            weaknesses: ['CVE-2099-4101'],
            package: pkg,
            exploited: true,
          });
          const ids = [...web.ids, ...dbs.ids];
          await drive.dispatch(ids, 'new', web);
          for (const id of ids) await untilState(temporal.client, db.pool, id, 'awaiting-decision', WAIT);
          const { campaignId, workflowId } = await campaignOf(db.pool, ids[0]!);
          for (const id of ids) expect((await campaignOf(db.pool, id)).campaignId).toBe(campaignId);

          // --- create, through a 429 on the create that is waited out for its Retry-After, not duplicated.
          jira.rateLimitOnce((r) => r.method === 'POST' && r.path === '/rest/api/3/issue', '1');
          await drive.approveCampaign(campaignId);
          const ref = await drive.ticketOf(campaignId);
          expect(ref).toMatchObject({ system: 'jira', url: `${jira.url}/browse/${ref.key}` });
          const label = externalKeyFor(campaignId);
          expect(label).toMatch(/^ctem-cmp-[0-9a-f]{24}$/);
          expect(jira.withLabel(label).map((i) => i.key)).toEqual([ref.key]);
          const summary = (await campaignSummary(db.pool, campaignId))!;
          expect(summary.priority).toBe('Act');
          const issue = jira.issues.get(ref.key)!;
          expect(issue.fields.summary).toBe('[CTEM Act] Upgrade openssl to 3.0.8 or later on 2 assets');
          expect(issue.fields.priority).toEqual({ name: 'Highest' });
          expect(issue.fields.duedate).toBe(summary.slaDue!.slice(0, 10));
          expect(issue.fields.labels).toEqual(['ctem', label]);
          const described = JSON.stringify(issue.fields.description);
          for (const text of [
            '3 open of 3 exposures on 2 assets (3 remediating)',
            `${webHost}: 2 open of 2 (Act)`,
            `${dbHost}: 1 open of 1 (Act)`,
            'CVE-2099-4101',
            'CVE-2099-4102',
            'Upgrade openssl from 1.0 to 3.0.8 or later (CVE-2099-4101, CVE-2099-4102).',
            `https://ctem.example.com/dashboard?campaign=${encodeURIComponent(campaignId)}`,
            summary.slaDue!,
            `ctem campaign ${campaignId}`,
          ])
            expect(described).toContain(text);
          const posts = jira.requests.filter((r) => r.path === '/rest/api/3/issue' && r.method === 'POST');
          expect(posts.map((r) => r.status)).toEqual([429, 201]);
          // Retry-After: 1 was honoured before the second attempt.
          expect(posts[1]!.at - posts[0]!.at).toBeGreaterThanOrEqual(950);
          // One search by the label before the create, none after.
          expect(jira.requests.filter((r) => r.path === '/rest/api/3/search/jql')).toHaveLength(1);

          // --- an exposure on a third host joins the campaign; its approval edits the same issue.
          const appHost = hostName('app');
          const app = await seedExposures(db.pool, {
            scope,
            host: appHost,
            weaknesses: ['CVE-2099-4101'],
            package: pkg,
            exploited: true,
          });
          const third = app.ids[0]!;
          await drive.dispatch([third], 'new', app);
          await untilState(temporal.client, db.pool, third, 'awaiting-decision', WAIT);
          expect((await campaignOf(db.pool, third)).campaignId).toBe(campaignId);
          await drive.approve([third]);
          const edited = await eventually(
            'the edited issue',
            async () => JSON.stringify(jira.issues.get(ref.key)!.fields.description),
            (d) => d.includes(appHost),
            WAIT,
          );
          expect(edited).toContain('4 open of 4 exposures on 3 assets');
          expect(jira.issues.get(ref.key)!.fields.summary).toBe(
            '[CTEM Act] Upgrade openssl to 3.0.8 or later on 3 assets',
          );
          const edit = /^\/rest\/api\/3\/issue\/SEC-\d+$/;
          expect(jira.count('PUT', edit)).toBe(1);
          expect(jira.withLabel(label)).toHaveLength(1);
          // Unchanged: nothing is written.
          await system.upsert((await campaignSummary(db.pool, campaignId))!);
          expect(jira.count('PUT', edit)).toBe(1);

          // --- a comment, twice under one key: one comment.
          const note = 'SLA breached: escalated to the team channel and Bob.';
          await system.comment(ref, note, `${campaignId}:esc-1`);
          await system.comment(ref, note, `${campaignId}:esc-1`);
          expect(jira.commentTexts(ref.key).filter((t) => t.includes('SLA breached'))).toHaveLength(1);

          // --- a person closes the issue: the signed webhook reaches the campaign, and each of its
          // remediating exposures goes to verification; one re-scan of the three hosts is asked for.
          const allIds = [...ids, third];
          expect(await jira.humanTransition(ref.key, 'Done', 'Dana Reviewer')).toBe(200);
          expect(jira.webhookDeliveries.at(-1)).toMatchObject({
            status: 200,
            body: { outcome: 'signalled', group: campaignId, workflows: 1 },
          });
          for (const id of allIds) {
            const v = await untilState(temporal.client, db.pool, id, 'verifying', WAIT);
            expect(v.fixedAt).toBeDefined();
          }
          const rescan = await eventually(
            'the verifying re-scan',
            async () => log.rescans.filter((r) => r.scope === scope),
            (r) => r.length > 0,
            WAIT,
          );
          expect(rescan).toHaveLength(1);
          expect([...rescan[0]!.assetIds].sort()).toEqual([web.assetId, dbs.assetId, app.assetId].sort());
          expect(rescan[0]!.notBefore).toBe((await view(temporal.client, db.pool, ids[0]!)).fixedAt);
          // The same webhook delivered again signals nothing new; a forged one is refused.
          await jira.humanTransition(ref.key, 'Done', 'Dana Reviewer');
          expect(jira.webhookDeliveries.at(-1)).toMatchObject({
            status: 200,
            body: { outcome: 'unchanged' },
          });
          expect(await jira.humanTransition(ref.key, 'To Do', 'Mallory', 'not-the-secret')).toBe(401);
          // (The forged move happened in Jira; a person puts it back.)
          await jira.humanTransition(ref.key, 'Done', 'Dana Reviewer');

          // --- a scan after the close still sees one weakness: we reopen the issue, by transition.
          const fixedAt = Date.parse((await view(temporal.client, db.pool, ids[0]!)).fixedAt!);
          await drive.dispatch([ids[0]!], 'seen', await newScan(db.pool, scope, new Date(fixedAt + 1_000)));
          await untilState(temporal.client, db.pool, ids[0]!, 'remediating', WAIT);
          await eventually(
            'the reopened issue',
            async () => jira.issues.get(ref.key)!.fields.status,
            (s) => s === 'To Do',
            WAIT,
          );
          expect(jira.commentTexts(ref.key).some((t) => t.includes('did not remove CVE-2099-4101'))).toBe(
            true,
          );

          // --- a later scan proves every exposure gone: we close the issue, with a resolution.
          const proof = await newScan(db.pool, scope, new Date(fixedAt + 2_000));
          await drive.dispatch(allIds, 'gone', proof);
          await temporal.client.workflow.getHandle(workflowId).result();
          await eventually(
            'the closed issue',
            async () => jira.issues.get(ref.key)!.fields,
            (f) => f.status === 'Done',
            WAIT,
          );
          expect(jira.issues.get(ref.key)!.fields.resolution).toEqual({ name: 'Done' });
          const closing = jira
            .commentTexts(ref.key)
            .find((t) => t.includes(`verified fixed by scan ${proof.scanId}`));
          expect(closing).toBeDefined();
          for (const w of ['CVE-2099-4101', 'CVE-2099-4102']) expect(closing).toContain(w);
          const { rows } = await db.pool.query(
            'select group_key, group_by, external_key, ticket_key, last_status from tickets where system = $1 and ticket_key = $2',
            ['jira', ref.key],
          );
          expect(rows).toEqual([
            {
              group_key: campaignId,
              group_by: 'campaign',
              external_key: label,
              ticket_key: ref.key,
              last_status: 'done',
            },
          ]);
          // The record, per exposure: opened once (three then, the fourth joined later), a person's
          // close, our reopen and our close.
          const events = await db.pool.query<{ type: string; n: number }>(
            `select type, count(*)::int as n from events
              where type like 'ticket.%' and (data->>'key' = $1 or data->'ticket'->>'key' = $1)
              group by type order by type`,
            [ref.key],
          );
          expect(events.rows).toEqual([
            { type: 'ticket.changed', n: 4 },
            { type: 'ticket.closed', n: 4 },
            { type: 'ticket.created', n: 3 },
            { type: 'ticket.reopened', n: 4 },
          ]);
          const transitions = jira.count('POST', /\/transitions$/);
          expect(transitions).toBe(2);
          // Closing again moves nothing.
          await system.close(ref, 'Verified fixed again.');
          expect(jira.count('POST', /\/transitions$/)).toBe(transitions);
          expect(await system.status(ref)).toBe('done');
        });
      } finally {
        await hooks.close();
      }
    },
    WAIT * 3,
  );

  it('serves the retired search with 410 Gone, as Jira Cloud does, so only /search/jql is used', async () => {
    // jira.js with its own transport, as any client of the fake would use it.
    const client = createCloudClient({
      host: jira.url,
      auth: { type: 'basic', email: 'ctem@example.com', apiToken: 'jira-api-token-1' },
      onSchemaMismatch: 'throw',
    });
    const created = await client.issues.createIssue({
      fields: {
        project: { key: 'SEC' },
        issuetype: { name: 'Task' },
        summary: 'probe',
        labels: ['probe-410'],
      },
    });
    // jira.js 6 no longer has the retired endpoint; a client still calling it gets 410 Gone.
    const retired = await fetch(
      `${jira.url}/rest/api/3/search?jql=${encodeURIComponent('labels = probe-410')}`,
      {
        headers: {
          authorization: `Basic ${Buffer.from('ctem@example.com:jira-api-token-1').toString('base64')}`,
        },
      },
    );
    expect(retired.status).toBe(410);
    const page = await client.issueSearch.searchAndReconsileIssuesUsingJql({
      jql: 'labels = probe-410',
      fields: ['key'],
    });
    expect(page.issues?.map((i) => i.key)).toEqual([created.key]);
    // without fields, /search/jql returns ids only, as the real endpoint does
    const bare = await client.issueSearch.searchAndReconsileIssuesUsingJql({
      jql: 'labels = probe-410',
    });
    expect(bare.issues).toEqual([{ id: created.id }]);
    expect(jira.requests.filter((r) => r.path === '/rest/api/3/search').every((r) => r.status === 410)).toBe(
      true,
    );
  });
});
