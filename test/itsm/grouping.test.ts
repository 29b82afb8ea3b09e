// scopes[].tickets.groupBy: one ticket per remediation unit by default, or per exposure, per asset,
// or per fix across assets. A shared ticket closes only when every exposure on it is closed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { FakeServiceNow } from '../fakes/servicenow.ts';
import { createTicketSystem } from '../../tickets/systems.ts';
import { servicenow as serviceNowSystem } from '../../tickets/servicenow/index.ts';
import { serviceNowSchema } from '../../tickets/servicenow/config.ts';
import { mergeParts } from '../../tickets/grouping.ts';
import type { CampaignSummary } from '../../domain/ports.ts';
import type { ExposureState } from '../../domain/exposure.ts';
import { configWith, envSecret, sampleUnit, silentLog } from './harness.ts';

describe('grouping exposures into tickets', () => {
  let db: TestDatabase;
  const sn = new FakeServiceNow({ user: 'ctem', password: 'pw' });

  beforeAll(async () => {
    [db] = await Promise.all([testDatabase(), sn.start()]);
    await db.pool.query(
      `insert into assets (id, identity_key, kind, hostname) values (1, 'host:web-01', 'host', 'web-01')`,
    );
  });
  afterAll(async () => {
    await sn.close();
  });

  function systemFor(groupBy: 'unit' | 'exposure' | 'asset' | 'fix') {
    const servicenow = { url: sn.url, auth: { username: 'ctem', password: envSecret('pw') } };
    const config = configWith({ servicenow }, [
      { name: `g-${groupBy}`, tickets: { system: 'servicenow', groupBy } },
    ]);
    return createTicketSystem(serviceNowSystem, serviceNowSchema.parse(servicenow), {
      pool: db.pool,
      log: silentLog,
      baseDir: process.cwd(),
      config,
    });
  }

  /** The lifecycle's record of each exposure's state (what "closed" means for a shared ticket). */
  async function setStates(unit: CampaignSummary, state: ExposureState, only?: string[]): Promise<void> {
    for (const e of unit.exposures) {
      if (only && !only.includes(e.id)) continue;
      await db.pool.query(
        `insert into exposures (id, asset_id, vuln_key, state, first_seen, last_seen) values ($1, 1, $2, $3, now(), now())
         on conflict (id) do update set state = excluded.state`,
        // vuln_key is unique per asset in the schema; the test's exposures all sit on asset 1.
        [e.id, e.id, state],
      );
    }
  }

  const incidentsOf = (key: string) => sn.records.get(key)!;

  it('files one ticket per unit by default', async () => {
    const system = systemFor('unit');
    const a = await system.upsert(sampleUnit({ scope: 'g-unit' }));
    const b = await system.upsert(
      sampleUnit({ scope: 'g-unit', action: 'Upgrade curl to 8.4.0 or later on web-01' }),
    );
    expect(a.key).not.toBe(b.key);
  });

  it('per asset: units on one asset share a ticket, which closes only when all its exposures are closed', async () => {
    const system = systemFor('asset');
    const openssl = sampleUnit({ scope: 'g-asset' });
    const curl = sampleUnit({
      scope: 'g-asset',
      action: 'Upgrade curl to 8.4.0 or later on web-01',
      exposures: [
        {
          id: `1:CVE-2023-38545-${Math.random().toString(16).slice(2, 8)}`,
          weaknessKey: 'CVE-2023-38545',
          title: 'SOCKS5 heap buffer overflow',
          asset: 'web-01',
          state: 'remediating',
          priority: 'Attend',
          reasons: ['CVSS 9.8'],
          package: { name: 'curl', version: '8.2.1', fixedVersion: '8.4.0' },
        },
      ],
    });
    const refA = await system.upsert(openssl);
    const refB = await system.upsert(curl);
    expect(refB.key).toBe(refA.key);
    const incident = incidentsOf(refA.key);
    expect(incident.short_description).toBe(
      '[CTEM Act] Upgrade openssl to 3.0.8 or later on web-01; Upgrade curl to 8.4.0 or later on web-01',
    );
    for (const key of ['CVE-2023-0286', 'CVE-2022-3602', 'CVE-2023-38545'])
      expect(incident.description).toContain(key);

    // openssl is verified fixed, curl is not: the shared ticket stays open and says so
    await setStates(openssl, 'resolved');
    await setStates(curl, 'remediating');
    await system.close(refA, 'openssl verified fixed by scan 42.');
    expect(incidentsOf(refA.key).state).toBe('1');
    expect(
      incidentsOf(refA.key)
        .work_notes.map((n) => n.text)
        .join('\n'),
    ).toContain(
      `2 of 3 exposures of this ticket are closed; it stays open until the others are: ${curl.exposures[0]!.id}.`,
    );
    // then curl is too: the ticket closes
    await setStates(curl, 'resolved');
    await system.close(refB, 'curl verified fixed by scan 43.');
    expect(incidentsOf(refA.key)).toMatchObject({
      state: '6',
      close_notes: 'curl verified fixed by scan 43.',
    });
  });

  it('per fix across assets: one ticket for the same upgrade on several hosts', async () => {
    const system = systemFor('fix');
    const web = sampleUnit({ scope: 'g-fix' });
    const db01 = sampleUnit({
      scope: 'g-fix',
      action: 'Upgrade openssl to 3.0.8 or later on db-01',
      exposures: sampleUnit().exposures.map((e) => ({ ...e, asset: 'db-01' })),
    });
    const a = await system.upsert(web);
    const b = await system.upsert(db01);
    expect(b.key).toBe(a.key);
    expect(incidentsOf(a.key).short_description).toBe(
      '[CTEM Act] Upgrade openssl to 3.0.8 or later on db-01, web-01',
    );
    // a different fix on the same host is another ticket
    const curl = await system.upsert(
      sampleUnit({
        scope: 'g-fix',
        exposures: [{ ...web.exposures[0]!, id: `${web.exposures[0]!.id}-curl`, package: { name: 'curl' } }],
      }),
    );
    expect(curl.key).not.toBe(a.key);
  });

  it('per exposure: a unit is split into tickets, and close, reopen and comments reach all of them', async () => {
    const system = systemFor('exposure');
    const unit = sampleUnit({ scope: 'g-exposure' });
    const [first, second] = unit.exposures;
    const ref = await system.upsert(unit);
    const { rows } = await db.pool.query<{ group_key: string; ticket_key: string }>(
      `select t.group_key, t.ticket_key from tickets t join ticket_units u using (system, group_key)
        where u.campaign_id = $1 order by t.group_key`,
      [unit.id],
    );
    expect(rows.map((r) => r.group_key).sort()).toEqual(
      [`exposure:${first!.id}`, `exposure:${second!.id}`].sort(),
    );
    const own = rows.find((r) => r.group_key === `exposure:${first!.id}`)!.ticket_key;
    const sibling = rows.find((r) => r.group_key === `exposure:${second!.id}`)!.ticket_key;
    expect(ref.key).toBe(own);
    expect(incidentsOf(own).description).toContain(first!.weaknessKey);
    expect(incidentsOf(own).description).not.toContain(second!.weaknessKey);

    await system.comment(ref, 'Escalated to the CISO.', 'esc-x');
    for (const key of [own, sibling])
      expect(incidentsOf(key).work_notes.some((n) => n.text.includes('Escalated to the CISO.'))).toBe(true);

    await setStates(unit, 'resolved');
    await system.close(ref, 'Verified fixed by scan 42.');
    expect([incidentsOf(own).state, incidentsOf(sibling).state]).toEqual(['6', '6']);

    // the second weakness comes back: its ticket reopens too
    await setStates(unit, 'reopened', [second!.id]);
    await system.reopen(ref, 'Scan 57 sees it again.');
    expect([incidentsOf(own).state, incidentsOf(sibling).state]).toEqual(['2', '2']);
  });

  it('merges parts into one summary: the most urgent priority, the earliest deadline, every exposure once', () => {
    const a = sampleUnit({ priority: 'Track', slaDue: '2031-06-01T00:00:00.000Z' });
    const b = sampleUnit({
      priority: 'Act',
      slaDue: '2031-05-01T00:00:00.000Z',
      action: 'Upgrade openssl to 3.0.8 or later on web-02',
    });
    const merged = mergeParts('fix:p:alice:pkg:openssl', [a, b, a]);
    expect(merged).toMatchObject({
      id: 'fix:p:alice:pkg:openssl',
      priority: 'Act',
      slaDue: '2031-05-01T00:00:00.000Z',
    });
    expect(merged.exposures).toHaveLength(4);
    expect(merged.action).toBe('Upgrade openssl to 3.0.8 or later on web-01, web-02');
  });
});
