import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../domain/config.ts';
import {
  TemporalSettingsError,
  temporalConnectionOptions,
  validateTemporalConnection,
} from './temporalConnection.ts';

const config = (temporal: Record<string, unknown>) => configSchema.parse({ version: 1, temporal });

describe('the settings of a Temporal cluster or Temporal Cloud, checked at start', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ctem-tls-'));
  writeFileSync(path.join(dir, 'client.pem'), 'CERT');
  writeFileSync(path.join(dir, 'client.key'), 'KEY');

  it('accepts mTLS files that exist and an API key that resolves, and connects with them', () => {
    const mtls = config({
      address: 'ctem.a1b2c.tmprl.cloud:7233',
      namespace: 'ctem.a1b2c',
      tls: { certFile: 'client.pem', keyFile: 'client.key' },
    });
    expect(() => validateTemporalConnection(mtls, dir, {})).not.toThrow();
    const opts = temporalConnectionOptions(mtls, mtls.temporal.address!, dir);
    expect(opts.tls).toMatchObject({ clientCertPair: { crt: Buffer.from('CERT'), key: Buffer.from('KEY') } });

    const cloud = config({ address: 'us-east-1.aws.api.temporal.io:7233', apiKey: 'env:CTEM_T_KEY' });
    expect(() => validateTemporalConnection(cloud, dir, { CTEM_T_KEY: 'k' })).not.toThrow();
  });

  it('says every problem in one sentence each before anything starts', () => {
    const bad = config({
      address: 'temporal:7233',
      tls: { certFile: 'missing.pem', caFile: 'ca.pem' },
      apiKey: 'env:CTEM_T_NO_KEY',
    });
    let error: unknown;
    try {
      validateTemporalConnection(bad, dir, {});
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(TemporalSettingsError);
    const message = (error as Error).message;
    expect(message).toContain('temporal.tls: certFile and keyFile go together');
    expect(message).toContain(`temporal.tls.certFile: cannot read ${path.join(dir, 'missing.pem')} (ENOENT)`);
    expect(message).toContain(`temporal.tls.caFile: cannot read ${path.join(dir, 'ca.pem')} (ENOENT)`);
    expect(message).toContain('temporal.apiKey: the environment variable CTEM_T_NO_KEY is not set');
    expect(() => validateTemporalConnection(config({ apiKey: 'env:K' }), dir, { K: 'k' })).toThrow(
      'temporal.apiKey is set but temporal.address is not',
    );
  });
});
