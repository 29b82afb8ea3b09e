// The pure rules under the lifecycle: SLA clock and ladder, authorization, admission of decisions,
// campaigns (which fix, whose, on what), and the scope's lifecycle settings with their error messages.
import { describe, expect, it } from 'vitest';
import {
  defaultLadder,
  dueEscalation,
  effectiveDue,
  firedLevelAfterRescore,
  isBreach,
  nextEscalation,
  pauseClock,
  resumeClock,
  startClock,
  stepTime,
  defaultLifecycleRules,
} from '../../domain/sla.ts';
import { authorizationContext, authorizeDecision } from '../../domain/authorization.ts';
import { compareVersions } from '../../domain/versions.ts';
import { campaignAction, campaignId, campaignKeyOf, campaignWorkflowId } from '../../domain/campaign.ts';
import { MAX_DECISION_TEXT, refusal } from '../../domain/decisionAdmission.ts';
import { lifecycleRulesFor, validateLifecycleSettings } from '../../lifecycle/settings.ts';
import { ConfigError, parseConfig } from '../../domain/config.ts';
import { lifecycleConfig } from './support.ts';

const H = 3_600_000;
const D = 24 * H;

describe('the SLA clock and ladder', () => {
  const clock = startClock(0, 10 * D);

  it('places steps in the window and after the deadline', () => {
    expect(defaultLadder.map((s) => stepTime(s, clock))).toEqual([5 * D, 10 * D, 13 * D]);
    expect(defaultLadder.map(isBreach)).toEqual([false, true, true]);
    expect(nextEscalation(defaultLadder, clock, -1)).toMatchObject({ level: 0, atMs: 5 * D });
    expect(nextEscalation(defaultLadder, clock, 2)).toBeUndefined();
  });

  it('shifts everything by the time paused, and fires nothing while paused', () => {
    const paused = pauseClock(clock, 2 * D);
    expect(nextEscalation(defaultLadder, paused, -1)).toBeUndefined();
    expect(dueEscalation(defaultLadder, paused, -1, 20 * D)).toBeUndefined();
    expect(effectiveDue(paused, 5 * D)).toBe(13 * D);
    const resumed = resumeClock(paused, 5 * D);
    expect(resumed.pausedMs).toBe(3 * D);
    expect(stepTime(defaultLadder[0]!, resumed)).toBe(8 * D);
    expect(effectiveDue(resumed, 6 * D)).toBe(13 * D);
  });

  it('fires only the highest overdue step at once', () => {
    expect(dueEscalation(defaultLadder, clock, -1, 4 * D)).toBeUndefined();
    expect(dueEscalation(defaultLadder, clock, -1, 6 * D)?.level).toBe(0);
    expect(dueEscalation(defaultLadder, clock, -1, 11 * D)?.level).toBe(1);
    expect(dueEscalation(defaultLadder, clock, 0, 14 * D)?.level).toBe(2);
  });

  it('re-arms steps a re-score moved into the future', () => {
    const later = { ...clock, dueMs: 40 * D };
    expect(firedLevelAfterRescore(defaultLadder, later, 1, 11 * D)).toBe(-1);
    expect(firedLevelAfterRescore(defaultLadder, later, 1, 25 * D)).toBe(0);
  });
});

describe('authorization', () => {
  const ctx = authorizationContext(lifecycleConfig(), 'prod');
  const act = { priority: 'Act', owner: 'olivia' };
  const by = (personId: string) => ({ personId, via: 'cli' as const });

  it('lets owners and approvers approve, snooze, reassign and mark false positives', () => {
    for (const p of ['olivia', 'adam', 'lena', 'cyrus'])
      expect(authorizeDecision(ctx, { kind: 'approve', actor: by(p) }, act).ok).toBe(true);
    expect(authorizeDecision(ctx, { kind: 'approve', actor: by('pat') }, act)).toEqual({
      ok: false,
      reason:
        'pat holds no role in scope prod; approving a fix needs an owner or an approver or a security lead or the CISO',
    });
  });

  it('needs a security lead or the CISO to accept the risk of an Act exposure, an approver otherwise', () => {
    const d = (p: string) => ({
      kind: 'acceptRisk' as const,
      actor: by(p),
      justification: 'x',
      expires: '2099-01-01',
    });
    expect(authorizeDecision(ctx, d('adam'), act).ok).toBe(false);
    expect(authorizeDecision(ctx, d('lena'), act)).toEqual({ ok: true, as: 'securityLead' });
    expect(authorizeDecision(ctx, d('adam'), { priority: 'Attend' })).toEqual({ ok: true, as: 'approver' });
    expect(authorizeDecision(ctx, d('olivia'), { priority: 'Attend', owner: 'olivia' }).ok).toBe(false);
  });

  it('gives the assignee no rights beyond their roles, and refuses people not in ctem.yaml', () => {
    // pat holds no role in prod: being assigned the exposure does not make pat its owner.
    expect(
      authorizeDecision(
        ctx,
        { kind: 'snooze', actor: by('pat'), until: 'x' },
        { priority: 'Track', owner: 'pat' },
      ).ok,
    ).toBe(false);
    expect(authorizeDecision(ctx, { kind: 'snooze', actor: by('eve'), until: 'x' }, act)).toEqual({
      ok: false,
      reason: 'unknown person "eve": only people listed in ctem.yaml may decide',
    });
  });
});

