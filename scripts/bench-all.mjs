#!/usr/bin/env node
// `npm run bench`: every `bench:<name>` script in package.json, one after the other. Each prints
// one JSON line per figure with its target. Benchmarks never gate CI; they are run on purpose.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const scripts = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).scripts;
const only = process.argv.slice(2);
let failed = 0;
for (const name of Object.keys(scripts).filter((s) => s.startsWith('bench:'))) {
  if (only.length && !only.includes(name.slice(6))) continue;
  process.stderr.write(`bench: ${name}\n`);
  const r = spawnSync('npm', ['run', '--silent', name], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
