// `ctem doctor` against the real PostgreSQL and Temporal of the test run and the local fakes of every
// integration (Jira, ServiceNow, GLPI, Slack, Teams' token endpoint, Satellite, Nessus, a real sshd,
// a real SMTP server): reachable → ok. The same configuration pointed at a closed port → every
// integration fails with advice saying nothing listens there, and the command exits non-zero.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runDoctor } from '../../app/doctor.ts';
import type { DoctorCheck } from '../../cli/services.ts';
import { testDatabase } from '../support/db.ts';
import { testSshd, type Sshd } from '../support/sshd.ts';
import { FakeJira } from '../fakes/jira.ts';
import { FakeServiceNow } from '../fakes/servicenow.ts';
import { FakeGlpi } from '../fakes/glpi.ts';
import { FakeSlackApi } from '../fakes/slack-api.ts';
import { FakeBotConnector } from '../fakes/bot-connector.ts';
import { startFakeSatellite, type FakeSatellite } from '../fakes/satellite.ts';
import { startLocalNessus, type LocalNessus } from '../ingest/nessusServer.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ctem-doctor-'));
const jira = new FakeJira({ email: 'ctem@example.com', apiToken: 'jira-token', projects: ['SEC'] });
const sn = new FakeServiceNow({ user: 'ctem', password: 'sn-pw' });
const glpi = new FakeGlpi({ appToken: 'glpi-app', userToken: 'glpi-user', computers: [] });
const slack = new FakeSlackApi({ token: 'xoxb-doctor' });
const connector = new FakeBotConnector({
  appId: '00000000-0000-4000-8000-0000000d0c70',
  appSecret: 'teams-secret',
  tenantId: '11111111-2222-4333-8444-555555555555',
});
const smtp = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS'] });
let smtpPort = 0;
let satellite: FakeSatellite;
let nessus: LocalNessus;
let sshd: Sshd;
let databaseUrl: string;
let closedPort: number;

const env = {
  ...process.env,
  DOCTOR_DB: '',
  DOCTOR_JIRA: 'jira-token',
  DOCTOR_SN: 'sn-pw',
  DOCTOR_GLPI_APP: 'glpi-app',
  DOCTOR_GLPI_USER: 'glpi-user',
  DOCTOR_SLACK: 'xoxb-doctor',
  DOCTOR_SLACK_SIGN: 'signing',
  DOCTOR_TEAMS: 'teams-secret',
  DOCTOR_SAT: 'sat-token',
  DOCTOR_NESSUS_A: 'nessus-access',
  DOCTOR_NESSUS_S: 'nessus-secret',
};

beforeAll(async () => {
  const db = await testDatabase();
  databaseUrl = db.url;
  env.DOCTOR_DB = databaseUrl;
  await Promise.all([jira.start(), sn.start(), glpi.start(), slack.start(), connector.start()]);
  satellite = await startFakeSatellite({ username: 'ctem', password: 'sat-token', hosts: [], errata: [] });
  nessus = await startLocalNessus({ accessKey: 'nessus-access', secretKey: 'nessus-secret', scanIds: [42] });
  sshd = await testSshd();
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', () => resolve()));
  smtpPort = (smtp.server.address() as net.AddressInfo).port;
  // A port nothing listens on: bound, read, released.
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
  closedPort = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
});

afterAll(async () => {
  await Promise.all([
    jira.close(),
    sn.close(),
    glpi.close(),
    slack.stop(),
    connector.stop(),
    satellite.close(),
    nessus.close(),
  ]);
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
});

/** ctem.yaml with every integration; `at(url)` lets a test send them all somewhere else. */
function configYaml(at: (url: string) => string = (u) => u, port: (p: number) => number = (p) => p): string {
  return `version: 1
database: { url: env:DOCTOR_DB }
temporal: { address: ${inject('temporalAddress')} }
integrations:
  jira:
    url: ${at(jira.url)}
    auth: { email: ctem@example.com, apiToken: env:DOCTOR_JIRA }
    project: SEC
  servicenow:
    url: ${at(sn.url)}
    auth: { username: ctem, password: env:DOCTOR_SN }
  glpi:
    url: ${at(glpi.url)}/apirest.php
    appToken: env:DOCTOR_GLPI_APP
    userToken: env:DOCTOR_GLPI_USER
  slack:
    botToken: env:DOCTOR_SLACK
    signingSecret: env:DOCTOR_SLACK_SIGN
    apiUrl: ${at(slack.url)}
  teams:
    appId: 00000000-0000-4000-8000-0000000d0c70
    tenantId: 11111111-2222-4333-8444-555555555555
    clientSecret: env:DOCTOR_TEAMS
    endpoints: { login: ${at(connector.loginEndpoint)} }
  satellite:
    url: ${at(satellite.url)}
    username: ctem
    password: env:DOCTOR_SAT
  nessus:
    url: ${at(nessus.url)}
    accessKey: env:DOCTOR_NESSUS_A
    secretKey: env:DOCTOR_NESSUS_S
    scanId: 42
  ssh:
    user: ${sshd.user}
    privateKey: file:${sshd.privateKeyPath}
    knownHosts: ${sshd.knownHostsPath}
    hosts:
      web-01: { address: ${sshd.host}, port: ${port(sshd.port)} }
digest:
  email:
    from: ctem@example.com
    to: [ciso@example.com]
    smtp: { host: 127.0.0.1, port: ${port(smtpPort)}, requireTls: false }
`;
}

