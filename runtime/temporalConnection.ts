import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Connection as ClientConnection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Config } from '../domain/config.ts';
import { resolveSecret } from './config.ts';

export class TemporalSettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemporalSettingsError';
  }
}

/**
 * The connection settings a cluster or Temporal Cloud needs, checked before anything starts: a
 * client certificate comes with its key, every file named is readable, the API key resolves.
 */
export function validateTemporalConnection(config: Config, baseDir: string, env = process.env): void {
  const t = config.temporal;
  const problems: string[] = [];
  if (t.tls) {
    if (!!t.tls.certFile !== !!t.tls.keyFile)
      problems.push(
        'temporal.tls: certFile and keyFile go together (the client certificate and its private key; CTEM_TEMPORAL_TLS_CERT_FILE / CTEM_TEMPORAL_TLS_KEY_FILE)',
      );
    for (const field of ['certFile', 'keyFile', 'caFile'] as const) {
      const file = t.tls[field];
      if (!file) continue;
      try {
        readFileSync(path.resolve(baseDir, file));
      } catch (err) {
        problems.push(
          `temporal.tls.${field}: cannot read ${path.resolve(baseDir, file)} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
        );
      }
    }
    if (!t.address)
      problems.push(
        'temporal.tls is set but temporal.address is not: TLS settings are for a cluster or Temporal Cloud',
      );
  }
  if (t.apiKey) {
    try {
      if (!resolveSecret(t.apiKey, env, baseDir)) problems.push('temporal.apiKey resolves to an empty value');
    } catch (err) {
      problems.push(`temporal.apiKey: ${(err as Error).message}`);
    }
    if (!t.address)
      problems.push(
        'temporal.apiKey is set but temporal.address is not: an API key is for Temporal Cloud or a cluster',
      );
  }
  if (problems.length) throw new TemporalSettingsError(problems.join('; '));
}

/** Connection options from config: plain for the embedded server, mTLS or API key for a cluster/Cloud. */
export function temporalConnectionOptions(config: Config, address: string, baseDir: string) {
  const t = config.temporal;
  const read = (p: string) => readFileSync(path.resolve(baseDir, p));
  const tls = t.tls
    ? {
        serverNameOverride: t.tls.serverName,
        serverRootCACertificate: t.tls.caFile ? read(t.tls.caFile) : undefined,
        clientCertPair:
          t.tls.certFile && t.tls.keyFile
            ? { crt: read(t.tls.certFile), key: read(t.tls.keyFile) }
            : undefined,
      }
    : undefined;
  const apiKey = t.apiKey ? resolveSecret(t.apiKey, process.env, baseDir) : undefined;
  return { address, tls: tls ?? (apiKey ? true : undefined), apiKey };
}

export async function connectClient(
  config: Config,
  address: string,
  baseDir: string,
): Promise<ClientConnection> {
  return await ClientConnection.connect(temporalConnectionOptions(config, address, baseDir));
}

export async function connectWorker(
  config: Config,
  address: string,
  baseDir: string,
): Promise<NativeConnection> {
  return await NativeConnection.connect(temporalConnectionOptions(config, address, baseDir));
}
