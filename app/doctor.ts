// `ctem doctor`: check a deployment before (or while) it runs — the configuration, PostgreSQL,
// Temporal, and every configured integration — each with a real round trip where one is cheap and
// harmless (Slack auth.test, an authenticated GET on Jira/ServiceNow/Satellite/Nessus, GLPI
// initSession, the Teams token request, an SSH or SMTP greeting), and one sentence of advice per
// failure. Secrets are resolved to make the calls and never appear in a result.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { ConfigError, type Config } from '../domain/config.ts';
import type { DoctorCheck, DoctorOptions } from '../cli/services.ts';
import { loadConfig, resolveSecret, type LoadedConfig } from '../runtime/config.ts';
import { createPool } from '../db/pool.ts';
import { connectClient } from '../worker/connection.ts';
import { parseTicketIntegrations } from '../tickets/config.ts';
import { satelliteIntegration, sshIntegration, wsusIntegration } from '../patching/config.ts';
import { gvmSchema, integrationSection, nessusSchema } from '../scanners/connectors/config.ts';
import { digestSettings } from '../reporting/config.ts';
import { slackConfigOf } from '../chat/slack/config.ts';
import { teamsConfigOf } from '../chat/teams/config.ts';
import { BotTokenProvider } from '../chat/teams/token.ts';
import { validateLifecycleSettings } from '../lifecycle/settings.ts';

export async function runDoctor(opts: DoctorOptions = {}): Promise<DoctorCheck[]> {
  const env = opts.env ?? process.env;
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const checks: DoctorCheck[] = [];
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(opts.configFile, env);
  } catch (err) {
    checks.push({
      name: 'config',
      status: 'fail',
      detail: (err as Error).message,
      advice:
        err instanceof ConfigError
          ? 'fix the lines named above (ctem.example.yaml shows every setting)'
          : 'check that the file is readable YAML',
    });
    return checks;
  }
  const { config, baseDir } = loaded;
  const secret = (ref: string) => resolveSecret(ref as `env:${string}`, env, baseDir);

  // Every section parsed the way its integration parses it, so the problems show up now, not at 3 am.
  const sections: [string, () => unknown][] = [
    ['lifecycle', () => validateLifecycleSettings(config)],
    ['tickets', () => parseTicketIntegrations(config)],
    ['slack', () => slackConfigOf(config.integrations, loaded.file)],
    ['teams', () => teamsConfigOf(config.integrations, loaded.file)],
    ['ssh', () => config.integrations.ssh !== undefined && sshIntegration(config)],
    ['satellite', () => config.integrations.satellite !== undefined && satelliteIntegration(config)],
    ['wsus', () => config.integrations.wsus !== undefined && wsusIntegration(config)],
    [
      'nessus',
      () => config.integrations.nessus !== undefined && integrationSection(config, 'nessus', nessusSchema),
    ],
    ['gvm', () => config.integrations.gvm !== undefined && integrationSection(config, 'gvm', gvmSchema)],
    ['digest', () => config.digest !== undefined && digestSettings(config)],
  ];
  const configProblems: string[] = [];
  for (const [, parse] of sections) {
    try {
      parse();
    } catch (err) {
      configProblems.push((err as Error).message);
    }
  }
  const missingSecrets = secretRefsIn(config).flatMap((ref) => {
    try {
      secret(ref);
      return [];
    } catch (err) {
      return [(err as Error).message];
    }
  });
  checks.push(
    configProblems.length === 0 && missingSecrets.length === 0
      ? { name: 'config', status: 'ok', detail: loaded.file ?? 'built-in defaults (no ctem.yaml)' }
      : {
          name: 'config',
          status: 'fail',
          detail: [...configProblems, ...missingSecrets].join('\n'),
          advice: missingSecrets.length
            ? 'set the environment variables or create the files the env:/file: references name'
            : 'fix the settings named above (ctem.example.yaml shows every setting)',
        },
  );

  const run = async (name: string, fn: () => Promise<Omit<DoctorCheck, 'name'>>) => {
    try {
      checks.push({ name, ...(await withTimeout(fn(), timeoutMs, name)) });
    } catch (err) {
      checks.push({ name, status: 'fail', detail: describe(err), advice: adviceFor(name, err) });
    }
  };

  // PostgreSQL
  const dbRef = config.database.url;
  const databaseUrl = dbRef ? safe(() => secret(dbRef)) : opts.databaseUrl;
  if (!databaseUrl)
    checks.push({
      name: 'postgresql',
      status: dbRef ? 'fail' : 'skip',
      detail: dbRef ? `database.url (${dbRef}) cannot be resolved` : 'embedded: `ctem up` starts it',
      ...(dbRef ? { advice: `set ${dbRef.slice(4)}` } : {}),
    });
  else
    await run('postgresql', async () => {
      const pool = createPool(databaseUrl, 1);
      try {
        const { rows } = await pool.query<{ v: number | null }>(
          `select (select max(version) from schema_migrations) as v`,
        );
        return { status: 'ok', detail: `reachable, schema version ${rows[0]?.v ?? 0}` };
      } finally {
        await pool.end();
      }
    });

  // Temporal
  const address = config.temporal.address ?? opts.temporalAddress;
  if (!address)
    checks.push({ name: 'temporal', status: 'skip', detail: 'embedded: `ctem up` starts the dev server' });
  else
    await run('temporal', async () => {
      const connection = await connectClient(config, address, baseDir);
      try {
        await connection.workflowService.describeNamespace({ namespace: config.temporal.namespace });
        return { status: 'ok', detail: `${address}, namespace ${config.temporal.namespace}` };
      } finally {
        await connection.close();
      }
    });

  await integrationChecks(config, baseDir, secret, run);
  return checks;
}

