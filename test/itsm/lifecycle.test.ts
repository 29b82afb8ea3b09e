// The lifecycle path with a real ticket system: the exposure workflow (workflows/exposure) opens the
// unit's Jira issue through the integration registry when the owner approves; a person closing it
// in Jira sends the signed webhook, the workflow starts verification (it does not resolve on their
// word); a scan proving the weakness gone resolves it and the issue is closed by us, once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { FakeJira } from '../fakes/jira.ts';
import { dispatchChanges } from '../../activities/lifecycle/dispatch.ts';
import { applyDecision } from '../../activities/lifecycle/decide.ts';
import { externalKeyFor } from '../../activities/itsm/content.ts';
import { exposureWorkflowId } from '../../domain/exposure.ts';
import { parseConfig } from '../../domain/config.ts';
import { absentSignal } from '../../workflows/exposure/messages.ts';
import {
  eventually,
  newPortLog,
  newScan,
  registerRecordingPorts,
  seedExposures,
  untilState,
  view,
} from '../lifecycle/support.ts';
import { envSecret, startWebhooks } from './harness.ts';

describe('the exposure workflow with a Jira ticket system', () => {
  let db: TestDatabase;
  let temporal: TestTemporal;
  const jira = new FakeJira({ email: 'ctem@example.com', apiToken: 'lifecycle-token', projects: ['SEC'] });
  const webhookSecret = 'lifecycle-webhook-secret';
  // The scope's re-scans and notifications go to recording ports; tickets go to Jira.
  registerRecordingPorts(newPortLog());

  beforeAll(async () => {
    [db, temporal] = await Promise.all([testDatabase(), testTemporal(), jira.start()]);
  });
  afterAll(async () => {
    await jira.close();
  });

  it('opens the issue on approval, verifies a human close by re-scan, then closes the issue itself', async () => {
    const config = parseConfig(`
version: 1
people:
  - { id: olivia, name: Olivia Owner }
integrations:
  recording: {}
  jira:
    url: ${jira.url}
    auth: { email: ctem@example.com, apiToken: ${envSecret('lifecycle-token')} }
    project: SEC
    webhookSecret: ${envSecret(webhookSecret)}
scopes:
  - name: tix
    internetFacing: true
    criticality: critical
    roles: { owner: [olivia], approver: [olivia] }
    tickets: { system: jira }
    scan: { connector: recording }
    lifecycle: { verifyWithin: 1h }
`);
    const taskQueue = temporal.taskQueue('itsm-lifecycle');
    const worker = await temporal.worker({ taskQueue, pool: db.pool, config });
    const hooks = await startWebhooks({ temporal, pool: db.pool, config });
    jira.options.webhook = { url: `${hooks.url}/webhooks/jira`, secret: webhookSecret };
    try {
      await worker.runUntil(async () => {
        const seeded = await seedExposures(db.pool, {
          scope: 'tix',
          weaknesses: ['CVE-2099-7001', 'CVE-2099-7002'],
          package: { name: 'openssl', fixedVersion: '3.0.8' },
          exploited: true,
        });
        await dispatchChanges(
          { pool: db.pool, config, baseDir: process.cwd() },
          temporal.client,
          seeded.ids.map((exposureId) => ({
            exposureId,
            change: 'new' as const,
            scanId: seeded.scanId,
            at: seeded.at,
          })),
          { taskQueue },
        );
        for (const id of seeded.ids) await untilState(temporal.client, id, 'awaiting-decision');

        // Approve both exposures of the unit: one Jira issue for the unit, whatever the two workflows do.
        for (const id of seeded.ids)
          await applyDecision(temporal.client, id, {
            kind: 'approve',
            actor: { personId: 'olivia', via: 'api' },
          });
        const views = await Promise.all(
          seeded.ids.map((id) =>
            eventually(
              'the ticket',
              () => view(temporal.client, id),
              (v) => v.tickets.length === 1,
            ),
          ),
        );
        expect(views[0]!.tickets).toEqual(views[1]!.tickets);
        const ticket = views[0]!.tickets[0]!;
        expect(ticket.system).toBe('jira');
        const unitId = views[0]!.remediationUnitId!;
        expect(jira.withLabel(externalKeyFor(unitId)).map((i) => i.key)).toEqual([ticket.key]);
        expect(jira.issues.size).toBe(1);
        const issue = jira.issues.get(ticket.key)!;
        expect(issue.fields.summary).toContain('Upgrade openssl to 3.0.8 or later on');
        const text = JSON.stringify(issue.fields.description);
        expect(text).toContain('CVE-2099-7001');
        expect(text).toContain('CVE-2099-7002');

        // A person closes the issue in Jira: both exposure workflows verify; neither is resolved yet.
        expect(await jira.humanTransition(ticket.key, 'Done', 'Dana Reviewer')).toBe(200);
        for (const id of seeded.ids) {
          const verifying = await untilState(temporal.client, id, 'verifying');
          expect(verifying.fixedAt).toBeDefined();
        }

        // A later scan proves both gone: resolved, and the issue is closed by us (already Done: no new transition).
        const proof = await newScan(db.pool, 'tix', new Date(Date.now() + 2_000));
        for (const id of seeded.ids)
          await temporal.client.workflow
            .getHandle(exposureWorkflowId(id))
            .signal(absentSignal, { scanId: proof.scanId, at: proof.at });
        for (const id of seeded.ids)
          expect((await temporal.client.workflow.getHandle(exposureWorkflowId(id)).result()).state).toBe(
            'resolved',
          );
        expect(jira.issues.get(ticket.key)!.fields.status).toBe('Done');
        expect(jira.count('POST', /\/transitions$/)).toBe(0);
        // The person who closed it is told how the fix was verified, once per text. (The unit's
        // ticket is closed by whichever exposure is verified last; an earlier one leaves it be.)
        const notes = jira
          .commentTexts(ticket.key)
          .filter((t) => t.includes(`verified fixed by scan ${proof.scanId}`));
        expect(notes.length).toBeGreaterThanOrEqual(1);
        expect(new Set(notes).size).toBe(notes.length);
        expect(jira.issues.size).toBe(1);
        const { rows } = await db.pool.query(
          'select last_status from tickets where system = $1 and ticket_key = $2',
          ['jira', ticket.key],
        );
        expect(rows).toEqual([{ last_status: 'done' }]);
      });
    } finally {
      await hooks.close();
    }
  });
});
