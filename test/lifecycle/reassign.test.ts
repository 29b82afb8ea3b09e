import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../domain/config.ts';
import { authorizationContext } from '../../domain/authorization.ts';
import { refusal } from '../../domain/decisionAdmission.ts';
import { lifecycleRulesFor } from '../../lifecycle/settings.ts';
import type { Decision } from '../../domain/exposure.ts';

// Reassigning hands an exposure to someone; it must not hand out decision rights (issue 19, defect 2).
const config = parseConfig(
  [
    'version: 1',
    'people:',
    '  - { id: alice, name: Alice }',
    '  - { id: bob, name: Bob }',
    '  - { id: mallory, name: Mallory }',
    'scopes:',
    '  - name: production',
    '    roles: { owner: [alice], approver: [bob] }',
  ].join('\n'),
);
const ctx = authorizationContext(config, 'production');
const rules = lifecycleRulesFor(config, 'production');
const now = Date.parse('2026-12-07T12:00:00Z');
const actor = (personId: string) => ({ personId, via: 'api' as const });

describe('reassigning an exposure', () => {
  it('is refused towards someone who holds no role in the scope', () => {
    const d: Decision = { kind: 'reassign', actor: actor('alice'), to: 'mallory' };
    expect(
      refusal(d, { priority: 'Attend', owner: 'alice', state: 'awaiting-decision' }, ctx, rules, now),
    ).toBe(
      'cannot reassign to mallory: mallory holds no role in scope production; the assignee must be an owner, an approver, a security lead or the CISO there',
    );
    const toBob: Decision = { kind: 'reassign', actor: actor('alice'), to: 'bob' };
    expect(
      refusal(toBob, { priority: 'Attend', owner: 'alice', state: 'awaiting-decision' }, ctx, rules, now),
    ).toBe(undefined);
  });

  it('grants the assignee nothing beyond the roles they hold', () => {
    // An exposure assigned to mallory before this rule (or by editing the record): still no rights.
    const approve: Decision = { kind: 'approve', actor: actor('mallory') };
    expect(
      refusal(approve, { priority: 'Attend', owner: 'mallory', state: 'awaiting-decision' }, ctx, rules, now),
    ).toBe(
      'mallory holds no role in scope production; approving a fix needs an owner or an approver or a security lead or the CISO',
    );
    // bob, an approver assigned the exposure, approves as the approver he is.
    const bobApproves: Decision = { kind: 'approve', actor: actor('bob') };
    expect(
      refusal(bobApproves, { priority: 'Attend', owner: 'bob', state: 'awaiting-decision' }, ctx, rules, now),
    ).toBe(undefined);
  });
});