type Run = (name: string, fn: () => Promise<Omit<DoctorCheck, 'name'>>) => Promise<void>;

async function integrationChecks(config: Config, baseDir: string, secret: (ref: string) => string, run: Run) {
  const ok = (detail: string) => ({ status: 'ok' as const, detail });
  const tickets = safe(() => parseTicketIntegrations(config));

  if (tickets?.jira) {
    const j = tickets.jira;
    await run('jira', async () => {
      const auth =
        'accessToken' in j.auth
          ? `Bearer ${secret(j.auth.accessToken)}`
          : basic(j.auth.email, secret(j.auth.apiToken));
      // The search the ticket system itself runs: it proves the URL, the credentials and the project.
      await httpJson(
        `${trim(j.url)}/rest/api/3/search/jql?jql=${encodeURIComponent(`project = ${j.project}`)}&maxResults=1&fields=summary`,
        { authorization: auth },
      );
      return ok(`${j.url}, project ${j.project} searchable`);
    });
  }
  if (tickets?.servicenow) {
    const s = tickets.servicenow;
    await run('servicenow', async () => {
      const auth =
        'token' in s.auth
          ? `Bearer ${secret(s.auth.token)}`
          : basic(s.auth.username, secret(s.auth.password));
      await httpJson(`${trim(s.url)}/api/now/table/${s.table}?sysparm_limit=1&sysparm_fields=sys_id`, {
        authorization: auth,
      });
      return ok(`${s.url}, table ${s.table} readable`);
    });
  }
  if (tickets?.glpi) {
    const g = tickets.glpi;
    await run('glpi', async () => {
      const headers: Record<string, string> = { authorization: `user_token ${secret(g.userToken)}` };
      if (g.appToken) headers['app-token'] = secret(g.appToken);
      const session = (await httpJson(`${trim(g.url)}/initSession`, headers)) as { session_token?: string };
      if (session.session_token)
        await httpJson(`${trim(g.url)}/killSession`, {
          'session-token': session.session_token,
          ...(headers['app-token'] ? { 'app-token': headers['app-token'] } : {}),
        }).catch(() => undefined);
      return ok(`${g.url}, session opened`);
    });
  }

  const slack = safe(() => slackConfigOf(config.integrations));
  if (slack)
    await run('slack', async () => {
      const base = (slack.apiUrl ?? 'https://slack.com/api/').replace(/\/?$/, '/');
      const res = (await httpJson(
        `${base}auth.test`,
        { authorization: `Bearer ${secret(slack.botToken)}` },
        'POST',
      )) as {
        ok?: boolean;
        error?: string;
        team?: string;
        user?: string;
      };
      if (!res.ok)
        throw new DoctorFailure(
          `auth.test answered ${res.error ?? 'not ok'}`,
          'check integrations.slack.botToken (a bot token, xoxb-…, of an installed app)',
        );
      return ok(`auth.test ok: ${res.user ?? 'bot'} in ${res.team ?? 'the workspace'}`);
    });

  const teams = safe(() => teamsConfigOf(config.integrations));
  if (teams)
    await run('teams', async () => {
      const provider = new BotTokenProvider(teams, secret(teams.clientSecret));
      await provider.token();
      return ok(`bot token issued by ${provider.tokenUrl.replace(/\/oauth2.*$/, '')}`);
    });

  const ssh = config.integrations.ssh !== undefined ? safe(() => sshIntegration(config)) : undefined;
  if (ssh)
    for (const [name, h] of Object.entries(ssh.hosts))
      await run(`ssh:${name}`, async () => {
        const banner = await greeting(h.address ?? name, h.port ?? ssh.port, /^SSH-2\.0-/);
        return ok(`${h.address ?? name}:${h.port ?? ssh.port} ${banner}`);
      });
  const wsus = config.integrations.wsus !== undefined ? safe(() => wsusIntegration(config)) : undefined;
  if (wsus)
    await run('wsus', async () => {
      const banner = await greeting(wsus.server, wsus.ssh.port, /^SSH-2\.0-/);
      return ok(`${wsus.server}:${wsus.ssh.port} ${banner}`);
    });

  const satellite =
    config.integrations.satellite !== undefined ? safe(() => satelliteIntegration(config)) : undefined;
  if (satellite)
    await run('satellite', async () => {
      await httpJson(`${trim(satellite.url)}/api/v2/hosts?per_page=1`, {
        authorization: basic(satellite.username, secret(satellite.password)),
      });
      return ok(`${satellite.url}, hosts readable`);
    });

  const nessus =
    config.integrations.nessus !== undefined
      ? safe(() => integrationSection(config, 'nessus', nessusSchema))
      : undefined;
  if (nessus)
    await run('nessus', async () => {
      await httpJson(`${trim(nessus.url)}/scans${nessus.scanId ? `/${nessus.scanId}` : ''}`, {
        'x-apikeys': `accessKey=${secret(nessus.accessKey)}; secretKey=${secret(nessus.secretKey)}`,
      });
      return ok(`${nessus.url}, API keys accepted`);
    });
  const gvm =
    config.integrations.gvm !== undefined
      ? safe(() => integrationSection(config, 'gvm', gvmSchema))
      : undefined;
  if (gvm)
    await run('gvm', async () => {
      if (gvm.socket) {
        await connectOnly(() => net.connect(gvm.socket!));
        return ok(`${gvm.socket} accepts connections`);
      }
      await connectOnly(
        () => tls.connect({ host: gvm.host!, port: gvm.port, rejectUnauthorized: false }),
        'secureConnect',
      );
      return ok(`${gvm.host}:${gvm.port} accepts TLS connections`);
    });

  const digest = config.digest !== undefined ? safe(() => digestSettings(config)) : undefined;
  if (digest?.email)
    await run('smtp', async () => {
      const { host, port } = digest.email!.smtp;
      const banner = await greeting(host, port, /^220[ -]/, digest.email!.smtp.secure);
      return ok(`${host}:${port} ${banner}`);
    });
  void baseDir;
}

