// The dashboard in a real browser: Debian's chromium driven by playwright-core against the project's
// HTTP server, with real campaign workflows on the run's Temporal server behind the decisions. What a
// person sees is checked on the rendered page; screenshots are kept under test-results/screenshots/.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Worker } from '@temporalio/worker';
import type { Config } from '../../domain/config.ts';
import { HttpServer } from '../../bots/http.ts';
import { hashPassword } from '../../runtime/passwords.ts';
import { mountDashboard } from '../../bots/dashboard/app.ts';
import { dispatchChanges } from '../../lifecycle/dispatch.ts';
import { testDatabase, type TestDatabase } from '../support/db.ts';
import { testTemporal, type TestTemporal } from '../support/temporal.ts';
import {
  lifecycleConfig,
  newPortLog,
  recordingPorts,
  seedExposures,
  untilState,
  view,
} from '../lifecycle/support.ts';
import { nowAfter, seedEstate } from './seed.ts';
import { previousWeek } from '../../reporting/week.ts';
import { testDeps } from '../support/deps.ts';

const SHOTS = path.resolve('test-results', 'screenshots');
// The live exposures below run on Temporal's real clock, so the seeded estate is written for the last
// complete week and the dashboard's clock is that estate's Monday noon: the same figures on any date.
const WEEK = previousWeek(new Date()).label;
const NOW = nowAfter(WEEK);
const PASSWORDS = { cyrus: 'correct horse battery staple', olivia: 'olivia-pass-123', pat: 'pat-pass-123' };
const TOKEN = 'dashboard-token-0123456789';

const ports = recordingPorts(newPortLog());

let db: TestDatabase;
let temporal: TestTemporal;
let worker: Worker;
let running: Promise<void>;
let http: HttpServer;
let base: string;
let browser: Browser;
let config: Config;
let actIds: string[];
let attendIds: string[];
let estate: Record<string, string>;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  db = await testDatabase();
  temporal = await testTemporal();
  process.env.DASH_T_OLIVIA_HASH = await hashPassword(PASSWORDS.olivia);
  process.env.DASH_T_TOKEN = TOKEN;
  config = lifecycleConfig({
    // Long enough that the live exposures are on track at the estate's clock (NOW), up to a week away.
    actWindow: '14d',
    extra: `dashboard:
  accounts:
    - { person: cyrus, passwordHash: '${await hashPassword(PASSWORDS.cyrus)}' }
    - { person: olivia, passwordHash: env:DASH_T_OLIVIA_HASH }
    - { person: pat, passwordHash: '${await hashPassword(PASSWORDS.pat)}' }
  tokens:
    - { person: lena, token: env:DASH_T_TOKEN }
`,
  });
  const taskQueue = temporal.taskQueue('dash');
  worker = await temporal.worker({ registry: ports, taskQueue, pool: db.pool, config });
  running = worker.run();
  estate = await seedEstate(db.pool, WEEK);
  const act = await seedExposures(db.pool, {
    scope: 'prod',
    host: 'shop-01',
    weaknesses: ['CVE-2099-7001', 'CVE-2099-7002'],
    exploited: true,
    package: { name: 'openssl', fixedVersion: '3.0.8' },
  });
  const attend = await seedExposures(db.pool, {
    scope: 'prod',
    host: 'intranet-01',
    weaknesses: ['CVE-2099-7003'],
    package: { name: 'libxml2', fixedVersion: '2.9.14' },
  });
  for (const s of [act, attend])
    await dispatchChanges(
      testDeps({ pool: db.pool, config, registry: ports }),
      temporal.client,
      s.ids.map((id) => ({ exposureId: id, change: 'new' as const, scanId: s.scanId, at: s.at })),
      { taskQueue },
    );
  for (const id of [...act.ids, ...attend.ids])
    await untilState(temporal.client, db.pool, id, 'awaiting-decision', 120_000);
  actIds = act.ids;
  attendIds = attend.ids;
  const log = pino({ level: process.env.CTEM_TEST_LOG ?? 'silent' });
  http = new HttpServer(log);
  const dash = mountDashboard({
    http,
    config,
    pool: db.pool,
    client: temporal.client,
    log,
    baseDir: process.cwd(),
    now: () => NOW.getTime(),
  });
  if (!dash) throw new Error('dashboard not mounted');
  // localhost is a secure context for Chromium, so the Secure session cookie is kept over http.
  base = `http://localhost:${await http.listen(0, '127.0.0.1')}`;
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox'],
  });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await http?.close();
  worker?.shutdown();
  await running;
});

