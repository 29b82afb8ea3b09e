// Jira end to end: a workflow on the real Temporal server drives the unit's ticket through the real
// activities and jira.js against a local Jira Cloud; a person closing the issue sends the signed
// webhook, which reaches the workflow as ticketChanged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCloudClient } from 'jira.js';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { FakeJira } from '../fakes/jira.ts';
import { externalKeyFor } from '../../tickets/content.ts';
import { exposureWorkflowId } from '../../domain/exposure.ts';
import {
  bundleTicketWorkflows,
  configWith,
  envSecret,
  eventually,
  sampleUnit,
  startTicketWorker,
  startWebhooks,
} from './harness.ts';
import {
  changesQuery,
  closeUpdate,
  commentUpdate,
  finishSignal,
  reopenUpdate,
  statusUpdate,
  upsertUpdate,
} from './workflows.ts';

describe('Jira tickets through a workflow', () => {
  let db: TestDatabase;
  let temporal: TestTemporal;
  let bundlePath: string;
  const jira = new FakeJira({ email: 'ctem@example.com', apiToken: 'jira-api-token-1', projects: ['SEC'] });
  const webhookSecret = 'jira-webhook-secret';

  beforeAll(async () => {
    [db, temporal, bundlePath] = await Promise.all([
      testDatabase(),
      testTemporal(),
      bundleTicketWorkflows(),
      jira.start(),
    ]);
  });
  afterAll(async () => {
    await jira.close();
  });

  function jiraConfig() {
    return configWith({
      jira: {
        url: jira.url,
        auth: { email: 'ctem@example.com', apiToken: envSecret('jira-api-token-1') },
        project: 'SEC',
        priorities: { Act: 'Highest', Attend: 'High' },
        webhookSecret: envSecret(webhookSecret),
        maxRetryAfter: '5s',
      },
    });
  }

  it('creates once, updates, comments once, closes, reopens, and hears a person close it', async () => {
    const config = jiraConfig();
    const taskQueue = temporal.taskQueue('jira');
    const { worker, running } = await startTicketWorker({
      temporal,
      pool: db.pool,
      config,
      taskQueue,
      bundlePath,
    });
    const hooks = await startWebhooks({ temporal, pool: db.pool, config });
    jira.options.webhook = { url: `${hooks.url}/webhooks/jira`, secret: webhookSecret };
    try {
      const unit = sampleUnit();
      const handle = await temporal.client.workflow.start('ticketDrill', {
        taskQueue,
        workflowId: exposureWorkflowId(unit.exposures[0]!.id),
        args: ['jira'],
      });

      // create — and a 429 on the create is waited out for its Retry-After, not turned into a duplicate
      jira.rateLimitOnce((r) => r.method === 'POST' && r.path === '/rest/api/3/issue', '1');
      const ref = await handle.executeUpdate(upsertUpdate, { args: [unit] });
      expect(ref).toMatchObject({ system: 'jira', key: 'SEC-1', url: `${jira.url}/browse/SEC-1` });
      const label = externalKeyFor(unit.id);
      expect(jira.withLabel(label).map((i) => i.key)).toEqual(['SEC-1']);
      const issue = jira.issues.get('SEC-1')!;
      expect(issue.fields.summary).toBe('[CTEM Act] Upgrade openssl to 3.0.8 or later on web-01');
      expect(issue.fields.priority).toEqual({ name: 'Highest' });
      expect(issue.fields.duedate).toBe('2031-05-01');
      expect(issue.fields.labels).toEqual(['ctem', label]);
      const described = JSON.stringify(issue.fields.description);
      for (const text of [
        'CISA KEV: known exploited',
        'Upgrade openssl from 3.0.2 to 3.0.8 or later',
        'CVE-2022-3602',
        unit.url!,
        '2031-05-01T12:00:00.000Z',
      ])
        expect(described).toContain(JSON.stringify(text).slice(1, -1));
      const posts = jira.requests.filter((r) => r.path === '/rest/api/3/issue' && r.method === 'POST');
      expect(posts.map((r) => r.status)).toEqual([429, 201]);
      // Retry-After: 1 was honoured before the second attempt
      expect(posts[1]!.at - posts[0]!.at).toBeGreaterThanOrEqual(950);
      // one search by the label before the create, none after
      expect(jira.requests.filter((r) => r.path === '/rest/api/3/search/jql')).toHaveLength(1);

      // update: a new exposure joins the unit; the same issue is edited, no second issue
      const grown = {
        ...unit,
        exposures: [
          ...unit.exposures,
          {
            ...unit.exposures[1]!,
            id: `${unit.exposures[1]!.id}-b`,
            weaknessKey: 'CVE-2023-0464',
            title: 'Excessive policy constraints',
          },
        ],
      };
      expect(await handle.executeUpdate(upsertUpdate, { args: [grown] })).toMatchObject({ key: 'SEC-1' });
      expect(JSON.stringify(jira.issues.get('SEC-1')!.fields.description)).toContain('CVE-2023-0464');
      const edits = jira.count('PUT', /^\/rest\/api\/3\/issue\/SEC-1$/);
      expect(edits).toBe(1);
      // unchanged: nothing is written
      await handle.executeUpdate(upsertUpdate, { args: [grown] });
      expect(jira.count('PUT', /^\/rest\/api\/3\/issue\/SEC-1$/)).toBe(1);
      expect(jira.issues.size).toBe(1);

      // comment on escalation, twice with the same key: one comment
      await handle.executeUpdate(commentUpdate, {
        args: ['SLA breached: escalated to the team channel and Bob.', 'esc-1'],
      });
      await handle.executeUpdate(commentUpdate, {
        args: ['SLA breached: escalated to the team channel and Bob.', 'esc-1'],
      });
      expect(jira.commentTexts('SEC-1').filter((t) => t.includes('SLA breached'))).toHaveLength(1);

      // close on a verified fix (transition into the done category, resolution required by the screen)
      await handle.executeUpdate(closeUpdate, {
        args: ['Verified fixed: scan 42 no longer sees CVE-2023-0286 on web-01.'],
      });
      expect(jira.issues.get('SEC-1')!.fields.status).toBe('Done');
      expect(jira.issues.get('SEC-1')!.fields.resolution).toEqual({ name: 'Done' });
      expect(jira.commentTexts('SEC-1').some((t) => t.includes('Verified fixed: scan 42'))).toBe(true);
      expect(await handle.executeUpdate(statusUpdate)).toBe('done');
      // closing again does nothing
      await handle.executeUpdate(closeUpdate, {
        args: ['Verified fixed: scan 42 no longer sees CVE-2023-0286 on web-01.'],
      });
      expect(jira.count('POST', /\/transitions$/)).toBe(1);

      // reopen on regression
      await handle.executeUpdate(reopenUpdate, {
        args: ['Regression: scan 57 sees CVE-2023-0286 on web-01 again.'],
      });
      expect(jira.issues.get('SEC-1')!.fields.status).toBe('To Do');
      expect(await handle.executeUpdate(statusUpdate)).toBe('open');

      // a person closes it in Jira: the signed webhook reaches the exposure's workflow
      expect(await jira.humanTransition('SEC-1', 'Done', 'Dana Reviewer')).toBe(200);
      const changes = await eventually(async () => {
        const c = await handle.query(changesQuery);
        return c.length ? c : undefined;
      });
      expect(changes).toEqual([
        expect.objectContaining({
          ticket: expect.objectContaining({ system: 'jira', key: 'SEC-1' }),
          status: 'done',
          by: 'Dana Reviewer',
        }),
      ]);
      // the same webhook delivered again signals nothing new
      await jira.humanTransition('SEC-1', 'Done', 'Dana Reviewer');
      expect(jira.webhookDeliveries.at(-1)).toMatchObject({ status: 200, body: { outcome: 'unchanged' } });
      // a forged webhook is refused
      expect(await jira.humanTransition('SEC-1', 'To Do', 'Mallory', 'not-the-secret')).toBe(401);

      await handle.signal(finishSignal);
      const result = await handle.result();
      expect(result).toHaveLength(1);

      const { rows } = await db.pool.query(
        'select group_key, ticket_key, last_status from tickets where system = $1',
        ['jira'],
      );
      expect(rows).toEqual([{ group_key: unit.id, ticket_key: 'SEC-1', last_status: 'done' }]);
      const events = await db.pool.query<{ type: string; n: number }>(
        `select type, count(*)::int as n from events where data->>'key' = 'SEC-1' or data->'ticket'->>'key' = 'SEC-1' group by type order by type`,
      );
      expect(events.rows).toEqual([
        { type: 'ticket.changed', n: 3 },
        { type: 'ticket.closed', n: 3 },
        { type: 'ticket.created', n: 2 },
        { type: 'ticket.reopened', n: 3 },
      ]);
    } finally {
      await hooks.close();
      worker.shutdown();
      await running;
    }
  });

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
