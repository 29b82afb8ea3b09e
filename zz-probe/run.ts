import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, bundleWorkflowCode, Runtime, DefaultLogger } from '@temporalio/worker';
import { startTemporalDevServer } from '../runtime/temporal.ts';
import { freePort } from '../runtime/ports.ts';
import { workflowsEntry } from '../worker/worker.ts';
Runtime.install({ logger: new DefaultLogger('ERROR') });
const t = await startTemporalDevServer({ port: await freePort(), headless: true, logLevel: 'error' });
const client = new Client({ connection: await Connection.connect({ address: t.address }) });
const native = await NativeConnection.connect({ address: t.address });
const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
for (const [name, path, type] of [['trivial', new URL('./trivial.ts', import.meta.url).pathname, 'trivial'], ['exposure', workflowsEntry(), 'exposureWorkflow']] as const) {
  const bundle = await bundleWorkflowCode({ workflowsPath: path, logger: quiet });
  const n = 1000;
  // start all first, then run the worker: measures pure WFT throughput
  const input = JSON.parse(process.env.INPUT ?? '{}');
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => { while (next < n) { const i = next++; await client.workflow.start(type, { taskQueue: `q-${name}`, workflowId: `${name}-${i}`, args: [{ ...input, exposureId: `${i}:X` }] }); } }));
  const worker = await Worker.create({ connection: native, taskQueue: `q-${name}`, workflowBundle: bundle, activities: {}, maxCachedWorkflows: 2000 });
  const t0 = Date.now();
  await worker.runUntil(async () => {
    for (;;) {
      const it = client.workflow.list({ query: `TaskQueue='q-${name}' AND ExecutionStatus='Running'` });
      // count completed first WFT via sampling the last started workflow
      const h = await client.workflow.getHandle(`${name}-${n - 1}`).fetchHistory();
      if ((h.events ?? []).some((e) => e.workflowTaskCompletedEventAttributes)) break;
      void it;
      await new Promise((r) => setTimeout(r, 200));
    }
  });
  console.log(name, Math.round(n / ((Date.now() - t0) / 1000)), 'first WFTs/s');
}
await t.stop();
