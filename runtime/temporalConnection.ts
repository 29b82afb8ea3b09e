import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Connection as ClientConnection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Config } from '../domain/config.ts';
import { resolveSecret } from './config.ts';

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
