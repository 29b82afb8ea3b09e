// The fuzz tests' sandbox: runs in a worker thread with a capped heap (test/fuzz/support.ts), so an
// input that makes a parser or loader loop forever or allocate without bound is caught (the thread is
// terminated or dies out of memory) instead of hanging or killing the test run. It answers each
// request with a clean result or the error, described.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parentPort } from 'node:worker_threads';
import { parseReport, parserFor } from '../../scanners/registry.ts';
import { InputError } from '../../domain/finding.ts';
import { ConfigError, parseConfig } from '../../domain/config.ts';
import { parsePolicy } from '../../domain/policy/schema.ts';
import type { FuzzReply, FuzzRequest } from './protocol.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ctem-fuzz-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

async function run(req: FuzzRequest): Promise<FuzzReply> {
  const bytes = Buffer.from(req.bytes);
  try {
    switch (req.mode) {
      case 'parser': {
        let findings = 0;
        const input = Readable.from([bytes]);
        for await (const f of parserFor(req.format!).parse(input, { file: req.file })) {
          if (!f || typeof f !== 'object')
            throw new Error('a parser yielded something that is not a finding');
          findings++;
        }
        return { id: req.id, ok: true, findings };
      }
      case 'report': {
        const file = path.join(dir, req.file);
        writeFileSync(file, bytes);
        let findings = 0;
        try {
          for await (const _ of parseReport(file, req.format ? { format: req.format } : {})) findings++;
        } finally {
          rmSync(file, { force: true });
        }
        return { id: req.id, ok: true, findings };
      }
      case 'config':
        parseConfig(bytes.toString('utf8'), req.file);
        return { id: req.id, ok: true, findings: 0 };
      case 'policy':
        parsePolicy(bytes.toString('utf8'), req.file);
        return { id: req.id, ok: true, findings: 0 };
    }
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    return {
      id: req.id,
      ok: false,
      name: e.name,
      message: e.message,
      stack: e.stack ?? '',
      clear: err instanceof InputError || err instanceof ConfigError,
    };
  }
}

parentPort!.on('message', (req: FuzzRequest) => {
  void run(req).then((reply) => parentPort!.postMessage(reply));
});
parentPort!.postMessage({ ready: true });
