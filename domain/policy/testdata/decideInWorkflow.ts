// A workflow that runs the policy inside Temporal's deterministic sandbox (used by sandbox.test.ts).
import { decidePriority, type PriorityFacts } from '../decide.ts';
import { parsePolicy } from '../schema.ts';

export async function decideInWorkflow(
  policyText: string,
  facts: PriorityFacts,
  nowIso: string,
): Promise<{ summary: string; hash: string; dueAt: string }> {
  const policy = parsePolicy(policyText, 'policies/default.yaml');
  const d = decidePriority(policy, facts, new Date(nowIso));
  return { summary: d.summary, hash: d.policy.hash, dueAt: d.dueAt };
}