function writeConfig(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

const byName = (checks: DoctorCheck[]) => Object.fromEntries(checks.map((c) => [c.name, c]));
const INTEGRATIONS = [
  'jira',
  'servicenow',
  'glpi',
  'slack',
  'teams',
  'satellite',
  'nessus',
  'ssh:web-01',
  'smtp',
];

describe('ctem doctor', () => {
  it('says ok for the configuration, PostgreSQL, Temporal and every reachable integration', async () => {
    const checks = await runDoctor({
      configFile: writeConfig('ok.yaml', configYaml()),
      env,
      timeoutMs: 20_000,
    });
    const c = byName(checks);
    expect(Object.keys(c).sort()).toEqual(['config', 'postgresql', 'temporal', ...INTEGRATIONS].sort());
    for (const check of checks) expect(check, JSON.stringify(check)).toMatchObject({ status: 'ok' });
    expect(c.slack!.detail).toMatch(/auth\.test ok/);
    expect(c['ssh:web-01']!.detail).toMatch(/greeted: SSH-2\.0-OpenSSH/);
    expect(c.smtp!.detail).toMatch(/greeted: 220 /);
    expect(c.postgresql!.detail).toMatch(/schema version \d+/);
    // Secrets resolved for the calls never show in what doctor says.
    expect(JSON.stringify(checks)).not.toMatch(
      /jira-token|sn-pw|glpi-user|xoxb-doctor|teams-secret|sat-token|nessus-secret/,
    );
  });

  it('names each unreachable integration with advice, and wrong credentials as such', async () => {
    const closed = (u: string) => u.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${closedPort}`);
    const checks = await runDoctor({
      configFile: writeConfig(
        'closed.yaml',
        configYaml(closed, () => closedPort),
      ),
      env,
      timeoutMs: 20_000,
    });
    const c = byName(checks);
    expect(c.config!.status).toBe('ok');
    expect(c.postgresql!.status).toBe('ok');
    for (const name of INTEGRATIONS) {
      expect(c[name], name).toMatchObject({ status: 'fail' });
      expect(c[name]!.advice, name).toMatch(
        /nothing listens there: start the service, or correct .+ \(host and port\)/,
      );
    }
    expect(c.jira!.advice).toMatch(/integrations\.jira\.url/);
    expect(c['ssh:web-01']!.advice).toMatch(/integrations\.ssh\.hosts\.web-01/);

    const wrong = await runDoctor({
      configFile: writeConfig('ok2.yaml', configYaml()),
      env: {
        ...env,
        DOCTOR_JIRA: 'wrong',
        DOCTOR_SAT: 'wrong',
        DOCTOR_SLACK: 'xoxb-wrong',
        DOCTOR_NESSUS_S: 'wrong',
      },
      timeoutMs: 20_000,
    });
    const w = byName(wrong);
    for (const name of ['jira', 'satellite', 'nessus'])
      expect(w[name]!.advice, name).toMatch(/the credentials were refused/);
    expect(w.slack).toMatchObject({ status: 'fail', detail: 'auth.test answered invalid_auth' });
    expect(w.slack!.advice).toMatch(/integrations\.slack\.botToken/);
  });

  it('reports configuration problems with file and line, and unset secrets by name', async () => {
    const broken = writeConfig('broken.yaml', 'version: 1\nhttp:\n  port: eighty\n');
    const [c] = await runDoctor({ configFile: broken, env });
    expect(c).toMatchObject({ name: 'config', status: 'fail' });
    expect(c!.detail).toMatch(/broken\.yaml:3:\d+: http\.port/);
    const unset = await runDoctor({
      configFile: writeConfig('unset.yaml', configYaml()),
      env: { ...env, DOCTOR_SN: '' },
      timeoutMs: 20_000,
    });
    expect(unset[0]).toMatchObject({ name: 'config', status: 'fail' });
    expect(unset[0]!.detail).toMatch(/the environment variable DOCTOR_SN is not set/);
    const badSection = writeConfig(
      'section.yaml',
      'version: 1\nintegrations:\n  jira: { url: not-a-url, project: sec }\n',
    );
    const [s] = await runDoctor({ configFile: badSection, env });
    expect(s).toMatchObject({ name: 'config', status: 'fail' });
    expect(s!.detail).toMatch(/jira/);
  });

  it('as a command: prints JSON with --json and exits 1 when a check fails, 0 when all pass', async () => {
    const bin = path.resolve('bin/ctem.js');
    // Asynchronously: the fakes answer from this process, which must keep running meanwhile.
    const run = (file: string) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [bin, '--config', file, 'doctor', '--json', '--timeout', '20'],
          { env: { ...env, CTEM_HOME: dir }, encoding: 'utf8', timeout: 120_000 },
          (err, stdout, stderr) =>
            resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
        );
      });
    const closed = (u: string) => u.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${closedPort}`);
    const failing = await run(
      writeConfig(
        'closed-cli.yaml',
        configYaml(closed, () => closedPort),
      ),
    );
    expect(failing.status, failing.stderr).toBe(1);
    const out = JSON.parse(failing.stdout) as { healthy: boolean; checks: DoctorCheck[] };
    expect(out.healthy).toBe(false);
    expect(out.checks.find((c) => c.name === 'jira')).toMatchObject({ status: 'fail' });
    const passing = await run(writeConfig('ok-cli.yaml', configYaml()));
    expect(passing.status, passing.stdout + passing.stderr).toBe(0);
    expect((JSON.parse(passing.stdout) as { healthy: boolean }).healthy).toBe(true);
  }, 300_000);
});
