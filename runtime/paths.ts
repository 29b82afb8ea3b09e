import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (where package.json lives), whatever the current directory. */
export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Where embedded state lives (PostgreSQL data dir, Temporal db file, pid files, logs).
 * CTEM_HOME overrides; the default is `.ctem/` in the current directory, so two checkouts or two
 * demo folders never share state by accident.
 */
export function ctemHome(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.CTEM_HOME ?? '.ctem');
}

/** Where the project's setup installs the pinned Temporal CLI. */
export const bundledBinDir = path.join(projectRoot, '.ctem', 'bin');