/** A failure with its own advice. */
class DoctorFailure extends Error {
  constructor(
    message: string,
    readonly advice: string,
  ) {
    super(message);
  }
}

function adviceFor(name: string, err: unknown): string {
  if (err instanceof DoctorFailure) return err.advice;
  const code = errorCode(err);
  const base = name.split(':')[0]!;
  const setting: Record<string, string> = {
    postgresql: 'database.url (or DATABASE_URL)',
    temporal: 'temporal.address',
    jira: 'integrations.jira.url',
    servicenow: 'integrations.servicenow.url',
    glpi: 'integrations.glpi.url',
    slack: 'integrations.slack.apiUrl',
    teams: 'integrations.teams.endpoints.login',
    ssh: `integrations.ssh.hosts.${name.split(':')[1] ?? ''}`,
    wsus: 'integrations.wsus.server',
    satellite: 'integrations.satellite.url',
    nessus: 'integrations.nessus.url',
    gvm: 'integrations.gvm.host/socket',
    smtp: 'digest.email.smtp.host and port',
  };
  const where = setting[base] ?? name;
  if (code === 'ECONNREFUSED')
    return `nothing listens there: start the service, or correct ${where} (host and port)`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `the host name does not resolve: correct ${where}`;
  if (code === 'ETIMEDOUT' || code === 'TIMEOUT')
    return `no answer in time: check ${where}, firewalls and proxies between ctem and the service`;
  if (code === 'HTTP401' || code === 'HTTP403')
    return `the credentials were refused: check the ${base} credentials in ctem.yaml and the secrets they reference`;
  if (code === 'HTTP404') return `the URL answers but not as ${base} does: check ${where} (the API root)`;
  if (/certificate|self[- ]signed|CERT_/i.test(describe(err)))
    return `the TLS certificate is not trusted: set the CA file for ${base}, or fix the certificate`;
  if (base === 'postgresql' && /password authentication|does not exist/.test(describe(err)))
    return 'the database refused the login or does not exist: check the user, password and database name in database.url';
  if (base === 'postgresql' && /schema_migrations/.test(describe(err)))
    return 'the database is reachable but not migrated: run `ctem db migrate`';
  return `check ${where} and that the service is up`;
}

