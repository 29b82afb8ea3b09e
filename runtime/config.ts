import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  applyEnvOverrides,
  ConfigError,
  defaultConfig,
  parseConfig,
  type Config,
  type SecretRef,
} from '../domain/config.ts';

export interface LoadedConfig {
  config: Config;
  /** The file it came from, or undefined for built-in defaults. */
  file?: string;
  /** Folder relative paths in the config resolve against. */
  baseDir: string;
}

/**
 * Load ctem.yaml: --config FILE, else $CTEM_CONFIG, else ./ctem.yaml when present, else built-in
 * defaults (embedded services, no scopes). Environment overrides apply last.
 */
export function loadConfig(explicit?: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const chosen = explicit || env.CTEM_CONFIG || (existsSync('ctem.yaml') ? 'ctem.yaml' : undefined);
  if (!chosen) return { config: applyEnvOverrides(defaultConfig(), env), baseDir: process.cwd() };
  const file = path.resolve(chosen);
  if (!existsSync(file)) {
    throw new ConfigError([
      {
        file: chosen,
        field: '',
        message: 'file not found; copy ctem.example.yaml to ctem.yaml or pass --config FILE',
      },
    ]);
  }
  const config = parseConfig(readFileSync(file, 'utf8'), chosen);
  return { config: applyEnvOverrides(config, env), file, baseDir: path.dirname(file) };
}

/** Read a secret from the environment or a file. The value is returned, never logged. */
export function resolveSecret(
  ref: SecretRef,
  env: NodeJS.ProcessEnv = process.env,
  baseDir = process.cwd(),
): string {
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    const value = env[name];
    if (value === undefined || value === '')
      throw new Error(`the environment variable ${name} is not set (referenced as ${ref})`);
    return value;
  }
  const file = path.resolve(baseDir, ref.slice(5));
  if (!existsSync(file)) throw new Error(`the secret file ${file} does not exist (referenced as ${ref})`);
  return readFileSync(file, 'utf8').trim();
}
