import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyEnvOverrides, ConfigError, durationMs, parseConfig } from '../domain/config.ts';
import { resolveSecret } from '../runtime/config.ts';

const example = readFileSync(path.resolve(import.meta.dirname, '../ctem.example.yaml'), 'utf8');

function problems(text: string) {
  try {
    parseConfig(text, 'ctem.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected the config to be refused');
}

describe('ctem.yaml', () => {
  it('accepts the shipped example with its defaults filled in', () => {
    const cfg = parseConfig(example, 'ctem.example.yaml');
    expect(cfg.scopes.map((s) => s.name)).toEqual(['production', 'development']);
    const prod = cfg.scopes[0]!;
    expect(prod.roles.securityLead).toEqual(['carol']);
    expect(prod.cia).toEqual({ confidentiality: 'H', integrity: 'H', availability: 'H' });
    expect(cfg.scopes[1]!.internetFacing).toBe(false);
    expect(cfg.temporal.address).toBeUndefined();
    expect(cfg.http.port).toBe(8080);
  });

  it('names the line and field of a wrong value', () => {
    const text = ['version: 1', 'scopes:', '  - name: prod', '    cadence: weekly'].join('\n');
    expect(problems(text)).toEqual([
      {
        file: 'ctem.yaml',
        line: 4,
        column: 14,
        field: 'scopes[0].cadence',
        message: 'must be a duration such as 30m, 12h, 7d or 2w',
      },
    ]);
  });

  it('refuses unknown keys, so a typo is not silently ignored', () => {
    const [p] = problems(['version: 1', 'scopes:', '  - name: prod', '    cadense: 1d'].join('\n'));
    expect(p?.line).toBe(3);
    expect(p?.message).toMatch(/cadense/);
  });

  it('refuses a role naming a person who does not exist', () => {
    const [p] = problems(
      ['version: 1', 'scopes:', '  - name: prod', '    roles:', '      owner: [mallory]'].join('\n'),
    );
    expect(p).toMatchObject({
      field: 'scopes[0].roles.owner[0]',
      line: 5,
      message: 'unknown person "mallory": add it under people',
    });
  });

  it('refuses a secret written in clear', () => {
    const [p] = problems(['version: 1', 'database:', '  url: postgres://u:hunter2@db/ctem'].join('\n'));
    expect(p).toMatchObject({ field: 'database.url', line: 3 });
    expect(p?.message).toMatch(/secret reference/);
  });

  it('reports YAML syntax errors with their position', () => {
    const [p] = problems('version: 1\nscopes: [\n');
    expect(p?.file).toBe('ctem.yaml');
    expect(p?.line).toBeGreaterThanOrEqual(2);
  });

  it('applies environment overrides for production settings', () => {
    const cfg = applyEnvOverrides(parseConfig('version: 1'), {
      CTEM_TEMPORAL_ADDRESS: 'temporal.internal:7233',
      CTEM_TEMPORAL_NAMESPACE: 'ctem-prod',
      DATABASE_URL: 'postgres://x',
      CTEM_HTTP_PORT: '9090',
    });
    expect(cfg.temporal).toMatchObject({ address: 'temporal.internal:7233', namespace: 'ctem-prod' });
    expect(cfg.database.url).toBe('env:DATABASE_URL');
    expect(cfg.http.port).toBe(9090);
    expect(() => applyEnvOverrides(cfg, { CTEM_HTTP_PORT: 'eighty' })).toThrow(/CTEM_HTTP_PORT/);
    // Metrics: a loopback listener of their own unless said otherwise.
    expect(parseConfig('version: 1').metrics).toEqual({ enabled: true, host: '127.0.0.1', port: 9464 });
    const m = applyEnvOverrides(cfg, {
      CTEM_METRICS_PORT: '0',
      CTEM_METRICS_HOST: '0.0.0.0',
      CTEM_METRICS_TOKEN: 't',
    });
    expect(m.metrics).toEqual({ enabled: true, host: '0.0.0.0', port: 0, token: 'env:CTEM_METRICS_TOKEN' });
    expect(() => applyEnvOverrides(cfg, { CTEM_METRICS_PORT: '70000' })).toThrow(
      'CTEM_METRICS_PORT: must be a port number 0-65535',
    );
  });

  it('chooses the embedded Temporal (dev server or Temporal server) and its settings, in the file or the environment', () => {
    const dflt = parseConfig('version: 1');
    expect(dflt.temporal.embedded).toBe('dev');
    expect(dflt.temporal.server).toEqual({
      shards: 4,
      retentionDays: 30,
      database: 'temporal',
      visibilityDatabase: 'temporal_visibility',
      maxConns: 20,
    });
    expect(dflt.http.reusePort).toBe(false);
    const file = parseConfig(
      [
        'version: 1',
        'temporal:',
        '  embedded: server',
        '  server:',
        '    shards: 16',
        'http:',
        '  reusePort: true',
      ].join('\n'),
    );
    expect(file.temporal.embedded).toBe('server');
    expect(file.temporal.server.shards).toBe(16);
    expect(file.temporal.server.database).toBe('temporal');
    expect(file.http.reusePort).toBe(true);

    const env = applyEnvOverrides(dflt, {
      CTEM_TEMPORAL_EMBEDDED: 'server',
      CTEM_TEMPORAL_SHARDS: '8',
      CTEM_HTTP_REUSE_PORT: '1',
      CTEM_TEMPORAL_TLS_CERT_FILE: '/run/secrets/client.pem',
      CTEM_TEMPORAL_TLS_KEY_FILE: '/run/secrets/client.key',
    });
    expect(env.temporal.embedded).toBe('server');
    expect(env.temporal.server.shards).toBe(8);
    expect(env.http.reusePort).toBe(true);
    expect(env.temporal.tls).toEqual({
      certFile: '/run/secrets/client.pem',
      keyFile: '/run/secrets/client.key',
    });
    expect(() => applyEnvOverrides(dflt, { CTEM_TEMPORAL_EMBEDDED: 'cluster' })).toThrow(
      'CTEM_TEMPORAL_EMBEDDED: must be dev or server',
    );
    expect(() => applyEnvOverrides(dflt, { CTEM_TEMPORAL_SHARDS: '0' })).toThrow(
      'CTEM_TEMPORAL_SHARDS: must be a whole number 1-16384',
    );
    expect(() => applyEnvOverrides(dflt, { CTEM_HTTP_REUSE_PORT: 'yes' })).toThrow(
      'CTEM_HTTP_REUSE_PORT: must be 0 or 1',
    );
    // A Temporal of its own and an address of another are two answers to one question.
    expect(() =>
      applyEnvOverrides(dflt, { CTEM_TEMPORAL_EMBEDDED: 'server', CTEM_TEMPORAL_ADDRESS: 'temporal:7233' }),
    ).toThrow(/cannot be combined with a temporal.address/);
    const [both] = problems(
      ['version: 1', 'temporal:', '  address: temporal:7233', '  embedded: server'].join('\n'),
    );
    expect(both).toMatchObject({ field: 'temporal.embedded' });
    const [shards] = problems(['version: 1', 'temporal:', '  server:', '    shards: 0'].join('\n'));
    expect(shards).toMatchObject({ field: 'temporal.server.shards', line: 4 });
  });

  it('reads secrets from the environment or a file, and says which one is missing', () => {
    expect(resolveSecret('env:CTEM_T_SECRET', { CTEM_T_SECRET: 's3cr3t' })).toBe('s3cr3t');
    expect(() => resolveSecret('env:CTEM_T_MISSING', {})).toThrow(
      'the environment variable CTEM_T_MISSING is not set',
    );
    expect(resolveSecret('file:ctem.example.yaml', {}, path.resolve(import.meta.dirname, '..'))).toMatch(
      /^# ctem.yaml/,
    );
    expect(() => resolveSecret('file:/nonexistent/key', {})).toThrow(/does not exist/);
  });

  it('converts durations', () => {
    expect(durationMs('90s')).toBe(90_000);
    expect(durationMs('2w')).toBe(14 * 86_400_000);
  });
});
