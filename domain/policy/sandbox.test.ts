// The policy is pure enough for workflow code: parse, hash and decide inside Temporal's sandbox (no
// Node built-ins, no wall clock) and get exactly what an activity gets.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { testTemporal } from '../../test/support/temporal.ts';
import { decidePriority, type PriorityFacts } from './decide.ts';
import { parsePolicy } from './schema.ts';

const text = readFileSync(path.resolve(import.meta.dirname, '../../policies/default.yaml'), 'utf8');

describe('the policy in workflow code', () => {
  it('decides in the sandbox exactly as outside it', async () => {
    const temporal = await testTemporal();
    const taskQueue = temporal.taskQueue('policy');
    const worker = await Worker.create({
      connection: temporal.nativeConnection,
      taskQueue,
      workflowsPath: path.resolve(import.meta.dirname, 'testdata/decideInWorkflow.ts'),
    });
    const facts: PriorityFacts = {
      weakness: 'CVE-2021-44228',
      kev: { dateAdded: '2021-12-10' },
      epss: { probability: 0.94358, percentile: 0.99962 },
      cvss: { vector: 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H' },
      asset: {
        criticality: 'critical',
        reachability: 'internet',
        requirements: { cr: 'H', ir: 'H', ar: 'M' },
      },
      firstSeen: '2026-11-19T00:00:00Z',
    };
    const now = '2026-11-21T00:00:00.000Z';
    const inside = await worker.runUntil(
      temporal.client.workflow.execute('decideInWorkflow', {
        taskQueue,
        workflowId: `policy-${taskQueue}`,
        args: [text, facts, now],
      }),
    );
    const outside = decidePriority(parsePolicy(text, 'policies/default.yaml'), facts, new Date(now));
    expect(inside).toEqual({ summary: outside.summary, hash: outside.policy.hash, dueAt: outside.dueAt });
    expect(inside.summary).toMatch(/→ Act: fix by 2026-11-22$/);
  }, 60_000);
});
