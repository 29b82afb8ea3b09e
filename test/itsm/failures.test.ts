// How the ticket clients fail: validation errors are non-retryable and carry the server's message,
// 5xx and timeouts are retryable, a long Retry-After becomes Temporal's next retry delay, wrong
// credentials say where to look and never show the secret; plus the wire details the systems
// insist on (encoded-query escaping, paging, sessions closed on failure) and the inbound checks.
import { createHmac } from 'node:crypto';
import { Writable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { FakeJira } from '../fakes/jira.ts';
import { FakeServiceNow } from '../fakes/servicenow.ts';
import { FakeGlpi } from '../fakes/glpi.ts';
import { configuredTicketSystems, createTicketSystem, scopeTickets } from '../../tickets/systems.ts';
import { jira as jiraSystem } from '../../tickets/jira/index.ts';
import { servicenow as serviceNowSystem } from '../../tickets/servicenow/index.ts';
import { glpi as glpiSystem } from '../../tickets/glpi/index.ts';
import { jiraSchema } from '../../tickets/jira/config.ts';
import { serviceNowSchema } from '../../tickets/servicenow/config.ts';
import { glpiSchema } from '../../tickets/glpi/config.ts';
import { encodedQuery, ServiceNowTicketSystem } from '../../tickets/servicenow/client.ts';
import { parseRetryAfter } from '../../tickets/transport.ts';
import { pendingTicketChanges, type InboundTicketChange } from '../../tickets/inbound.ts';
import { commentMarker, externalKeyPrefix } from '../../tickets/content.ts';
import { GlpiTicketSystem } from '../../tickets/glpi/client.ts';
import { JiraTicketSystem } from '../../tickets/jira/client.ts';
import { verifyHubSignature } from '../../bots/webhooks/jira.ts';
import { sameSecret } from '../../bots/webhooks/servicenow.ts';
import { configWith, envSecret, sampleCampaign, silentLog } from './harness.ts';
import { resolveSecret } from '../../runtime/config.ts';
import { parseConfig, type Config } from '../../domain/config.ts';

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApplicationFailure) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe('ticket clients under failure', () => {
  let db: TestDatabase;
  const jira = new FakeJira({
    email: 'ctem@example.com',
    apiToken: 'right-token',
    accessToken: 'oauth-access-token',
    projects: ['SEC'],
  });
  const sn = new FakeServiceNow({ user: 'ctem', password: 'sn-pw', token: 'sn-bearer' });
  const glpi = new FakeGlpi({ appToken: 'app', userToken: 'user', computers: [] });

  beforeAll(async () => {
    [db] = await Promise.all([testDatabase(), jira.start(), sn.start(), glpi.start()]);
  });
  afterAll(async () => {
    await Promise.all([jira.close(), sn.close(), glpi.close()]);
  });

  const deps = (config: Config, log = silentLog) => ({ pool: db.pool, log, baseDir: process.cwd(), config });
  const jiraCfg = (extra: Record<string, unknown> = {}) =>
    jiraSchema.parse({
      url: jira.url,
      auth: { email: 'ctem@example.com', apiToken: envSecret('right-token') },
      project: 'SEC',
      ...extra,
    });
  const snCfg = (extra: Record<string, unknown> = {}) =>
    serviceNowSchema.parse({
      url: sn.url,
      auth: { username: 'ctem', password: envSecret('sn-pw') },
      ...extra,
    });
  const glpiCfg = (extra: Record<string, unknown> = {}) =>
    glpiSchema.parse({
      url: `${glpi.url}/apirest.php`,
      appToken: envSecret('app'),
      userToken: envSecret('user'),
      ...extra,
    });

  it('turns a Jira validation error into a non-retryable failure with the server message', async () => {
    const system = createTicketSystem(
      jiraSystem,
      jiraCfg({ priorities: { Act: 'Urgentissimo' } }),
      deps(configWith({})),
    );
    const campaign = sampleCampaign();
    const failure = await failureOf(system.upsert(campaign));
    expect(failure.nonRetryable).toBe(true);
    expect(failure.type).toBe('TicketRequestRejected');
    expect(failure.message).toContain(
      "jira create issue failed with HTTP 400: priority: Specify a valid priority; 'Urgentissimo' is not one.",
    );
    // Refused means not created: the next try searches once, it does not wait out the index lag.
    const attempts = await db.pool.query('select 1 from ticket_create_attempts where group_key = $1', [
      campaign.id,
    ]);
    expect(attempts.rowCount).toBe(0);
  });

  it('turns a ServiceNow data-policy refusal into a non-retryable failure with its detail', async () => {
    const system = createTicketSystem(serviceNowSystem, snCfg({ closeCode: '' }), deps(configWith({})));
    const ref = await system.upsert(sampleCampaign());
    const failure = await failureOf(system.close(ref, 'Verified fixed.'));
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain('Data Policy Exception');
    expect(failure.message).toContain('Resolution code, Resolution notes');
    // the ledger is not left saying "done" for a ticket that is not
    const { rows } = await db.pool.query(
      'select last_status from tickets where system = $1 and ticket_key = $2',
      ['servicenow', ref.key],
    );
    expect(rows).toEqual([{ last_status: 'open' }]);
  });

  it('retries 5xx and timeouts, and hands a long Retry-After to Temporal as the next retry delay', async () => {
    const system = createTicketSystem(
      serviceNowSystem,
      snCfg({ timeout: '1s', maxRetryAfter: '5s' }),
      deps(configWith({})),
    );
    sn.failOnce((r) => r.method === 'GET', {
      status: 503,
      body: { error: { message: 'Service Unavailable' }, status: 'failure' },
    });
    const unavailable = await failureOf(system.upsert(sampleCampaign()));
    expect(unavailable.nonRetryable).toBe(false);
    expect(unavailable.type).toBe('TicketSystemUnavailable');
    expect(unavailable.message).toContain('HTTP 503: Service Unavailable');

    sn.delayOnce((r) => r.method === 'GET', 2500);
    const slow = await failureOf(system.upsert(sampleCampaign()));
    expect(slow.nonRetryable).toBe(false);
    expect(slow.message).toContain('no answer within the timeout (1000 ms)');

    sn.rateLimitOnce((r) => r.method === 'GET', '120');
    const limited = await failureOf(system.upsert(sampleCampaign()));
    expect(limited.nonRetryable).toBe(false);
    expect(limited.type).toBe('TicketRateLimited');
    expect(limited.nextRetryDelay).toBe(120_000);

    expect(parseRetryAfter('7')).toBe(7000);
    expect(parseRetryAfter(new Date(Date.now() + 30_000).toUTCString())).toBeGreaterThan(25_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
  });

  it('maps remote statuses by the configured category: Jira status category, ServiceNow state, GLPI status', async () => {
    const config = configWith({});
    // Jira: this site counts "In Progress" (category indeterminate) as done for ctem.
    const custom = createTicketSystem(
      jiraSystem,
      jiraCfg({ statusCategories: { indeterminate: 'done' } }),
      deps(config),
    );
    const plain = createTicketSystem(jiraSystem, jiraCfg(), deps(config));
    const jRef = await custom.upsert(sampleCampaign());
    expect(await custom.status(jRef)).toBe('open');
    await jira.humanTransition(jRef.key, 'In Progress');
    expect(await custom.status(jRef)).toBe('done');
    expect(await plain.status(jRef)).toBe('in-progress');
    const hook = new JiraTicketSystem(jiraCfg({ statusCategories: { indeterminate: 'done' } }), {
      readSecret: () => 'unused',
      baseDir: process.cwd(),
    });
    // The webhook's issue status is read with the same mapping.
    expect(hook.categoryOfStatus({ name: 'Code Review', statusCategory: { key: 'indeterminate' } })).toEqual({
      category: 'done',
      remote: 'Code Review',
    });

    // ServiceNow: state 3 (On Hold) counted as open instead of in progress.
    const snStates = { '1': 'open', '2': 'in-progress', '3': 'open', '6': 'done', '7': 'done' };
    const sCustom = createTicketSystem(serviceNowSystem, snCfg({ states: snStates }), deps(config));
    const sRef = await sCustom.upsert(sampleCampaign());
    sn.records.get(sRef.key)!.state = '3';
    expect(await sCustom.status(sRef)).toBe('open');
    expect(await createTicketSystem(serviceNowSystem, snCfg(), deps(config)).status(sRef)).toBe(
      'in-progress',
    );

    // GLPI: status 4 (pending) counted as done.
    const glpiStatuses = {
      '1': 'open',
      '2': 'in-progress',
      '3': 'in-progress',
      '4': 'done',
      '5': 'done',
      '6': 'done',
    };
    const gCustom = createTicketSystem(glpiSystem, glpiCfg({ statuses: glpiStatuses }), deps(config));
    const gRef = await gCustom.upsert(sampleCampaign());
    glpi.humanSetStatus(Number(gRef.key), 4);
    expect(await gCustom.status(gRef)).toBe('done');
    expect(await createTicketSystem(glpiSystem, glpiCfg(), deps(config)).status(gRef)).toBe('in-progress');
  });

  it('does not take our own close for a person reopening when a poll read the ticket just before it', async () => {
    const system = createTicketSystem(serviceNowSystem, snCfg(), deps(configWith({})));
    const ref = await system.upsert(sampleCampaign());
    const clock = async () =>
      (await db.pool.query<{ at: Date }>('select clock_timestamp() as at')).rows[0]!.at;
    // A poll reads the incident still open; then we resolve it; then the poll compares.
    const readStartedAt = await clock();
    const stale: InboundTicketChange = {
      system: 'servicenow',
      key: ref.key,
      category: 'open',
      remote: '1',
      via: 'poll',
    };
    await system.close(ref, 'Verified fixed by scan 70.');
    expect(await pendingTicketChanges(db.pool, [stale], new Date(), readStartedAt)).toEqual([]);
    // Without the read's start time the stale read would pass for a reopen.
    expect(await pendingTicketChanges(db.pool, [stale])).toHaveLength(1);
    // A read begun after our move compares as usual: a person reopening it is news.
    const reopened = { ...stale, category: 'in-progress' as const, remote: '2' };
    expect(await pendingTicketChanges(db.pool, [reopened], new Date(), await clock())).toHaveLength(1);
  });

  it('says where to fix wrong credentials, and never logs or returns the secret', async () => {
    const lines: string[] = [];
    const log = pino(
      { level: 'trace' },
      new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString()), done()) }),
    );
    const secret = 'wrong-token-3f9a1c';
    const system = createTicketSystem(
      jiraSystem,
      jiraSchema.parse({
        url: jira.url,
        auth: { email: 'ctem@example.com', apiToken: envSecret(secret) },
        project: 'SEC',
      }),
      deps(configWith({}), log),
    );
    const failure = await failureOf(system.upsert(sampleCampaign()));
    expect(failure.nonRetryable).toBe(true);
    expect(failure.type).toBe('TicketAuthFailed');
    expect(failure.message).toContain('HTTP 401');
    expect(failure.message).toContain('check the credentials in integrations.jira');
    const base64 = Buffer.from(`ctem@example.com:${secret}`).toString('base64');
    for (const text of [failure.message, failure.stack ?? '', JSON.stringify(failure), ...lines]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(base64);
    }
    // a missing secret names the reference, not a value
    expect(() => resolveSecret('env:CTEM_TEST_NOT_SET_ANYWHERE')).toThrow(
      'the environment variable CTEM_TEST_NOT_SET_ANYWHERE is not set',
    );
  });

  it('authenticates with OAuth bearer tokens too (Jira access token, ServiceNow token)', async () => {
    const j = createTicketSystem(
      jiraSystem,
      jiraSchema.parse({
        url: jira.url,
        auth: { accessToken: envSecret('oauth-access-token') },
        project: 'SEC',
      }),
      deps(configWith({})),
    );
    const ref = await j.upsert(sampleCampaign());
    expect(jira.requests.at(-1)!.headers.authorization).toBe('Bearer oauth-access-token');
    expect(await j.status(ref)).toBe('open');
    const s = createTicketSystem(
      serviceNowSystem,
      serviceNowSchema.parse({ url: sn.url, auth: { token: envSecret('sn-bearer') } }),
      deps(configWith({})),
    );
    const snRef = await s.upsert(sampleCampaign());
    expect(sn.requests.at(-1)!.headers.authorization).toBe('Bearer sn-bearer');
    expect(await s.status(snRef)).toBe('open');
  });

  it('escapes ^ in encoded-query values and reads every page with sysparm_offset', async () => {
    expect(
      encodedQuery(
        [
          ['assignment_group', '=', 'A^B=C'],
          ['active', '=', 'true'],
        ],
        'number',
      ),
    ).toBe('assignment_group=A^^B=C^active=true^ORDERBYnumber');
    expect(() => encodedQuery([['bad field', '=', 'x']])).toThrow('not a ServiceNow field name');
    const client = new ServiceNowTicketSystem(snCfg(), {
      readSecret: (r) => resolveSecret(r),
      baseDir: process.cwd(),
    });
    const system = createTicketSystem(
      serviceNowSystem,
      snCfg({ fields: { assignment_group: 'A^B=C' } }),
      deps(configWith({})),
    );
    const target = await system.upsert(sampleCampaign());
    const plain = createTicketSystem(
      serviceNowSystem,
      snCfg({ fields: { assignment_group: 'A' } }),
      deps(configWith({})),
    );
    await plain.upsert(sampleCampaign());
    const found = await client.list(encodedQuery([['assignment_group', '=', 'A^B=C']]), ['sys_id']);
    expect(found.map((r) => r.sys_id)).toEqual([target.key]);
    // without the escape the query would have split into "assignment_group=A" and "B=C"
    expect(sn.requests.at(-1)!.query.get('sysparm_query')).toBe('assignment_group=A^^B=C');

    client.pageSize = 2;
    const before = sn.requests.length;
    const all = await client.list(encodedQuery([['correlation_id', 'STARTSWITH', externalKeyPrefix]]), [
      'sys_id',
    ]);
    expect(all.length).toBe(sn.records.size);
    const offsets = sn.requests.slice(before).map((r) => r.query.get('sysparm_offset'));
    expect(offsets).toEqual(
      Array.from({ length: Math.floor(sn.records.size / 2) + 1 }, (_, i) => String(i * 2)),
    );
  });

  it('pages GLPI followups and Jira comments to find an earlier marker', async () => {
    const g = new GlpiTicketSystem(glpiCfg(), {
      readSecret: (r) => resolveSecret(r),
      baseDir: process.cwd(),
    });
    g.pageSize = 2;
    const gSystem = createTicketSystem(glpiSystem, glpiCfg(), deps(configWith({})));
    const gRef = await gSystem.upsert(sampleCampaign());
    for (let i = 0; i < 5; i++) await gSystem.comment(gRef, `note ${i}`, `k${i}`);
    const before = glpi.requests.length;
    expect(await g.session(() => g.hasComment(gRef, commentMarker('k4')))).toBe(true);
    const ranges = glpi.requests
      .slice(before)
      .filter((r) => r.path.endsWith('/ITILFollowup'))
      .map((r) => r.query.get('range'));
    expect(ranges).toEqual(['0-1', '2-3', '4-5']);
    expect(await g.session(() => g.hasComment(gRef, commentMarker('nope')))).toBe(false);

    const jSystem = createTicketSystem(jiraSystem, jiraCfg(), deps(configWith({})));
    const jRef = await jSystem.upsert(sampleCampaign());
    const issue = jira.issues.get(jRef.key)!;
    for (let i = 0; i < 230; i++)
      issue.comments.push({
        id: String(90000 + i),
        body: { type: 'doc', version: 1, content: [] },
        created: '',
      });
    issue.comments.unshift({
      id: '1',
      created: '',
      body: {
        type: 'doc',
        version: 1,
        content: [
          { type: 'paragraph', content: [{ type: 'text', text: `old [${commentMarker('first')}]` }] },
        ],
      },
    });
    const j = new JiraTicketSystem(jiraCfg(), {
      readSecret: (r) => resolveSecret(r),
      baseDir: process.cwd(),
    });
    const reads = jira.requests.length;
    expect(await j.hasComment(jRef, commentMarker('first'))).toBe(true);
    expect(jira.requests.slice(reads).map((r) => r.query.get('startAt'))).toEqual(['0', '100', '200']);
  });

  it('closes the GLPI session even when a call fails, and reports GLPI errors', async () => {
    const system = createTicketSystem(glpiSystem, glpiCfg(), deps(configWith({})));
    glpi.failOnce((r) => r.method === 'POST' && r.path === '/apirest.php/Ticket', {
      status: 400,
      body: ['ERROR_GLPI_ADD', 'You must fill the category'],
    });
    const failure = await failureOf(system.upsert(sampleCampaign()));
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain(
      'glpi create ticket failed with HTTP 400: ERROR_GLPI_ADD: You must fill the category',
    );
    expect(glpi.sessions.size).toBe(0);

    const wrong = createTicketSystem(
      glpiSystem,
      glpiSchema.parse({
        url: `${glpi.url}/apirest.php`,
        appToken: envSecret('app'),
        userToken: envSecret('nope'),
      }),
      deps(configWith({})),
    );
    const auth = await failureOf(wrong.upsert(sampleCampaign()));
    expect(auth.type).toBe('TicketAuthFailed');
    expect(auth.message).toContain('ERROR_GLPI_LOGIN_USER_TOKEN');
  });

  it('verifies webhook signatures and shared secrets in constant time', () => {
    const body = Buffer.from('{"webhookEvent":"jira:issue_updated"}');
    const good = 'sha256=' + createHmac('sha256', 's3cret').update(body).digest('hex');
    expect(verifyHubSignature(body, 's3cret', good)).toBe(true);
    expect(verifyHubSignature(body, 'other', good)).toBe(false);
    expect(verifyHubSignature(Buffer.from(`${body.toString()} `), 's3cret', good)).toBe(false);
    expect(verifyHubSignature(body, 's3cret', undefined)).toBe(false);
    expect(verifyHubSignature(body, 's3cret', 'sha1=abc')).toBe(false);
    expect(sameSecret('abc', 'abc')).toBe(true);
    expect(sameSecret('abcd', 'abc')).toBe(false);
    expect(sameSecret(undefined, 'abc')).toBe(false);
  });

  it('accepts the example documented in tickets/config.ts', async () => {
    const { readFile } = await import('node:fs/promises');
    const source = await readFile(new URL('../../tickets/config.ts', import.meta.url), 'utf8');
    const yaml = source
      .split('\n')
      .filter((l) => l.startsWith('//   '))
      .map((l) => l.slice(5).replace(/\s+# .*$/, ''))
      .join('\n');
    const config = parseConfig(`version: 1\n${yaml}`);
    expect(configuredTicketSystems(config).map((s) => s.module.name)).toEqual(['jira', 'servicenow', 'glpi']);
    expect(scopeTickets(config, 'production')).toEqual({ system: 'jira', groupBy: 'campaign' });
  });

  it('names the field of every configuration mistake', () => {
    const bad =
      (integrations: Record<string, unknown>, scopes: unknown[] = []) =>
      () => {
        const config = configWith(integrations, scopes);
        configuredTicketSystems(config);
        for (const s of config.scopes) scopeTickets(config, s.name);
      };
    expect(
      bad({
        jira: {
          url: 'https://x.atlassian.net',
          auth: { email: 'a@b', apiToken: 'plain-token' },
          project: 'SEC',
        },
      }),
    ).toThrow('ctem.yaml: integrations.jira.auth.apiToken: must be a secret reference');
    expect(bad({ jira: { url: 'https://x.atlassian.net', auth: { email: 'a@b' }, project: 'SEC' } })).toThrow(
      'ctem.yaml: integrations.jira.auth: give either email and apiToken (basic auth) or accessToken (OAuth 2.0)',
    );
    expect(
      bad({ jira: { url: 'https://x.atlassian.net', auth: { accessToken: 'env:T' }, project: 'sec' } }),
    ).toThrow('ctem.yaml: integrations.jira.project: must be a Jira project key');
    expect(
      bad({
        servicenow: { url: 'https://x.service-now.com', auth: { token: 'env:T' }, states: { open: 'open' } },
      }),
    ).toThrow('ctem.yaml: integrations.servicenow.states.open: must be a state number');
    expect(bad({ glpi: { url: 'glpi.example.com', userToken: 'env:T' } })).toThrow(
      'ctem.yaml: integrations.glpi.url: must be an http(s) URL',
    );
    expect(bad({ glpi: { url: 'https://g/apirest.php', userToken: 'env:T', closeStatus: 9 } })).toThrow(
      'ctem.yaml: integrations.glpi.closeStatus',
    );
    expect(bad({}, [{ name: 'prod', tickets: { system: 'jira' } }])).toThrow(
      'ctem.yaml: scopes[0].tickets.system: "jira" is not configured; add integrations.jira',
    );
    expect(
      bad({ glpi: { url: 'https://g/apirest.php', userToken: 'env:T' } }, [
        { name: 'prod', tickets: { system: 'glpi', groupBy: 'team' } },
      ]),
    ).toThrow('ctem.yaml: scopes[0].tickets.groupBy');
    expect(
      bad({
        jira: {
          url: 'https://x.atlassian.net',
          auth: { accessToken: 'env:T' },
          project: 'SEC',
          textLimit: 40_000,
        },
      }),
    ).toThrow('ctem.yaml: integrations.jira.textLimit');
  });

  it('reads groupBy "unit", the default of earlier releases (one fix on one asset), as campaign, and defaults to campaign', () => {
    const glpiSection = { url: 'https://g/apirest.php', userToken: 'env:T' };
    const config = configWith({ glpi: glpiSection }, [
      { name: 'old', tickets: { system: 'glpi', groupBy: 'unit' } },
      { name: 'plain', tickets: { system: 'glpi' } },
      { name: 'hosts', tickets: { system: 'glpi', groupBy: 'asset' } },
    ]);
    expect(scopeTickets(config, 'old')).toEqual({ system: 'glpi', groupBy: 'campaign' });
    expect(scopeTickets(config, 'plain')).toEqual({ system: 'glpi', groupBy: 'campaign' });
    expect(scopeTickets(config, 'hosts')).toEqual({ system: 'glpi', groupBy: 'asset' });
  });
});
