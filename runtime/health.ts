import { randomUUID } from 'node:crypto';
import type { LoadedConfig } from './config.ts';
import type { StackInfo } from './stackInfo.ts';
import { createPool } from './pool.ts';

export interface PartHealth {
  part: 'postgresql' | 'temporal' | 'worker' | 'http';
  ok: boolean;
  detail: string;
}

/** Check each part of a deployment with a real round trip, not just an open port. */
export async function checkHealth(
  loaded: LoadedConfig,
  stack: StackInfo | undefined,
  databaseUrl: string | undefined,
): Promise<PartHealth[]> {
  const parts: PartHealth[] = [];
  const address = loaded.config.temporal.address ?? stack?.temporal.address;
  // The Temporal client takes a while to load: only when there is a Temporal to ask, and meanwhile
  // PostgreSQL is asked.
  const temporalModules = address
    ? Promise.all([import('@temporalio/client'), import('./temporalConnection.ts')])
    : undefined;

  if (!databaseUrl)
    parts.push({
      part: 'postgresql',
      ok: false,
      detail: 'not running (start `ctem up`, or set DATABASE_URL)',
    });
  else {
    const pool = createPool(databaseUrl, 1);
    try {
      const { rows } = await pool.query<{ version: number | null }>(
        'select max(version) as version from schema_migrations',
      );
      parts.push({
        part: 'postgresql',
        ok: true,
        detail: `reachable, schema version ${rows[0]?.version ?? 0}`,
      });
    } catch (err) {
      parts.push({ part: 'postgresql', ok: false, detail: (err as Error).message });
    } finally {
      await pool.end();
    }
  }

  const namespace = loaded.config.temporal.namespace;
  if (!address || !temporalModules) {
    parts.push({
      part: 'temporal',
      ok: false,
      detail: 'not running (start `ctem up`, or set temporal.address)',
    });
    parts.push({ part: 'worker', ok: false, detail: 'no Temporal to poll' });
  } else {
    const [{ Client, WorkflowFailedError }, { connectClient }] = await temporalModules;
    let connection: Awaited<ReturnType<typeof connectClient>> | undefined;
    try {
      connection = await connectClient(loaded.config, address, loaded.baseDir);
      await connection.workflowService.describeNamespace({ namespace });
      parts.push({ part: 'temporal', ok: true, detail: `${address}, namespace ${namespace}` });
      const client = new Client({ connection, namespace });
      const taskQueue = loaded.config.temporal.taskQueue;
      try {
        const result = await client.workflow.execute('healthProbe', {
          taskQueue,
          workflowId: `health-probe-${randomUUID()}`,
          args: [randomUUID()],
          workflowExecutionTimeout: '10s',
        });
        const r = result as { worker: string };
        parts.push({ part: 'worker', ok: true, detail: `task queue ${taskQueue} served by ${r.worker}` });
      } catch (err) {
        const why =
          err instanceof WorkflowFailedError ? 'no worker answered within 10 s' : (err as Error).message;
        parts.push({ part: 'worker', ok: false, detail: `task queue ${taskQueue}: ${why}` });
      }
    } catch (err) {
      parts.push({ part: 'temporal', ok: false, detail: `${address}: ${(err as Error).message}` });
      parts.push({ part: 'worker', ok: false, detail: 'no Temporal to poll' });
    } finally {
      await connection?.close();
    }
  }

  if (!stack) parts.push({ part: 'http', ok: false, detail: 'no `ctem up` running from this CTEM_HOME' });
  else {
    const url = `http://${stack.http.host}:${stack.http.port}/healthz`;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
      parts.push({ part: 'http', ok: res.ok, detail: `${url} answered ${res.status}` });
    } catch (err) {
      parts.push({ part: 'http', ok: false, detail: `${url}: ${(err as Error).message}` });
    }
  }
  return parts;
}