describe('admission of decisions', () => {
  const ctx = authorizationContext(lifecycleConfig(), 'prod');
  const now = Date.parse('2026-01-01T00:00:00Z');
  const subject = { state: 'awaiting-decision' as const, priority: 'Attend', owner: 'olivia' };
  const by = { personId: 'olivia', via: 'cli' as const };

  it('checks form, then authority, then state', () => {
    expect(
      refusal(
        { kind: 'snooze', actor: by, until: '2026-01-02T00:00:00Z' },
        subject,
        ctx,
        defaultLifecycleRules,
        now,
      ),
    ).toBeUndefined();
    expect(
      refusal(
        { kind: 'snooze', actor: by, until: '2026-03-01T00:00:00Z' },
        subject,
        ctx,
        defaultLifecycleRules,
        now,
      ),
    ).toMatch(/maximum snooze of 30 days/);
    expect(
      refusal(
        { kind: 'approve', actor: by },
        { ...subject, state: 'resolved' },
        ctx,
        defaultLifecycleRules,
        now,
      ),
    ).toMatch(/the exposure is resolved/);
    expect(
      refusal({ kind: 'approve', actor: undefined } as never, subject, ctx, defaultLifecycleRules, now),
    ).toMatch(/names no actor/);
  });

  it('refuses a text too long to keep with the decision, naming the field and the limit', () => {
    const expires = '2026-02-01T00:00:00Z';
    const accept = (justification: string) =>
      refusal(
        { kind: 'acceptRisk', actor: { personId: 'lena', via: 'cli' }, justification, expires },
        subject,
        ctx,
        defaultLifecycleRules,
        now,
      );
    expect(accept('x'.repeat(MAX_DECISION_TEXT))).toBeUndefined();
    expect(accept('x'.repeat(MAX_DECISION_TEXT + 1))).toBe(
      `the justification is ${MAX_DECISION_TEXT + 1} characters long; at most ${MAX_DECISION_TEXT} are kept with a decision (put the rest in the ticket and link it)`,
    );
    expect(
      refusal(
        { kind: 'approve', actor: by, comment: 'y'.repeat(5_000) },
        subject,
        ctx,
        defaultLifecycleRules,
        now,
      ),
    ).toMatch(/^the comment is 5000 characters long/);
    expect(
      refusal(
        { kind: 'markFalsePositive', actor: by, reason: 42 } as never,
        subject,
        ctx,
        defaultLifecycleRules,
        now,
      ),
    ).toBe('reason must be text');
  });
});

