import { describe, expect, it } from 'vitest';
import {
  sqlTarget,
  startTemporalServer,
  temporalServerConfig,
  temporalServerPorts,
} from './temporalServer.ts';

describe('the Temporal server configuration', () => {
  it('follows Temporal port layout from the frontend port, and takes explicit ports', () => {
    expect(temporalServerPorts(7233)).toEqual({
      frontend: 7233,
      frontendHttp: 7243,
      history: 7234,
      matching: 7235,
      worker: 7239,
      frontendMembership: 6933,
      historyMembership: 6934,
      matchingMembership: 6935,
      workerMembership: 6939,
    });
    expect(temporalServerPorts(7233, { history: 9000 }).history).toBe(9000);
  });

  it('reads the PostgreSQL URL, TLS from sslmode', () => {
    expect(sqlTarget('postgres://ctem:p%40ss@db.example:6543/ctem?sslmode=verify-full')).toEqual({
      host: 'db.example',
      port: 6543,
      user: 'ctem',
      password: 'p@ss',
      tls: 'verify',
    });
    expect(sqlTarget('postgresql://u:p@h/x?sslmode=require').tls).toBe('on');
    expect(sqlTarget('postgres://u:p@h/x').port).toBe(5432);
    expect(() => sqlTarget('mysql://u:p@h/x')).toThrow(
      'the Temporal server needs a postgres:// URL, not mysql://',
    );
    expect(() => sqlTarget('not a url')).toThrow('is not a URL');
  });

  it('renders PostgreSQL persistence and visibility, the shards, and the password only as a template reference', () => {
    const target = sqlTarget('postgres://ctem:s3cret-Pw@127.0.0.1:55432/ctem?sslmode=require');
    const yaml = temporalServerConfig({
      target,
      ports: temporalServerPorts(7233),
      shards: 8,
      databases: { main: 'temporal', visibility: 'temporal_visibility' },
      maxConns: 20,
      logLevel: 'warn',
      dynamicConfigFile: '/x/dynamicconfig.yaml',
    });
    expect(yaml.startsWith('# enable-template\n')).toBe(true);
    expect(yaml).not.toContain('s3cret-Pw');
    expect(yaml).toContain('password: {{ env "CTEM_TEMPORAL_SQL_PASSWORD" | quote }}');
    expect(yaml).toContain('numHistoryShards: 8');
    expect(yaml).toMatch(/ctem-default:\n\s+sql:\n\s+pluginName: postgres12\n\s+databaseName: "temporal"\n/);
    expect(yaml).toMatch(
      /ctem-visibility:\n\s+sql:\n\s+pluginName: postgres12\n\s+databaseName: "temporal_visibility"\n/,
    );
    expect(yaml).toContain('visibilityStore: ctem-visibility');
    expect(yaml).toContain('tls:\n          enabled: true\n          enableHostVerification: false');
    expect(yaml).toContain('rpcAddress: 127.0.0.1:7233');
    for (const port of [7233, 7234, 7235, 7239, 6933, 6934, 6935, 6939, 7243])
      expect(yaml).toContain(`: ${port}`);
  });

  it('refuses a frontend port whose membership ports Temporal cannot record, before it starts anything', async () => {
    await expect(
      startTemporalServer({ databaseUrl: 'postgres://u:p@127.0.0.1:1/x', dir: '/nonexistent', port: 40_000 }),
    ).rejects.toThrow(
      "the Temporal server's frontendMembership port 39700 is outside 1-32767 (Temporal stores membership ports as a smallint): set CTEM_TEMPORAL_PORT to a frontend port between 301 and 33061",
    );
    await expect(
      startTemporalServer({
        databaseUrl: 'postgres://u:p@127.0.0.1:1/x',
        dir: '/nonexistent',
        port: 7233,
        shards: 0,
      }),
    ).rejects.toThrow('temporal.server.shards must be a whole number ≥ 1');
  });
});
