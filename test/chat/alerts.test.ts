// Scope alert rules: a new exposure over the scope's threshold, an SLA deadline passing (the real
// workflow's ladder breaching a 3-second window), an asset on an end-of-life system — each an
// immediate message to the scope's channel, once. Also: the SLA ladder's escalation reaching the
// owner (in the thread of the campaign's message), the manager and the channel through the Slack
// notifier.
import { beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import {
  ScopeAlerts,
  builtInEndOfLife,
  contextualCvssFromReasons,
  endOfLifeOf,
  thresholdReasons,
} from '../../chat/alerts.ts';
import { view } from '../lifecycle/support.ts';
import { TEAMS_CHANNEL, chatWorld, until, waitForSlackMessage, type ChatWorld } from './support.ts';

let world: ChatWorld;
let alerts: ScopeAlerts;
beforeAll(async () => {
  world = await chatWorld({
    extraScopeYaml: `    alerts: { newExposure: { priority: [Act], kev: true }, endOfLife: true }`,
    extraScopesYaml: `
  - name: fast
    roles: { owner: [olivia], approver: [adam], securityLead: [lena], ciso: [cyrus] }
    channel: { slack: C0FAST }
    notifications: { urgent: { priority: [Act, Attend, Track*, Track] }, escalationWindow: 0s }
    lifecycle:
      sla: { act: 3s, attend: 3s, track*: 3s, track: 3s }
    alerts: { slaBreached: true }`,
  });
  alerts = new ScopeAlerts({
    config: world.config,
    pool: world.db.pool,
    runtime: world.bots.runtime,
    log: pino({ level: 'silent' }),
  });
  // The first pass starts reading the audit log from its end: history does not alert.
  await alerts.runOnce();
});

const alertPosts = (channel: string, text: string) =>
  world.slack
    .callsTo('chat.postMessage')
    .filter((c) => c.args.channel === channel && JSON.stringify(c.args).includes(text));

describe('scope alerts', () => {
  it('alerts the scope channel (Slack and Teams) when a new exposure is Act or in KEV, once; not for others', async () => {
    const [act] = await world.exposures({
      weaknesses: ['CVE-2099-6001'],
      exploited: true,
      host: 'alert-act',
    });
    const [quiet] = await world.exposures({ weaknesses: ['CVE-2099-6002'], host: 'alert-quiet' });
    expect((await view(world.temporal.client, world.db.pool, act!)).priority).toBe('Act');
    expect((await view(world.temporal.client, world.db.pool, quiet!)).priority).not.toBe('Act');
    const sent = await alerts.runOnce();
    expect(sent).toBeGreaterThanOrEqual(1);
    const slack = alertPosts('C0PROD', 'New Act exposure in prod: CVE-2099-6001 on alert-act');
    expect(slack).toHaveLength(1);
    expect(JSON.stringify(slack[0]!.args.blocks)).toContain('The policy decided Act.');
    expect(alertPosts('C0PROD', 'CVE-2099-6002')).toHaveLength(0);
    await until(
      'the Teams channel alert',
      () =>
        world.connector.calls.find(
          (c) => c.conversationId === TEAMS_CHANNEL && JSON.stringify(c.activity).includes('CVE-2099-6001'),
        ),
      (c) => c !== undefined,
    );
    await alerts.runOnce();
    expect(alertPosts('C0PROD', 'CVE-2099-6001')).toHaveLength(1);
  });

  it('alerts on a new exposure in the KEV catalog', async () => {
    const { rows } = await world.db.pool.query<{ id: number }>(
      `insert into feed_runs (feed, source, status) values ('kev', 'test', 'succeeded') returning id`,
    );
    await world.db.pool.query(
      `insert into kev_entries (cve, vendor_project, product, vulnerability_name, date_added, valid_from, run_id)
       values ('CVE-2099-6101', 'Acme', 'Widget', 'Acme Widget RCE', '2099-01-01', now(), $1)`,
      [rows[0]!.id],
    );
    await world.exposures({ weaknesses: ['CVE-2099-6101'], host: 'alert-kev' });
    await alerts.runOnce();
    const posts = alertPosts('C0PROD', 'CVE-2099-6101');
    expect(posts).toHaveLength(1);
    expect(JSON.stringify(posts[0]!.args.blocks)).toContain(
      'It is in the CISA Known Exploited Vulnerabilities catalog.',
    );
  });

  it('alerts on an asset running an end-of-life system, once per asset and OS', async () => {
    await world.db.pool.query(
      `insert into assets (identity_key, kind, hostname, os, scope) values ('host:legacy-dc', 'host', 'legacy-dc', 'Microsoft Windows Server 2012 R2 Standard', 'prod'),
                                                                           ('host:modern-db', 'host', 'modern-db', 'Ubuntu 24.04.1 LTS', 'prod')`,
    );
    await alerts.runOnce();
    const posts = alertPosts('C0PROD', 'End-of-life system in prod: legacy-dc runs Windows Server 2012');
    expect(posts).toHaveLength(1);
    expect(alertPosts('C0PROD', 'modern-db')).toHaveLength(0);
    await alerts.runOnce();
    expect(alertPosts('C0PROD', 'legacy-dc')).toHaveLength(1);
  });

  it('when the SLA deadline passes: the ladder escalates to owner, manager and channel, and the scope alert fires', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-6201'], scope: 'fast', host: 'alert-sla' });
    await until(
      'SLA breach recorded',
      () => view(world.temporal.client, world.db.pool, id!),
      (v) => v.slaBreachedAt !== undefined,
      20_000,
    );
    // The ladder's 100 % step: owner, channel and manager (default ladder), through the Slack
    // notifier; the owner hears it in the thread of the campaign's message, the others directly
    // (the scope's escalation window is 0).
    const original = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-6201');
    const escalations = await until(
      'the escalation to owner, manager and channel',
      () =>
        world.slack
          .callsTo('chat.postMessage')
          .filter(
            (c) =>
              JSON.stringify(c.args).includes('Escalation (level 1)') &&
              JSON.stringify(c.args).includes('alert-sla'),
          ),
      (calls) => calls.length >= 3,
    );
    expect(escalations.map((c) => String(c.args.channel)).sort()).toEqual(['C0FAST', 'D0OLIVIA', 'U0MONA']);
    expect(escalations.find((c) => c.args.channel === 'D0OLIVIA')!.args.thread_ts).toBe(original.ts);
    expect(escalations.filter((c) => c.args.channel !== 'D0OLIVIA').map((c) => c.args.thread_ts)).toEqual([
      undefined,
      undefined,
    ]);
    await until(
      'the breach in the read model',
      async () =>
        (await world.db.pool.query(`select sla_breached_at from exposures where id = $1`, [id])).rows[0],
      (r) => r?.sla_breached_at !== null,
    );
    await alerts.runOnce();
    expect(alertPosts('C0FAST', 'SLA deadline passed in fast: CVE-2099-6201 on alert-sla')).toHaveLength(1);
    await alerts.runOnce();
    expect(alertPosts('C0FAST', 'SLA deadline passed')).toHaveLength(1);
  });
});