describe('campaigns', () => {
  const base = { scope: 'prod', owner: 'olivia', weaknessKey: 'CVE-1' };

  it('groups by the package to upgrade, across assets and CVEs, and asks for the highest fixed version', () => {
    const a = { ...base, package: { name: 'openssl', type: 'deb', fixedVersion: '3.0.7' } };
    const b = {
      ...base,
      weaknessKey: 'CVE-2',
      package: { name: 'openssl', type: 'deb', fixedVersion: '3.0.10' },
    };
    const key = campaignKeyOf(a);
    expect(key).toEqual({ key: 'pkg:deb:openssl', kind: 'package', subject: 'openssl' });
    expect(campaignKeyOf(b)).toEqual(key);
    expect(campaignId('prod', 'olivia', key.key)).toMatch(/^cmp:prod:olivia:[0-9a-f]{12}$/);
    // Another owner or another scope is another campaign.
    expect(campaignId('prod', 'adam', key.key)).not.toBe(campaignId('prod', 'olivia', key.key));
    expect(campaignId('dev', 'olivia', key.key)).not.toBe(campaignId('prod', 'olivia', key.key));
    expect(
      campaignAction(key, [
        { assetName: 'web-01', fixedVersion: '3.0.7' },
        { assetName: 'web-02', fixedVersion: '3.0.10' },
        { assetName: 'web-02', fixedVersion: '3.0.9' },
      ]),
    ).toBe('Upgrade openssl to 3.0.10 or later on 2 assets');
    expect(campaignAction(key, [{ assetName: 'web-01' }])).toBe(
      'Upgrade openssl to a fixed version on web-01',
    );
  });

  it('groups by the advisory a scanner named, by the configuration check, else by the weakness', () => {
    const kb = campaignKeyOf({
      ...base,
      advisoryText: 'Microsoft has released KB5034439 to address this issue.',
    });
    expect(kb).toEqual({ key: 'advisory:KB5034439', kind: 'advisory', subject: 'KB5034439' });
    expect(campaignAction(kb, [{ assetName: 'app-01' }])).toBe('Apply KB5034439 on app-01');
    expect(campaignKeyOf({ ...base, advisoryText: 'see RHSA-2024:0310' }).key).toBe(
      'advisory:RHSA-2024:0310',
    );
    const check = campaignKeyOf({
      ...base,
      weaknessKey: 'AVD-DS-0002@Dockerfile',
      findingKind: 'misconfiguration',
    });
    expect(check).toEqual({ key: 'config:AVD-DS-0002', kind: 'config', subject: 'AVD-DS-0002' });
    expect(
      campaignKeyOf({
        ...base,
        weaknessKey: 'AVD-DS-0002@other/Dockerfile',
        findingKind: 'misconfiguration',
      }),
    ).toEqual(check);
    expect(campaignKeyOf(base)).toEqual({ key: 'weakness:CVE-1', kind: 'weakness', subject: 'CVE-1' });
    expect(campaignAction(campaignKeyOf(base), [{ assetName: 'a' }, { assetName: 'b' }])).toBe(
      'Remediate CVE-1 on 2 assets',
    );
  });

  it('names the workflow of each shard', () => {
    expect(campaignWorkflowId('cmp:prod:olivia:abc')).toBe('campaign-cmp:prod:olivia:abc');
    expect(campaignWorkflowId('cmp:prod:olivia:abc', 2)).toBe('campaign-cmp:prod:olivia:abc~2');
  });

  it('orders versions by their numbers', () => {
    expect(['1.10', '1.9', '1.9.1', '1.2'].sort(compareVersions)).toEqual(['1.2', '1.9', '1.9.1', '1.10']);
  });
});

describe('lifecycle settings', () => {
  it('resolves a scope section over the defaults', () => {
    const rules = lifecycleRulesFor(lifecycleConfig({ actWindow: '2d' }), 'prod');
    expect(rules.maxRiskAcceptanceMs).toBe(90 * D);
    expect(rules.riskExpiryReminderMs).toBe(2_000);
    expect(rules.slaCapMs).toEqual({ Act: 2 * D, Attend: 2 * D, 'Track*': 2 * D, Track: 2 * D });
    expect(rules.ladder).toEqual(defaultLadder);
    expect(lifecycleRulesFor(lifecycleConfig(), 'nowhere')).toEqual(defaultLifecycleRules);
  });

  it('names the field of a mistake', () => {
    const config = parseConfig(`
version: 1
scopes:
  - name: a
  - name: b
    lifecycle:
      ladder:
        - { at: 50, notify: [owner] }
        - { at: 100%, notify: [boss] }
        - { at: 100%, after: 1d, notify: [ciso] }
`);
    try {
      validateLifecycleSettings(config);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const text = (err as Error).message;
      expect(text).toContain(
        'ctem.yaml: scopes[1].lifecycle.ladder[0].at: must be a percentage of the SLA window such as 50%',
      );
      expect(text).toContain('scopes[1].lifecycle.ladder[1].notify[0]');
      expect(text).toContain('scopes[1].lifecycle.ladder[2]: give either at');
    }
  });
});
