// The GLPI poller as `ctem up` starts it: one workflow per polled system, from the production
// workflow bundle, started once however often the stack starts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { FakeGlpi } from '../fakes/glpi.ts';
import { startTicketPollers } from '../../tickets/pollers.ts';
import { ticketPollWorkflowId } from '../../contracts/tickets.ts';
import { configWith, envSecret, eventually } from './harness.ts';

describe('ticket pollers', () => {
  let db: TestDatabase;
  let temporal: TestTemporal;
  const glpi = new FakeGlpi({ appToken: 'app', userToken: 'user' });

  beforeAll(async () => {
    [db, temporal] = await Promise.all([testDatabase(), testTemporal(), glpi.start()]);
  });
  afterAll(async () => {
    await glpi.close();
  });

  it('starts the GLPI poller once and it polls', async () => {
    const config = configWith({
      glpi: {
        url: `${glpi.url}/apirest.php`,
        appToken: envSecret('app'),
        userToken: envSecret('user'),
        pollInterval: '1s',
      },
    });
    const taskQueue = temporal.taskQueue('pollers');
    const worker = await temporal.worker({ taskQueue, pool: db.pool, config });
    await worker.runUntil(async () => {
      expect(await startTicketPollers(temporal.client, config, taskQueue)).toEqual([
        ticketPollWorkflowId('glpi'),
      ]);
      const first = await temporal.client.workflow.getHandle(ticketPollWorkflowId('glpi')).describe();
      await eventually(() => (glpi.count('GET', /^\/apirest\.php\/Ticket$/) >= 2 ? true : undefined));
      // starting the stack again finds the running poller
      await startTicketPollers(temporal.client, config, taskQueue);
      const again = await temporal.client.workflow.getHandle(ticketPollWorkflowId('glpi')).describe();
      expect(again.runId).toBe(first.runId);
      expect(glpi.sessions.size).toBeLessThanOrEqual(1);
      await temporal.client.workflow.getHandle(ticketPollWorkflowId('glpi')).terminate('test over');
    });
    expect(await startTicketPollers(temporal.client, configWith({}), taskQueue)).toEqual([]);
  });
});
