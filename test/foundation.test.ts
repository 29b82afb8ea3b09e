import { describe, expect, it } from 'vitest';
import { testDatabase } from './support/db.ts';
import { testTemporal } from './support/temporal.ts';

describe('the foundation, end to end on real servers', () => {
  it('runs a workflow whose activity writes to PostgreSQL', async () => {
    const db = await testDatabase();
    const temporal = await testTemporal();
    const taskQueue = temporal.taskQueue('health');
    const worker = await temporal.worker({ taskQueue, pool: db.pool });
    const result = await worker.runUntil(
      temporal.client.workflow.execute('healthProbe', {
        taskQueue,
        workflowId: `probe-${taskQueue}`,
        args: ['probe-1'],
      }),
    );
    expect((result as { worker: string }).worker).toMatch(/:\d+$/);
    const { rows } = await db.pool.query('select probe_id, worker from worker_heartbeats');
    expect(rows).toEqual([{ probe_id: 'probe-1', worker: (result as { worker: string }).worker }]);
  });

  it('gives each test file a database with every migration applied', async () => {
    const db = await testDatabase();
    const { rows } = await db.pool.query<{ name: string }>(
      'select name from schema_migrations order by version',
    );
    expect(rows.map((r) => r.name)).toContain('001_init');
    await db.pool.query(`insert into events (type) values ('probe')`);
    await expect(db.pool.query('update events set type = $1', ['x'])).rejects.toThrow(/append-only/);
    await expect(db.pool.query(`delete from events`)).rejects.toThrow(/append-only/);
    const { rows: events } = await db.pool.query('select type from events');
    expect(events).toEqual([{ type: 'probe' }]);
  });
});
