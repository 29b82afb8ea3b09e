// scopes[].tickets.groupBy: one ticket per campaign by default (one fix for one owner across its
// hosts), or per exposure, per asset, or per package. A shared ticket closes only when every exposure
// on it is closed. The campaigns are filed as dispatch files them (lifecycle/campaigns.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { FakeServiceNow } from '../fakes/servicenow.ts';
import { createTicketSystem, scopeTickets } from '../../tickets/systems.ts';
import { servicenow as serviceNowSystem } from '../../tickets/servicenow/index.ts';
import { serviceNowSchema } from '../../tickets/servicenow/config.ts';
import { mergeParts } from '../../tickets/grouping.ts';
import {
  envSecret,
  hostName,
  sampleCampaign,
  seedCampaign,
  setStates,
  silentLog,
  ticketScopeConfig,
} from './harness.ts';

describe('grouping exposures into tickets', () => {
  let db: TestDatabase;
  const sn = new FakeServiceNow({ user: 'ctem', password: 'pw' });

  beforeAll(async () => {
    [db] = await Promise.all([testDatabase(), sn.start()]);
  });
  afterAll(async () => {
    await sn.close();
  });

  function scopeWith(groupBy?: string) {
    const scope = hostName(`g-${groupBy ?? 'default'}`);
    const section = { url: sn.url, auth: { username: 'ctem', password: envSecret('pw') } };
    const config = ticketScopeConfig({
      scope,
      system: 'servicenow',
      section,
      ...(groupBy ? { groupBy } : {}),
    });
    const system = createTicketSystem(serviceNowSystem, serviceNowSchema.parse(section), {
      pool: db.pool,
      log: silentLog,
      baseDir: process.cwd(),
      config,
    });
    return { scope, config, system };
  }

  const incident = (key: string) => sn.records.get(key)!;
  const groupsOf = async (campaignId: string) =>
    (
      await db.pool.query<{ group_key: string; group_by: string; ticket_key: string }>(
        `select t.group_key, t.group_by, t.ticket_key from tickets t join ticket_units u using (system, group_key)
          where u.campaign_id = $1 order by t.group_key`,
        [campaignId],
      )
    ).rows;

  it('files one ticket per campaign by default, listing every host of the fix', async () => {
    const { scope, config, system } = scopeWith();
    const [web, dbHost] = [hostName('web'), hostName('db')];
    const openssl = await seedCampaign(db.pool, config, {
      scope,
      hosts: [
        { host: web, weaknesses: ['CVE-2023-0286', 'CVE-2022-3602'] },
        { host: dbHost, weaknesses: ['CVE-2023-0286'] },
      ],
    });
    const curl = await seedCampaign(db.pool, config, {
      scope,
      hosts: [{ host: web, assetId: openssl.assetIds[0]!, weaknesses: ['CVE-2023-38545'] }],
      package: { name: 'curl', fixedVersion: '8.4.0' },
    });
    const a = await system.upsert(openssl.summary);
    const b = await system.upsert(curl.summary);
    expect(a.key).not.toBe(b.key);
    expect(incident(a.key).short_description).toBe(
      '[CTEM Act] Upgrade openssl to 3.0.8 or later on 2 assets',
    );
    expect(incident(a.key).description).toContain(
      `- ${web}: 2 open of 2 (Act)\n- ${dbHost}: 1 open of 1 (Act)`,
    );
    expect(incident(b.key).short_description).toBe(`[CTEM Act] Upgrade curl to 8.4.0 or later on ${web}`);
    expect(await groupsOf(openssl.campaignId)).toEqual([
      { group_key: openssl.campaignId, group_by: 'campaign', ticket_key: a.key },
    ]);
  });

  it('reads the old groupBy "unit" as campaign', async () => {
    const { scope, config, system } = scopeWith('unit');
    expect(scopeTickets(config, scope)).toEqual({ system: 'servicenow', groupBy: 'campaign' });
    const seeded = await seedCampaign(db.pool, config, {
      scope,
      hosts: [
        { host: hostName('web'), weaknesses: ['CVE-2023-0286'] },
        { host: hostName('db'), weaknesses: ['CVE-2023-0286'] },
      ],
    });
    const ref = await system.upsert(seeded.summary);
    expect(await groupsOf(seeded.campaignId)).toEqual([
      { group_key: seeded.campaignId, group_by: 'campaign', ticket_key: ref.key },
    ]);
  });

  it('per asset: campaigns on one host share its ticket, which closes only when all its exposures are closed', async () => {
    const { scope, config, system } = scopeWith('asset');
    const [web, dbHost] = [hostName('web'), hostName('db')];
    const openssl = await seedCampaign(db.pool, config, {
      scope,
      hosts: [
        { host: web, weaknesses: ['CVE-2023-0286', 'CVE-2022-3602'] },
        { host: dbHost, weaknesses: ['CVE-2023-0286'] },
      ],
    });
    const curl = await seedCampaign(db.pool, config, {
      scope,
      hosts: [{ host: web, assetId: openssl.assetIds[0]!, weaknesses: ['CVE-2023-38545'] }],
      package: { name: 'curl', fixedVersion: '8.4.0' },
      priority: 'attend',
    });
    const refOpenssl = await system.upsert(openssl.summary);
    const refCurl = await system.upsert(curl.summary);
    const groups = await groupsOf(openssl.campaignId);
    expect(groups.map((g) => g.group_key)).toEqual([
      `asset:${scope}:olivia:${dbHost}`,
      `asset:${scope}:olivia:${web}`,
    ]);
    const webTicket = groups.find((g) => g.group_key.endsWith(web))!.ticket_key;
    const dbTicket = groups.find((g) => g.group_key.endsWith(dbHost))!.ticket_key;
    expect(refCurl.key).toBe(webTicket);
    // The host's ticket says each fix on it, for that host.
    // (The fixes in the order of their campaigns' ids.)
    const title = incident(webTicket).short_description;
    expect(title.startsWith('[CTEM Act] ')).toBe(true);
    expect(title.slice('[CTEM Act] '.length).split('; ').sort()).toEqual([
      `Upgrade curl to 8.4.0 or later on ${web}`,
      `Upgrade openssl to 3.0.8 or later on ${web}`,
    ]);
    for (const key of ['CVE-2023-0286', 'CVE-2022-3602', 'CVE-2023-38545'])
      expect(incident(webTicket).description).toContain(key);
    expect(incident(webTicket).description).toContain(
      'Totals: 3 open of 3 exposures on 1 asset (3 remediating)',
    );
    expect(incident(dbTicket).short_description).toBe(
      `[CTEM Act] Upgrade openssl to 3.0.8 or later on ${dbHost}`,
    );

    // openssl is verified fixed everywhere, curl is not: db's ticket closes, web's stays open and says so.
    await setStates(db.pool, openssl.ids, 'resolved');
    await system.close(refOpenssl, 'openssl verified fixed by scan 42.');
    expect(incident(dbTicket).state).toBe('6');
    expect(incident(webTicket).state).toBe('1');
    expect(
      incident(webTicket)
        .work_notes.map((n) => n.text)
        .join('\n'),
    ).toContain(
      `2 of 3 exposures of this ticket are closed; it stays open until the other one is:\n${curl.ids[0]}`,
    );
    // Then curl is too: web's ticket closes.
    await setStates(db.pool, curl.ids, 'resolved');
    await system.close(refCurl, 'curl verified fixed by scan 43.');
    expect(incident(webTicket)).toMatchObject({ state: '6', close_notes: 'curl verified fixed by scan 43.' });
  });

  it('per fix: campaigns of one package on deb and rpm hosts share one ticket; another package is another', async () => {
    const { scope, config, system } = scopeWith('fix');
    const [web, dbHost] = [hostName('web'), hostName('db')];
    const deb = await seedCampaign(db.pool, config, {
      scope,
      hosts: [{ host: web, weaknesses: ['CVE-2023-0286'] }],
    });
    const rpm = await seedCampaign(db.pool, config, {
      scope,
      hosts: [{ host: dbHost, weaknesses: ['CVE-2023-0286'] }],
      package: { name: 'openssl', fixedVersion: '3.0.9', type: 'rpm' },
    });
    expect(rpm.campaignId).not.toBe(deb.campaignId);
    const a = await system.upsert(deb.summary);
    const b = await system.upsert(rpm.summary);
    expect(b.key).toBe(a.key);
    expect(incident(a.key).short_description).toBe(
      '[CTEM Act] Upgrade openssl to 3.0.9 or later on 2 assets',
    );
    expect(incident(a.key).description).toContain(web);
    expect(incident(a.key).description).toContain(dbHost);
    const curl = await seedCampaign(db.pool, config, {
      scope,
      hosts: [{ host: web, assetId: deb.assetIds[0]!, weaknesses: ['CVE-2023-38545'] }],
      package: { name: 'curl', fixedVersion: '8.4.0' },
    });
    expect((await system.upsert(curl.summary)).key).not.toBe(a.key);
  });

  it('per exposure: a campaign is split into tickets, and close, reopen and comments reach all of them', async () => {
    const { scope, config, system } = scopeWith('exposure');
    const seeded = await seedCampaign(db.pool, config, {
      scope,
      hosts: [
        { host: hostName('web'), weaknesses: ['CVE-2023-0286'] },
        { host: hostName('db'), weaknesses: ['CVE-2023-0286'] },
      ],
    });
    const [first, second] = seeded.ids as [string, string];
    const ref = await system.upsert(seeded.summary);
    const groups = await groupsOf(seeded.campaignId);
    expect(groups.map((g) => g.group_key).sort()).toEqual([`exposure:${first}`, `exposure:${second}`].sort());
    const own = groups.find((g) => g.group_key === `exposure:${first}`)!.ticket_key;
    const sibling = groups.find((g) => g.group_key === `exposure:${second}`)!.ticket_key;
    expect(ref.key).toBe(own);
    // Each says its own host, as one exposure of the campaign.
    const hostOf = (id: string) => seeded.summary.exposures.find((e) => e.id === id)!.asset;
    expect(incident(own).short_description).toBe(
      `[CTEM Act] Upgrade openssl to 3.0.8 or later on ${hostOf(first)}`,
    );
    expect(incident(own).description).not.toContain(hostOf(second));

    await system.comment(ref, 'Escalated to the CISO.', `${seeded.campaignId}:esc-x`);
    for (const key of [own, sibling])
      expect(incident(key).work_notes.some((n) => n.text.includes('Escalated to the CISO.'))).toBe(true);

    await setStates(db.pool, seeded.ids, 'resolved');
    await system.close(ref, 'Verified fixed by scan 42.');
    expect([incident(own).state, incident(sibling).state]).toEqual(['6', '6']);

    // The second comes back: its ticket reopens too.
    await setStates(db.pool, [second], 'reopened');
    await system.reopen(ref, 'Scan 57 sees it again.');
    expect([incident(own).state, incident(sibling).state]).toEqual(['2', '2']);
  });

  it('merges parts into one summary: the most urgent priority, the earliest deadline, every exposure once', () => {
    const a = sampleCampaign({ priority: 'Track', slaDue: '2031-06-01T00:00:00.000Z' });
    const b = sampleCampaign({ priority: 'Act', slaDue: '2031-05-01T00:00:00.000Z' });
    const merged = mergeParts('fix:p:alice:pkg:openssl', [a, b, a]);
    expect(merged).toMatchObject({
      id: 'fix:p:alice:pkg:openssl',
      priority: 'Act',
      slaDue: '2031-05-01T00:00:00.000Z',
      action: 'Upgrade openssl to 3.0.8 or later on 2 assets',
      totals: { exposures: 6, open: 6, assets: 2 },
    });
    expect(merged.exposures).toHaveLength(6);
    const curl = sampleCampaign({ subject: 'curl', action: 'Upgrade curl to 8.4.0 or later on web-01' });
    expect(mergeParts('asset:p:alice:web-01', [a, curl]).action).toBe(
      [a, curl]
        .sort((x, y) => x.id.localeCompare(y.id))
        .map((p) => p.action)
        .join('; '),
    );
  });
});
