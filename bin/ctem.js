#!/usr/bin/env node
// The `ctem` command. It runs on Node 24 (re-running itself on the Node that setup installed in
// .ctem/node when the machine's own is older) from the compiled JavaScript in dist/, which it
// rebuilds first when a source file changed (scripts/build.mjs).
import { fileURLToPath } from 'node:url';
import { onSupportedNode } from '../scripts/node.mjs';

if (onSupportedNode(fileURLToPath(import.meta.url))) {
  const { compiled, compiledUrl } = await import('../scripts/build.mjs');
  const { main } = await import(compiledUrl(await compiled(), 'app/main.ts'));
  process.exitCode = await main(process.argv);
}
