// `ctem doctor`: check a deployment before (or while) it runs — the configuration, PostgreSQL,
// Temporal, and every configured integration — each with a real round trip where one is cheap and
// harmless (Slack auth.test, an authenticated GET on Jira/ServiceNow/Satellite/Nessus, GLPI
// initSession, the Teams token request, an SSH or SMTP greeting), and one sentence of advice per
// failure. Secrets are resolved to make the calls and never appear in a result.
import net from 'node:net';
import tls from 'node:tls';
import { connectOnly, greeting, httpJson, ProbeFailure, trimUrl } from '../runtime/probe.ts';
import { ConfigError, type Config } from '../domain/config.ts';
import type { DoctorCheck, DoctorOptions } from '../cli/services.ts';
import { loadConfig, resolveSecret, type LoadedConfig } from '../runtime/config.ts';
import { createPool } from '../runtime/pool.ts';
import { connectClient } from '../runtime/temporalConnection.ts';
import { configuredTicketSystems, ticketSystems } from '../tickets/systems.ts';
import { patchExecutors } from '../patching/registry.ts';
import { gvmSchema, integrationSection, nessusSchema } from '../discovery/config.ts';
import { digestSettings } from '../reporting/config.ts';
import { slackConfigOf } from '../chat/slack/config.ts';
import { teamsConfigOf } from '../chat/teams/config.ts';
import { BotTokenProvider } from '../chat/teams/token.ts';
import { validateLifecycleSettings } from '../lifecycle/settings.ts';
import { validateNotificationSettings } from '../lifecycle/notificationPolicy.ts';

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
    ['notifications', () => validateNotificationSettings(config)],
    ['tickets', () => configuredTicketSystems(config)],
    ['slack', () => slackConfigOf(config.integrations, loaded.file)],
    ['teams', () => teamsConfigOf(config.integrations, loaded.file)],
    // A patch executor's doctor parses its section as it builds its checks.
    ...patchExecutors.map((m): [string, () => unknown] => [m.name, () => m.doctor?.(config, secret)]),
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
    checks.push({
      name: 'temporal',
      status: 'skip',
      detail:
        config.temporal.embedded === 'server'
          ? `embedded: \`ctem up\` starts the Temporal server on PostgreSQL (${config.temporal.server.shards} history shards)`
          : 'embedded: `ctem up` starts the dev server',
    });
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
  // Each configured ticket system's own check (tickets/<name>/index.ts).
  for (const { module, cfg } of safe(() => configuredTicketSystems(config)) ?? [])
    await run(module.name, async () => ok(await module.doctor(cfg, secret)));

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
        throw new ProbeFailure(
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

  // Each patch executor's own checks (patching/<name>/index.ts).
  for (const executor of patchExecutors)
    for (const c of safe(() => executor.doctor?.(config, secret)) ?? [])
      await run(c.name, async () => ok(await c.check()));
  const nessus =
    config.integrations.nessus !== undefined
      ? safe(() => integrationSection(config, 'nessus', nessusSchema))
      : undefined;
  if (nessus)
    await run('nessus', async () => {
      await httpJson(`${trimUrl(nessus.url)}/scans${nessus.scanId ? `/${nessus.scanId}` : ''}`, {
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

function adviceFor(name: string, err: unknown): string {
  if (err instanceof ProbeFailure) return err.advice;
  const code = errorCode(err);
  const base = name.split(':')[0]!;
  const setting: Record<string, string> = {
    postgresql: 'database.url (or DATABASE_URL)',
    temporal: 'temporal.address',
    ...Object.fromEntries(ticketSystems.map((m) => [m.name, `integrations.${m.name}.url`])),
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