async function signIn(page: Page, user: string, password: string): Promise<void> {
  await page.goto(`${base}/dashboard`);
  expect(new URL(page.url()).pathname).toBe('/dashboard/login');
  await page.fill('input[name=user]', user);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
}

function externalRequests(page: Page): string[] {
  const seen: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith('data:')) seen.push(r.url());
  });
  return seen;
}

describe('dashboard in Chromium', { timeout: 180_000 }, () => {
  it('refuses a wrong password and shows why', async () => {
    const page = await browser.newPage();
    await signIn(page, 'cyrus', 'not the password');
    await expect(page.textContent('#login-error')).resolves.toBe('Unknown user or wrong password.');
    expect(new URL(page.url()).pathname).toBe('/dashboard/login');
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-login-failed.png') });
    // Nothing behind the login is reachable without a session.
    const res = await page.request.get(`${base}/dashboard/exposure?id=${encodeURIComponent(actIds[0]!)}`, {
      maxRedirects: 0,
    });
    expect(res.status()).toBe(303);
    await page.close();
  });

  it('signs in, lists the queue most urgent first, and filters it', async () => {
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    const page = await context.newPage();
    const external = externalRequests(page);
    await signIn(page, 'cyrus', PASSWORDS.cyrus);
    expect(new URL(page.url()).pathname).toBe('/dashboard');
    await expect(page.textContent('#who')).resolves.toBe('Cyrus Ciso');
    const cookie = (await context.cookies()).find((c) => c.name === 'ctem_session')!;
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict' });

    // prod: the three live exposures and the seeded prod estate still needing work (E1, E4, E5).
    const rows = page.locator('#queue tbody tr[data-exposure]');
    await expect(rows.count()).resolves.toBe(6);
    await expect(rows.first().locator('td').first().textContent()).resolves.toBe('Act');
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-queue.png'), fullPage: true });

    await page.selectOption('select[name=priority]', 'attend');
    await page.click('form.filters button');
    const attend = await page
      .locator('#queue tbody tr[data-exposure]')
      .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-exposure')));
    expect(attend.sort()).toEqual([...attendIds, estate.E4!].sort());

    await page.goto(`${base}/dashboard?sla=overdue`);
    const overdue = await page.locator('#queue tbody tr[data-exposure] td:nth-child(3) a').allTextContents();
    expect(overdue).toEqual(['CVE-2026-0001']); // E1; E8 is in dev, where Cyrus holds no role

    // The workflows assigned the live exposures to the scope owner; E1 was seeded with her as owner.
    await page.goto(`${base}/dashboard?owner=olivia&state=awaiting-decision`);
    const hers = await page
      .locator('#queue tbody tr[data-exposure]')
      .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-exposure')));
    expect(hers.sort()).toEqual([...actIds, ...attendIds, estate.E1!].sort());
    await page.goto(`${base}/dashboard?owner=olivia&state=risk-accepted`);
    await expect(page.textContent('#count')).resolves.toBe('0 exposures');
    expect(external).toEqual([]);
    await context.close();
  });

  it('shows an exposure with its reasons, evidence and timeline, and takes a decision the workflow holds', async () => {
    const context = await browser.newContext({ viewport: { width: 1360, height: 1000 } });
    const page = await context.newPage();
    await signIn(page, 'cyrus', PASSWORDS.cyrus);
    await page.click(`tr[data-exposure="${actIds[0]}"] a`);
    await expect(page.textContent('h1')).resolves.toContain('CVE-2099-7001 on shop-01');
    await expect(page.textContent('#state')).resolves.toBe('awaiting-decision');
    await expect(page.locator('#reasons li').count()).resolves.toBeGreaterThan(0);
    await expect(page.textContent('#evidence')).resolves.toContain('fixed in 3.0.8');
    await expect(page.textContent('#timeline')).resolves.toMatch(/triaged|decision-requested|owner-notified/);

    await page.selectOption('form:has(input[value=snooze]) select[name=days]', '7');
    await page.fill('form:has(input[value=snooze]) input[name=reason]', 'change freeze until Monday');
    await page.click('form:has(input[value=snooze]) button');
    await expect(page.textContent('#result')).resolves.toBe('Done: the exposure is now snoozed.');
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-decision.png'), fullPage: true });

    const v = await untilState(temporal.client, db.pool, actIds[0]!, 'snoozed');
    expect(v.state).toBe('snoozed');
    const { rows } = await db.pool.query<{ actor: string; reason: string | null }>(
      `select actor, reason from events where exposure_id = $1 and type like '%snooze%' order by id`,
      [actIds[0]],
    );
    expect(rows.at(-1)).toMatchObject({ actor: 'cyrus' });
    await context.close();
  });

  it('refuses a decision without the CSRF token, and leaves the exposure as it was', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, 'cyrus', PASSWORDS.cyrus);
    const res = await page.request.post(`${base}/dashboard/decide`, {
      form: { id: actIds[1]!, kind: 'markFalsePositive', reason: 'forged' },
    });
    expect(res.status()).toBe(403);
    expect(await res.text()).toContain('CSRF check failed');
    const forged = await page.request.post(`${base}/dashboard/decide`, {
      form: { id: actIds[1]!, kind: 'markFalsePositive', reason: 'forged', _csrf: 'not-the-token' },
    });
    expect(forged.status()).toBe(403);
    expect((await view(temporal.client, db.pool, actIds[1]!)).state).toBe('awaiting-decision');
    await context.close();
  });

  it('shows the workflow refusal when the role does not allow the decision', async () => {
    const page = await browser.newPage();
    await signIn(page, 'olivia', PASSWORDS.olivia);
    await page.goto(`${base}/dashboard/exposure?id=${encodeURIComponent(actIds[1]!)}`);
    await page.fill('form:has(input[value=acceptRisk]) input[name=justification]', 'compensating WAF rule');
    const inAMonth = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
    await page.fill('form:has(input[value=acceptRisk]) input[name=expires]', inAMonth);
    await page.click('form:has(input[value=acceptRisk]) button');
    await expect(page.textContent('#result')).resolves.toMatch(/^Refused: .*olivia/);
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-refused.png'), fullPage: true });
    expect((await view(temporal.client, db.pool, actIds[1]!)).state).toBe('awaiting-decision');
    await page.close();
  });

  it('turns away a person with no role in any scope', async () => {
    const page = await browser.newPage();
    await signIn(page, 'pat', PASSWORDS.pat);
    await expect(page.textContent('h1')).resolves.toBe('Not authorized');
    await expect(page.textContent('#message')).resolves.toContain('holds no role in any scope');
    const res = await page.request.get(`${base}/dashboard`);
    expect(res.status()).toBe(403);
    await page.close();
  });

  it('answers an API token, and refuses a wrong one', async () => {
    const ok = await fetch(`${base}/dashboard?priority=act`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('CVE-2099-7002');
    const bad = await fetch(`${base}/dashboard`, { headers: { authorization: 'Bearer wrong' } });
    expect(bad.status).toBe(401);
  });

  it('shows the weekly digest with its charts, self-contained', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const external = externalRequests(page);
    await signIn(page, 'cyrus', PASSWORDS.cyrus);
    await page.goto(`${base}/dashboard/digest?week=${WEEK}`);
    await expect(page.textContent('h1')).resolves.toBe(`CTEM weekly digest · ${WEEK}`);
    await expect(page.locator('svg').count()).resolves.toBeGreaterThanOrEqual(4);
    await expect(page.locator('[data-kpi="Health score"] .value').textContent()).resolves.toMatch(/^\d+$/);
    await expect(page.locator('#movements').textContent()).resolves.toMatch(/\S/);
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-digest.png'), fullPage: true });
    expect(external).toEqual([]);
    await context.close();
  });

  it('keeps the digest to people who are the CISO or a security lead in every scope', async () => {
    const page = await browser.newPage();
    await signIn(page, 'olivia', PASSWORDS.olivia);
    // An owner sees the queue but no link to the digest, and the page itself is refused.
    await expect(page.locator('header a', { hasText: 'Exposure queue' }).count()).resolves.toBe(1);
    await expect(page.locator('header a', { hasText: 'Weekly digest' }).count()).resolves.toBe(0);
    const refused = await page.goto(`${base}/dashboard/digest?week=${WEEK}`);
    expect(refused?.status()).toBe(403);
    await expect(page.textContent('h1')).resolves.toBe('Not authorized');
    await expect(page.textContent('#message')).resolves.toContain('Olivia Owner is neither in prod, bare');
    expect(await page.content()).not.toContain('Health score');
    await page.close();

    // The CISO gets the link; the security lead (by API token) the page.
    const ciso = await browser.newPage();
    await signIn(ciso, 'cyrus', PASSWORDS.cyrus);
    await expect(ciso.locator('header a', { hasText: 'Weekly digest' }).count()).resolves.toBe(1);
    await ciso.close();
    const lead = await fetch(`${base}/dashboard/digest?week=${WEEK}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(lead.status).toBe(200);
    expect(await lead.text()).toContain(`CTEM weekly digest · ${WEEK}`);
  });
});
