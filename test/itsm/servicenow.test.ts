// ServiceNow end to end: a workflow on the real Temporal server drives the unit's incident through
// the real activities and the Table API (Node's fetch) against a local instance; a person resolving
// it makes the business rule call our outbound REST endpoint, which signals the workflow.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { FakeServiceNow } from '../fakes/servicenow.ts';
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

describe('ServiceNow incidents through a workflow', () => {
  let db: TestDatabase;
  let temporal: TestTemporal;
  let bundlePath: string;
  const sn = new FakeServiceNow({ user: 'ctem.integration', password: 'sn-password-1' });
  const inboundSecret = 'sn-shared-secret';

  beforeAll(async () => {
    [db, temporal, bundlePath] = await Promise.all([
      testDatabase(),
      testTemporal(),
      bundleTicketWorkflows(),
      sn.start(),
    ]);
  });
  afterAll(async () => {
    await sn.close();
  });

  it('creates once, updates, comments once, resolves, reopens, and hears a person resolve it', async () => {
    const config = configWith({
      servicenow: {
        url: sn.url,
        auth: { username: 'ctem.integration', password: envSecret('sn-password-1') },
        fields: { assignment_group: 'Security ^ Ops = Team' },
        priorities: { Act: { urgency: 1, impact: 1 } },
        inboundSecret: envSecret(inboundSecret),
      },
    });
    const taskQueue = temporal.taskQueue('servicenow');
    const { worker, running } = await startTicketWorker({
      temporal,
      pool: db.pool,
      config,
      taskQueue,
      bundlePath,
    });
    const hooks = await startWebhooks({ temporal, pool: db.pool, config });
    sn.options.outbound = {
      url: `${hooks.url}/webhooks/servicenow`,
      header: 'X-Ctem-Secret',
      secret: inboundSecret,
    };
    try {
      const unit = sampleUnit();
      const correlation = externalKeyFor(unit.id);
      const handle = await temporal.client.workflow.start('ticketDrill', {
        taskQueue,
        workflowId: exposureWorkflowId(unit.exposures[0]!.id),
        args: ['servicenow'],
      });

      // create
      const ref = await handle.executeUpdate(upsertUpdate, { args: [unit] });
      const [incident, ...others] = sn.byCorrelation(correlation);
      expect(others).toEqual([]);
      expect(ref).toMatchObject({ system: 'servicenow', key: incident!.sys_id });
      expect(ref.url).toBe(
        `${sn.url}/nav_to.do?uri=${encodeURIComponent(`incident.do?sys_id=${incident!.sys_id}`)}`,
      );
      expect(incident).toMatchObject({
        short_description: '[CTEM Act] Upgrade openssl to 3.0.8 or later on web-01',
        correlation_display: 'CTEM',
        urgency: '1',
        impact: '1',
        assignment_group: 'Security ^ Ops = Team',
        state: '1',
      });
      expect(incident!.description).toContain('Why this priority:\n- CISA KEV: known exploited');
      expect(incident!.description).toContain(
        '1. Upgrade openssl from 3.0.2 to 3.0.8 or later (CVE-2023-0286, CVE-2022-3602).',
      );
      expect(incident!.description).toContain('SLA deadline: 2031-05-01T12:00:00.000Z');
      expect(incident!.description).toContain(`Open in CTEM: ${unit.url}`);
      // plain text: no HTML escaping of the title's quotes and angle brackets
      expect(incident!.description).toContain('overflow "quote" & <b>');
      // the lookup before the create asked by correlation_id, encoded
      const lookup = sn.requests.find(
        (r) => r.method === 'GET' && r.query.get('sysparm_query')?.startsWith('correlation_id='),
      );
      expect(lookup?.query.get('sysparm_query')).toBe(`correlation_id=${correlation}^ORDERBYsys_created_on`);

      // update
      await handle.executeUpdate(upsertUpdate, {
        args: [{ ...unit, priority: 'Attend', action: 'Upgrade openssl to 3.0.9 or later on web-01' }],
      });
      expect(sn.records.get(incident!.sys_id)!.short_description).toBe(
        '[CTEM Attend] Upgrade openssl to 3.0.9 or later on web-01',
      );
      expect(sn.records.size).toBe(1);

      // comment twice with one key → one work note (carrying its marker)
      await handle.executeUpdate(commentUpdate, { args: ['SLA breached: escalated to the CISO.', 'esc-2'] });
      await handle.executeUpdate(commentUpdate, { args: ['SLA breached: escalated to the CISO.', 'esc-2'] });
      const notes = sn.records
        .get(incident!.sys_id)!
        .work_notes.filter((n) => n.text.includes('SLA breached'));
      expect(notes).toHaveLength(1);
      expect(notes[0]!.text).toMatch(/\[ctem-ref:[0-9a-f]{16}\]$/);

      // resolve on a verified fix: close_code and close_notes satisfy the data policy
      await handle.executeUpdate(closeUpdate, { args: ['Verified fixed by scan 42.'] });
      expect(sn.records.get(incident!.sys_id)).toMatchObject({
        state: '6',
        close_code: 'Solved (Permanently)',
        close_notes: 'Verified fixed by scan 42.',
      });
      expect(await handle.executeUpdate(statusUpdate)).toBe('done');

      // reopen on regression
      await handle.executeUpdate(reopenUpdate, { args: ['Scan 57 sees CVE-2023-0286 again.'] });
      expect(sn.records.get(incident!.sys_id)!.state).toBe('2');
      expect(await handle.executeUpdate(statusUpdate)).toBe('in-progress');

      // a person resolves it; the outbound REST call signals the exposure workflow
      expect(await sn.humanResolve(incident!.sys_id, 'dana.reviewer')).toBe(200);
      const changes = await eventually(async () => {
        const c = await handle.query(changesQuery);
        return c.length ? c : undefined;
      });
      expect(changes).toEqual([
        expect.objectContaining({
          ticket: expect.objectContaining({ key: incident!.sys_id }),
          status: 'done',
          by: 'dana.reviewer',
        }),
      ]);
      // a wrong shared secret is refused and signals nothing
      expect(await sn.humanResolve(incident!.sys_id, 'mallory', 'guess')).toBe(401);
      // delivered again: unchanged
      await sn.humanResolve(incident!.sys_id, 'dana.reviewer');
      expect(sn.outboundDeliveries.at(-1)).toMatchObject({ status: 200, body: { outcome: 'unchanged' } });

      await handle.signal(finishSignal);
      expect(await handle.result()).toHaveLength(1);
    } finally {
      await hooks.close();
      worker.shutdown();
      await running;
    }
  });

  it('polls when configured: a resolve whose outbound REST call never came reaches the workflow once', async () => {
    const config = configWith({
      servicenow: {
        url: sn.url,
        auth: { username: 'ctem.integration', password: envSecret('sn-password-1') },
        pollInterval: '1s',
      },
    });
    // No business rule calls us: only the poller can notice the change.
    sn.options.outbound = undefined;
    const taskQueue = temporal.taskQueue('servicenow-poll');
    const { worker, running } = await startTicketWorker({
      temporal,
      pool: db.pool,
      config,
      taskQueue,
      bundlePath,
    });
    const unit = sampleUnit();
    const drill = await temporal.client.workflow.start('ticketDrill', {
      taskQueue,
      workflowId: exposureWorkflowId(unit.exposures[0]!.id),
      args: ['servicenow'],
    });
    const poller = await temporal.client.workflow.start('ticketStatusPoll', {
      taskQueue,
      workflowId: `ticket-poll-servicenow-${taskQueue}`,
      args: [{ system: 'servicenow', intervalMs: 300 }],
    });
    try {
      const ref = await drill.executeUpdate(upsertUpdate, { args: [unit] });
      // Our own reopen of a resolved incident is no news to the poller (the ledger moved first).
      await drill.executeUpdate(closeUpdate, { args: ['Verified fixed by scan 61.'] });
      await drill.executeUpdate(reopenUpdate, { args: ['Scan 62 sees it again.'] });
      // The poller's reads (all of our incidents, by correlation_id prefix), not the key lookups.
      const queries = () =>
        sn.requests.filter((r) => r.method === 'GET' && r.query.get('sysparm_query')?.includes('STARTSWITH'))
          .length;
      const seen = queries();
      await eventually(() => (queries() >= seen + 2 ? true : undefined), 120_000);
      expect(await drill.query(changesQuery)).toEqual([]);

      expect(await sn.humanResolve(ref.key, 'dana.reviewer')).toBe(0);
      const changes = await eventually(async () => {
        const c = await drill.query(changesQuery);
        return c.length ? c : undefined;
      }, 120_000);
      expect(changes).toEqual([
        expect.objectContaining({ ticket: expect.objectContaining({ key: ref.key }), status: 'done' }),
      ]);
      // The poller records the change once it has signalled it.
      await eventually(async () => {
        const { rows } = await db.pool.query<{ last_status: string; remote_status: string }>(
          'select last_status, remote_status from tickets where system = $1 and ticket_key = $2',
          ['servicenow', ref.key],
        );
        return rows[0]?.last_status === 'done' && rows[0].remote_status === '6' ? true : undefined;
      }, 120_000);
      const events = await db.pool.query<{ via: string }>(
        `select data->>'via' as via from events where type = 'ticket.changed' and data->'ticket'->>'key' = $1`,
        [ref.key],
      );
      // One event per exposure of the unit.
      expect(events.rows.map((r) => r.via)).toEqual(unit.exposures.map(() => 'poll'));
      // Later polls see the same resolved incident again (sys_updated_on >= position): no second signal.
      const after = queries();
      await eventually(() => (queries() >= after + 2 ? true : undefined), 120_000);
      expect(await drill.query(changesQuery)).toHaveLength(1);
      const { rows: cursor } = await db.pool.query(
        'select position from ticket_poll_cursors where system = $1',
        ['servicenow'],
      );
      expect(cursor).toEqual([{ position: sn.records.get(ref.key)!.sys_updated_on }]);
    } finally {
      await poller.terminate('test over').catch(() => undefined);
      await drill.terminate('test over').catch(() => undefined);
      worker.shutdown();
      await running;
    }
  }, 300_000);
});
