// GLPI end to end: a workflow on the real Temporal server drives the unit's ticket through the real
// activities and GLPI's REST API (sessions, Ticket, Item_Ticket, ITILFollowup) against a local GLPI;
// a technician closing it is found by the polling workflow, which signals the exposure workflow.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { FakeGlpi } from '../fakes/glpi.ts';
import { externalKeyFor } from '../../tickets/content.ts';
import { exposureWorkflowId } from '../../domain/exposure.ts';
import {
  bundleTicketWorkflows,
  configWith,
  envSecret,
  eventually,
  sampleUnit,
  startTicketWorker,
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

describe('GLPI tickets through a workflow', () => {
  let db: TestDatabase;
  let temporal: TestTemporal;
  let bundlePath: string;
  const glpi = new FakeGlpi({
    appToken: 'glpi-app-token',
    userToken: 'glpi-user-token',
    computers: [
      { id: 7, name: 'db-01' },
      { id: 12, name: 'web-01' },
    ],
  });

  beforeAll(async () => {
    [db, temporal, bundlePath] = await Promise.all([
      testDatabase(),
      testTemporal(),
      bundleTicketWorkflows(),
      glpi.start(),
    ]);
  });
  afterAll(async () => {
    await glpi.close();
  });

  it('creates once with the asset linked, updates, follows up once, closes, reopens, and polls a technician closing it', async () => {
    const config = configWith({
      glpi: {
        url: `${glpi.url}/apirest.php`,
        appToken: envSecret('glpi-app-token'),
        userToken: envSecret('glpi-user-token'),
        urgencies: { Act: 5, Attend: 4 },
        entity: 0,
      },
    });
    const taskQueue = temporal.taskQueue('glpi');
    const { worker, running } = await startTicketWorker({
      temporal,
      pool: db.pool,
      config,
      taskQueue,
      bundlePath,
    });
    const poller = await temporal.client.workflow.start('ticketStatusPoll', {
      taskQueue,
      workflowId: `ticket-poll-glpi-${taskQueue}`,
      args: [{ system: 'glpi', intervalMs: 200 }],
    });
    try {
      const unit = sampleUnit();
      const handle = await temporal.client.workflow.start('ticketDrill', {
        taskQueue,
        workflowId: exposureWorkflowId(unit.exposures[0]!.id),
        args: ['glpi'],
      });

      // create, with the Computer found by name and linked through Item_Ticket
      const ref = await handle.executeUpdate(upsertUpdate, { args: [unit] });
      const [ticket, ...others] = glpi.byExternalId(externalKeyFor(unit.id));
      expect(others).toEqual([]);
      expect(ref).toEqual({
        system: 'glpi',
        key: String(ticket!.id),
        url: `${glpi.url}/front/ticket.form.php?id=${ticket!.id}`,
      });
      expect(ticket).toMatchObject({
        name: '[CTEM Act] Upgrade openssl to 3.0.8 or later on web-01',
        urgency: 5,
        status: 1,
        type: 1,
      });
      expect(ticket!.content).toContain('<li>CISA KEV: known exploited</li>');
      expect(ticket!.content).toContain('overflow &quot;quote&quot; &amp; &lt;b&gt;');
      expect(ticket!.time_to_resolve).toBe('2031-05-01 12:00:00');
      expect(glpi.itemTickets).toEqual([
        { id: 1, itemtype: 'Computer', items_id: 12, tickets_id: ticket!.id },
      ]);

      // update: same ticket, link not duplicated
      await handle.executeUpdate(upsertUpdate, { args: [{ ...unit, priority: 'Attend' }] });
      expect(glpi.tickets.get(ticket!.id)).toMatchObject({
        urgency: 4,
        name: '[CTEM Attend] Upgrade openssl to 3.0.8 or later on web-01',
      });
      expect(glpi.itemTickets).toHaveLength(1);
      expect(glpi.tickets.size).toBe(1);

      // followup once per key
      await handle.executeUpdate(commentUpdate, {
        args: ['SLA reminder: half of the window is gone.', 'rem-1'],
      });
      await handle.executeUpdate(commentUpdate, {
        args: ['SLA reminder: half of the window is gone.', 'rem-1'],
      });
      expect(glpi.followupsOf(ticket!.id).filter((c) => c.includes('SLA reminder'))).toHaveLength(1);

      // close on a verified fix, reopen on regression
      await handle.executeUpdate(closeUpdate, { args: ['Verified fixed by scan 42.'] });
      expect(glpi.tickets.get(ticket!.id)!.status).toBe(6);
      expect(glpi.followupsOf(ticket!.id).some((c) => c.includes('Verified fixed by scan 42.'))).toBe(true);
      expect(await handle.executeUpdate(statusUpdate)).toBe('done');
      await handle.executeUpdate(reopenUpdate, { args: ['Scan 57 sees it again.'] });
      expect(glpi.tickets.get(ticket!.id)!.status).toBe(2);

      // every session was closed again
      expect(glpi.sessions.size).toBe(0);
      expect(glpi.killed.length).toBeGreaterThan(5);

      // a technician solves it in GLPI: the poller notices and signals the exposure workflow
      glpi.humanSetStatus(ticket!.id, 5);
      const changes = await eventually(async () => {
        const c = await handle.query(changesQuery);
        return c.length ? c : undefined;
      });
      expect(changes).toEqual([
        expect.objectContaining({
          ticket: expect.objectContaining({ system: 'glpi', key: String(ticket!.id) }),
          status: 'done',
        }),
      ]);
      // later polls do not repeat it
      const pollsBefore = glpi.count('GET', /^\/apirest\.php\/Ticket$/);
      await eventually(() =>
        glpi.count('GET', /^\/apirest\.php\/Ticket$/) >= pollsBefore + 3 ? true : undefined,
      );
      expect(await handle.query(changesQuery)).toHaveLength(1);
      const { rows } = await db.pool.query('select position from ticket_poll_cursors where system = $1', [
        'glpi',
      ]);
      expect(rows[0]?.position).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);

      await handle.signal(finishSignal);
      expect(await handle.result()).toHaveLength(1);
    } finally {
      await poller.terminate('test over');
      worker.shutdown();
      await running;
    }
  });
});