describe('alert rules, pure', () => {
  it('matches any one criterion of the threshold and says which', () => {
    const rule = { priority: ['Act' as const], kev: true, contextualCvssAtLeast: 9 };
    expect(thresholdReasons(rule, { priority: 'Attend', kev: false, contextualCvss: 7.5 })).toEqual([]);
    expect(thresholdReasons(rule, { priority: 'Attend', kev: false, contextualCvss: 9.1 })).toEqual([
      'Its contextual CVSS is 9.1 (threshold 9).',
    ]);
    expect(thresholdReasons(rule, { priority: 'Act', kev: true, contextualCvss: null })).toHaveLength(2);
  });

  it('reads the contextual CVSS score the policy wrote into the reasons', async () => {
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-6301'], host: 'alert-cvss' });
    const { rows } = await world.db.pool.query<{ reasons: unknown }>(
      'select reasons from exposures where id = $1',
      [id],
    );
    const score = contextualCvssFromReasons(rows[0]!.reasons);
    expect(score).not.toBeNull();
    expect(score!).toBeGreaterThan(0);
    expect(score!).toBeLessThanOrEqual(10);
  });

  it('knows end-of-life systems by name and date', () => {
    const at = Date.parse('2025-01-01T00:00:00Z');
    expect(endOfLifeOf('CentOS Linux release 7.9.2009 (Core)', builtInEndOfLife, at)?.name).toBe(
      'CentOS Linux 5-8',
    );
    expect(endOfLifeOf('Ubuntu 18.04.6 LTS', builtInEndOfLife, at)?.name).toBe('Ubuntu 18.04 or older');
    expect(endOfLifeOf('Ubuntu 22.04.4 LTS', builtInEndOfLife, at)).toBeUndefined();
    expect(endOfLifeOf('Debian GNU/Linux 12 (bookworm)', builtInEndOfLife, at)).toBeUndefined();
    expect(endOfLifeOf('Microsoft Windows Server 2019', builtInEndOfLife, at)).toBeUndefined();
    expect(
      endOfLifeOf('Microsoft Windows Server 2012 R2', builtInEndOfLife, Date.parse('2023-01-01')),
    ).toBeUndefined();
  });
});
