// Exactly once across a crash: the worker process is SIGKILLed after the ticket system carried out
// the create but before the worker heard back (so before the local record). The retried activity,
// on a new worker, finds the ticket by the external key written on it; one ticket exists, and the
// ledger points at it.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import { FakeJira } from '../fakes/jira.ts';
import { FakeServiceNow } from '../fakes/servicenow.ts';
import { FakeGlpi } from '../fakes/glpi.ts';
import type { FakeTicketServer, FakeRequest } from '../fakes/ticketServer.ts';
import { externalKeyFor } from '../../activities/itsm/content.ts';
import { exposureWorkflowId } from '../../domain/exposure.ts';
import type { Config } from '../../domain/config.ts';
import { bundleTicketWorkflows, configWith, envSecret, sampleUnit, startTicketWorker } from './harness.ts';
import { upsertUpdate } from './workflows.ts';

const crashWorker = path.join(path.dirname(fileURLToPath(import.meta.url)), 'crashWorker.ts');

async function startChildWorker(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', crashWorker], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`crash worker exited early (${code}): ${stderr}`)));
  });
  return child;
}

interface Case {
  system: 'jira' | 'servicenow' | 'glpi';
  fake: () => FakeTicketServer;
  config: () => Config;
  isCreate: (r: Pick<FakeRequest, 'method' | 'path'>) => boolean;
  /** Remote tickets carrying the unit's external key. */
  ticketsFor: (externalKey: string) => string[];
}

describe('a worker killed between the remote create and the local record', () => {
  let db: TestDatabase;
  let temporal: TestTemporal;
  let bundlePath: string;
  const jira = new FakeJira({ email: 'ctem@example.com', apiToken: 'tok', projects: ['SEC'] });
  const sn = new FakeServiceNow({ user: 'ctem', password: 'pw' });
  const glpi = new FakeGlpi({ appToken: 'app', userToken: 'user', computers: [{ id: 3, name: 'web-01' }] });

  beforeAll(async () => {
    [db, temporal, bundlePath] = await Promise.all([
      testDatabase(),
      testTemporal(),
      bundleTicketWorkflows(),
      jira.start(),
      sn.start(),
      glpi.start(),
    ]);
  });
  afterAll(async () => {
    await Promise.all([jira.close(), sn.close(), glpi.close()]);
  });

  const cases: Case[] = [
    {
      system: 'jira',
      fake: () => jira,
      config: () =>
        configWith({
          jira: {
            url: jira.url,
            auth: { email: 'ctem@example.com', apiToken: envSecret('tok') },
            project: 'SEC',
          },
        }),
      isCreate: (r) => r.method === 'POST' && r.path === '/rest/api/3/issue',
      ticketsFor: (key) => jira.withLabel(key).map((i) => i.key),
    },
    {
      system: 'servicenow',
      fake: () => sn,
      config: () =>
        configWith({ servicenow: { url: sn.url, auth: { username: 'ctem', password: envSecret('pw') } } }),
      isCreate: (r) => r.method === 'POST' && r.path === '/api/now/table/incident',
      ticketsFor: (key) => sn.byCorrelation(key).map((r) => r.sys_id),
    },
    {
      system: 'glpi',
      fake: () => glpi,
      config: () =>
        configWith({
          glpi: { url: `${glpi.url}/apirest.php`, appToken: envSecret('app'), userToken: envSecret('user') },
        }),
      isCreate: (r) => r.method === 'POST' && r.path === '/apirest.php/Ticket',
      ticketsFor: (key) => glpi.byExternalId(key).map((t) => String(t.id)),
    },
  ];

  for (const c of cases) {
    it(`${c.system}: the retried activity finds the ticket instead of creating a second one`, async () => {
      const config = c.config();
      const taskQueue = temporal.taskQueue(`crash-${c.system}`);
      const unit = sampleUnit();
      const externalKey = externalKeyFor(unit.id);
      const held = c.fake().holdNextMatching(c.isCreate);

      const child = await startChildWorker({
        CTEM_TEST_TEMPORAL_ADDRESS: inject('temporalAddress'),
        CTEM_TEST_DATABASE_URL: db.url,
        CTEM_TEST_TASK_QUEUE: taskQueue,
        CTEM_TEST_CONFIG: JSON.stringify(config),
        CTEM_TEST_BUNDLE: bundlePath,
      });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const handle = await temporal.client.workflow.start('ticketDrill', {
        taskQueue,
        workflowId: exposureWorkflowId(unit.exposures[0]!.id),
        args: [c.system],
      });
      const upserted = handle.executeUpdate(upsertUpdate, { args: [unit] });

      // The ticket system created the ticket; the worker dies before hearing back.
      await held;
      child.kill('SIGKILL');
      await exited;
      const created = c.ticketsFor(externalKey);
      expect(created).toHaveLength(1);
      const recorded = await db.pool.query(
        'select ticket_key from tickets where system = $1 and group_key = $2',
        [c.system, unit.id],
      );
      expect(recorded.rows.filter((r: { ticket_key: string | null }) => r.ticket_key !== null)).toEqual([]);

      // A new worker takes the retried activity.
      const { worker, running } = await startTicketWorker({
        temporal,
        pool: db.pool,
        config,
        taskQueue,
        bundlePath,
      });
      try {
        const ref = await upserted;
        expect(ref.key).toBe(created[0]);
        expect(c.ticketsFor(externalKey)).toEqual(created);
        const creates = c.fake().requests.filter((r) => c.isCreate(r));
        expect(creates).toHaveLength(1);
        const { rows } = await db.pool.query(
          'select ticket_key from tickets where system = $1 and group_key = $2',
          [c.system, unit.id],
        );
        expect(rows).toEqual([{ ticket_key: created[0] }]);
        const events = await db.pool.query<{ recovered: boolean }>(
          `select (data->>'recoveredAfterCrash')::boolean as recovered from events where type = 'ticket.created' and data->>'key' = $1`,
          [created[0]],
        );
        expect(events.rows.map((r) => r.recovered)).toEqual([true, true]);
        // A second upsert of the same unit is an update of the same ticket.
        await handle.executeUpdate(upsertUpdate, { args: [{ ...unit, priority: 'Attend' }] });
        expect(c.ticketsFor(externalKey)).toEqual(created);
      } finally {
        await handle.terminate('test over');
        worker.shutdown();
        await running;
      }
    }, 120_000);
  }
});
