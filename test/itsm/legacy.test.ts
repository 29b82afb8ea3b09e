// Tickets filed by earlier releases carry the key "ctem-ru-…" (per remediation unit); new ones
// "ctem-cmp-…". The ledger records each ticket's key, so a group whose row holds an old key is
// still found by it — also after a crash between that release's create and its record — and keeps
// it; the pollers read tickets under both prefixes.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { FakeServiceNow } from '../fakes/servicenow.ts';
import { externalKeyFor } from '../../tickets/content.ts';
import { createTicketSystem } from '../../tickets/systems.ts';
import { servicenow as serviceNowSystem } from '../../tickets/servicenow/index.ts';
import { serviceNowSchema } from '../../tickets/servicenow/config.ts';
import { ServiceNowTicketSystem } from '../../tickets/servicenow/client.ts';
import { resolveSecret } from '../../runtime/config.ts';
import { envSecret, hostName, seedCampaign, silentLog, ticketScopeConfig } from './harness.ts';

/** The key the release before campaigns wrote on a ticket. */
const legacyKey = (groupKey: string) =>
  `ctem-ru-${createHash('sha256').update(groupKey).digest('hex').slice(0, 24)}`;

describe('tickets filed before campaigns', () => {
  let db: TestDatabase;
  const sn = new FakeServiceNow({ user: 'ctem', password: 'pw' });

  beforeAll(async () => {
    [db] = await Promise.all([testDatabase(), sn.start()]);
  });
  afterAll(async () => {
    await sn.close();
  });

  it('finds a ticket under the key its row records, keeps that key, and polls both prefixes', async () => {
    const scope = hostName('legacy');
    const section = { url: sn.url, auth: { username: 'ctem', password: envSecret('pw') } };
    // Per exposure: the group keys are the same before and after campaigns.
    const config = ticketScopeConfig({ scope, system: 'servicenow', section, groupBy: 'exposure' });
    const system = createTicketSystem(serviceNowSystem, serviceNowSchema.parse(section), {
      pool: db.pool,
      log: silentLog,
      baseDir: process.cwd(),
      config,
    });
    const seeded = await seedCampaign(db.pool, config, {
      scope,
      hosts: [{ host: hostName('web'), weaknesses: ['CVE-2023-0286'] }],
    });
    const group = `exposure:${seeded.ids[0]}`;
    const old = legacyKey(group);
    // The earlier release sent the create and died before recording it: the ticket exists with the
    // old key, the ledger has the row and the attempt, no ticket key.
    const created = await fetch(`${sn.url}/api/now/table/incident`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Basic ${Buffer.from('ctem:pw').toString('base64')}`,
      },
      body: JSON.stringify({ short_description: 'old', description: 'old', correlation_id: old }),
    });
    const sysId = ((await created.json()) as { result: { sys_id: string } }).result.sys_id;
    await db.pool.query(
      `insert into tickets (system, group_key, group_by, external_key, scope) values ('servicenow', $1, 'exposure', $2, $3)`,
      [group, old, scope],
    );
    await db.pool.query(`insert into ticket_create_attempts (system, group_key) values ('servicenow', $1)`, [
      group,
    ]);

    const ref = await system.upsert(seeded.summary);
    expect(ref.key).toBe(sysId);
    expect(sn.byCorrelation(old)).toHaveLength(1);
    expect(sn.byCorrelation(externalKeyFor(group))).toEqual([]);
    expect(sn.records.get(sysId)).toMatchObject({
      correlation_id: old,
      short_description: `[CTEM Act] Upgrade openssl to 3.0.8 or later on ${seeded.summary.exposures[0]!.asset}`,
    });
    expect(sn.records.get(sysId)!.description).toContain(`ctem campaign ${group} · ${old}`);
    const { rows } = await db.pool.query(
      'select ticket_key, external_key from tickets where system = $1 and group_key = $2',
      ['servicenow', group],
    );
    expect(rows).toEqual([{ ticket_key: sysId, external_key: old }]);

    // An exposure joining the campaign now gets a ticket under the new key; the poller reads both.
    const fresh = await seedCampaign(db.pool, config, {
      scope,
      hosts: [{ host: hostName('db'), weaknesses: ['CVE-2024-0727'] }],
    });
    expect(fresh.campaignId).toBe(seeded.campaignId);
    await system.upsert(fresh.summary);
    const newKey = (
      await db.pool.query<{ ticket_key: string }>(
        'select ticket_key from tickets where system = $1 and group_key = $2',
        ['servicenow', `exposure:${fresh.ids[0]}`],
      )
    ).rows[0]!.ticket_key;
    expect(sn.records.get(newKey)!.correlation_id).toBe(externalKeyFor(`exposure:${fresh.ids[0]}`));
    expect(sn.records.get(sysId)!.correlation_id).toBe(old);
    const reader = new ServiceNowTicketSystem(serviceNowSchema.parse(section), {
      readSecret: (r) => resolveSecret(r),
      baseDir: process.cwd(),
    });
    const { changes } = await reader.changedSince(undefined);
    expect(changes.map((ch) => ch.key)).toEqual(expect.arrayContaining([sysId, newKey]));
  });
});
