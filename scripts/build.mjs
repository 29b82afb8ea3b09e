#!/usr/bin/env node
// Compiles the TypeScript sources to JavaScript in dist/ (ignored by git), one file for each source
// file, so that `ctem` starts without a TypeScript loader. Built by setup, and again by bin/ctem.js
// whenever a source file changed since the last build.
//
//   node scripts/build.mjs     build now if anything changed; print where the build is
//
// Each build lives in dist/<fingerprint>/, the fingerprint being a hash of every source file's path,
// size and modification time: concurrent `ctem` processes either find the build of their sources or
// make it, never see one half-written (a build is renamed into place whole), and an older build in use
// by a running process is left alone for a while before it is removed.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const distDir = path.join(root, 'dist');

/** Top-level folders that are not the product's code (tests and benchmarks run from source). */
const NOT_SOURCE = new Set([
  'node_modules',
  'dist',
  'test',
  'bench',
  'scripts',
  'templates',
  'policies',
  'demo',
]);

/** The folders that hold the product's code: every top-level folder but those above. */
function sourceDirs() {
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.') && !NOT_SOURCE.has(e.name))
    .map((e) => e.name);
}
/** Bump when the build's output changes shape, so that old builds are not reused. */
const FORMAT = 1;
/** How long an older build stays for processes that started on it and still load modules lazily. */
const KEEP_OLD_MS = 24 * 3600_000;

function isSource(name) {
  return name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts');
}

function sourceFiles() {
  const out = [];
  const walk = (rel) => {
    for (const entry of readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const child = path.join(rel, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'testdata' && entry.name !== 'node_modules') walk(child);
      } else if (isSource(entry.name)) out.push(child);
    }
  };
  for (const dir of sourceDirs()) walk(dir);
  return out.sort();
}

/** The sources and their fingerprint: cheap (one stat per file), so every `ctem` call can check it. */
export function fingerprint() {
  const files = sourceFiles();
  const h = createHash('sha256').update(`format ${FORMAT}\n`);
  for (const f of files) {
    const s = statSync(path.join(root, f));
    h.update(`${f}\0${s.size}\0${s.mtimeMs}\n`);
  }
  return { files, key: h.digest('hex').slice(0, 16) };
}

/** Where the build of the current sources is, building it first when there is none. */
export async function compiled() {
  const { files, key } = fingerprint();
  const out = path.join(distDir, key);
  if (existsSync(out)) return out;
  await build(files, out);
  prune(key);
  return out;
}

async function build(files, out) {
  const esbuild = await import('esbuild');
  mkdirSync(distDir, { recursive: true });
  const tmp = `${out}.tmp-${process.pid}-${Date.now()}`;
  /** Imports stay imports: relative ones point at the compiled .js file, packages are left to Node. */
  const keepImports = {
    name: 'keep-imports',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind === 'entry-point') return undefined;
        if (args.path.startsWith('.')) return { path: args.path.replace(/\.ts$/, '.js'), external: true };
        return { path: args.path, external: true };
      });
    },
  };
  try {
    await esbuild.build({
      absWorkingDir: root,
      entryPoints: files,
      outdir: tmp,
      outbase: '.',
      bundle: true,
      plugins: [keepImports],
      format: 'esm',
      platform: 'node',
      target: 'node24',
      sourcemap: 'linked',
      sourcesContent: false,
      logLevel: 'error',
    });
    try {
      renameSync(tmp, out);
    } catch (err) {
      // Another process built the same sources first: use theirs.
      if (!existsSync(out)) throw err;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Remove builds of older sources once nothing can still be loading from them. */
function prune(current) {
  const now = Date.now();
  for (const entry of readdirSync(distDir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name === current) continue;
    const dir = path.join(distDir, entry.name);
    const stale = entry.name.includes('.tmp-') ? 3600_000 : KEEP_OLD_MS;
    try {
      if (now - statSync(dir).mtimeMs > stale) rmSync(dir, { recursive: true, force: true });
    } catch {
      // removed by another process meanwhile
    }
  }
}

/** The compiled module for a source path, e.g. `cli/main.ts` → file URL of dist/<key>/cli/main.js. */
export function compiledUrl(buildDir, source) {
  return pathToFileURL(path.join(buildDir, source.replace(/\.ts$/, '.js'))).href;
}

const invokedDirectly = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const started = performance.now();
  const dir = await compiled();
  process.stderr.write(
    `build: ${path.relative(root, dir)} is current (${Math.round(performance.now() - started)} ms)\n`,
  );
}
