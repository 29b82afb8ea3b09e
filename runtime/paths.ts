import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository root (where package.json lives), whatever the current directory: found by walking up
 * from this file, which runs from runtime/ (sources) or from a build under dist/ (scripts/build.mjs).
 */
export const projectRoot = findRoot(path.dirname(fileURLToPath(import.meta.url)));

function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

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