function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, i = 0; e && i < 5; i++) {
    const c = (e as { code?: unknown }).code;
    if (typeof c === 'string') return c;
    const errors = (e as { errors?: unknown[] }).errors;
    if (Array.isArray(errors) && errors[0]) return errorCode(errors[0]);
    e = (e as { cause?: unknown }).cause;
  }
  if (/ECONNREFUSED|Connection refused/i.test(describe(err))) return 'ECONNREFUSED';
  return undefined;
}

function describe(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, i = 0; e && i < 4; i++) {
    const m = e instanceof Error ? e.message : String(e);
    if (m && !parts.includes(m)) parts.push(m);
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(': ') || 'failed';
}

function safe<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

const trim = (url: string) => url.replace(/\/+$/, '');
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

/**
 * One request on its own connection (no keep-alive pool), so a one-shot command exits as soon as it
 * is done whatever keep-alive the server offers.
 */
async function httpJson(url: string, headers: Record<string, string>, method = 'GET'): Promise<unknown> {
  const shown = `${method} ${url.replace(/\?.*$/, '')}`;
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const u = new URL(url);
    const req = (u.protocol === 'https:' ? https : http).request(
      u,
      { method, agent: false, headers: { accept: 'application/json', connection: 'close', ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= 1024 * 1024) chunks.push(c);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
  if (status < 200 || status >= 300)
    throw Object.assign(new Error(`${shown} answered ${status}`), { code: `HTTP${status}` });
  try {
    return text ? (JSON.parse(text) as unknown) : {};
  } catch {
    throw Object.assign(new Error(`${shown} did not answer JSON`), { code: 'HTTP404' });
  }
}

/** Connect, read the first line the server sends, and check it looks like the expected protocol. */
async function greeting(host: string, port: number, expect: RegExp, useTls = false): Promise<string> {
  return await new Promise<string>((resolve, reject) => {
    const socket = useTls
      ? tls.connect({ host, port, rejectUnauthorized: false })
      : net.connect({ host, port });
    let buf = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0 || buf.length > 512) {
        socket.destroy();
        const line = buf.slice(0, nl >= 0 ? nl : 512).trim();
        if (expect.test(line)) resolve(`greeted: ${line.slice(0, 80)}`);
        else
          reject(
            new DoctorFailure(
              `${host}:${port} answered "${line.slice(0, 80)}", not the expected protocol`,
              `check the port: something else listens on ${host}:${port}`,
            ),
          );
      }
    });
    socket.on('error', reject);
    socket.on('end', () => reject(new Error(`${host}:${port} closed the connection without a greeting`)));
  });
}

async function connectOnly(
  open: () => net.Socket,
  event: 'connect' | 'secureConnect' = 'connect',
): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const s = open();
    s.once(event, () => {
      s.destroy();
      resolve();
    });
    s.once('error', reject);
  });
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(Object.assign(new Error(`${what}: no answer in ${ms} ms`), { code: 'TIMEOUT' })),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every env:/file: reference anywhere in the configuration (their values must exist). */
function secretRefsIn(config: Config): string[] {
  const out = new Set<string>();
  const walk = (v: unknown) => {
    if (typeof v === 'string') {
      if (/^(env|file):\S+$/.test(v) && !/^env:SSH_AUTH_SOCK$/.test(v)) out.add(v);
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(config.integrations);
  walk(config.digest);
  walk(config.database);
  walk(config.temporal.apiKey);
  return [...out];
}
