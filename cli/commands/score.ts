// `ctem score VECTOR [--cr L|M|H --ir … --ar …] [--modified MAV:A,…] [--exploit attacked|poc|unreported]`:
// CVSS v3.0/v3.1/v4.0 scores as JSON, no database.
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import {
  contextualCvss,
  CvssVectorError,
  scoreCvss,
  type ExploitMaturity,
  type Requirement,
} from '../../domain/cvss.ts';

export interface ScoreOptions {
  cr?: string;
  ir?: string;
  ar?: string;
  /** "MAV:A,MPR:H" */
  modified?: string;
  exploit?: string;
}

const REQUIREMENTS = ['L', 'M', 'H'];
const EXPLOIT = ['attacked', 'poc', 'unreported'];

/** Scores as a JSON-ready object; throws CvssVectorError or Error (bad option) with one clear sentence. */
export function scoreVector(vector: string, opts: ScoreOptions): object {
  for (const [name, value] of [
    ['--cr', opts.cr],
    ['--ir', opts.ir],
    ['--ar', opts.ar],
  ] as const)
    if (value !== undefined && !REQUIREMENTS.includes(value.toUpperCase()))
      throw new Error(`${name} must be L, M or H, not "${value}"`);
  if (opts.exploit !== undefined && !EXPLOIT.includes(opts.exploit))
    throw new Error(`--exploit must be attacked, poc or unreported, not "${opts.exploit}"`);
  const modified: Record<string, string> = {};
  for (const part of (opts.modified ?? '').split(',').filter((p) => p.trim() !== '')) {
    const [name, value, extra] = part.trim().split(':');
    if (!name || !value || extra !== undefined)
      throw new Error(
        `--modified takes METRIC:VALUE pairs separated by commas (e.g. MAV:A,MPR:H), not "${part}"`,
      );
    modified[name] = value;
  }
  const req = (v: string | undefined): Requirement | undefined => v?.toUpperCase() as Requirement | undefined;
  const contextual =
    opts.cr !== undefined ||
    opts.ir !== undefined ||
    opts.ar !== undefined ||
    Object.keys(modified).length > 0 ||
    opts.exploit !== undefined;
  if (!contextual) return scoreCvss(vector);
  return contextualCvss(vector, {
    requirements: {
      ...(req(opts.cr) ? { cr: req(opts.cr) } : {}),
      ...(req(opts.ir) ? { ir: req(opts.ir) } : {}),
      ...(req(opts.ar) ? { ar: req(opts.ar) } : {}),
    },
    modified,
    ...(opts.exploit ? { exploitMaturity: opts.exploit as ExploitMaturity } : {}),
  });
}

export function runScore(
  vector: string,
  opts: ScoreOptions,
  io: { stdout: Writable; stderr: Writable },
): number {
  try {
    io.stdout.write(`${JSON.stringify(scoreVector(vector, opts), null, 2)}\n`);
    return 0;
  } catch (err) {
    io.stderr.write(`ctem: ${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof CvssVectorError || err instanceof Error ? 2 : 1;
  }
}

export function defineScore(cmd: Command): void {
  cmd
    .argument('<vector>', 'e.g. CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H or CVSS:4.0/AV:N/…')
    .option('--cr <level>', 'confidentiality requirement of the scope: L, M or H')
    .option('--ir <level>', 'integrity requirement: L, M or H')
    .option('--ar <level>', 'availability requirement: L, M or H')
    .option(
      '--modified <metrics>',
      'modified base metrics, e.g. MAV:A for an asset reachable only from its local network',
    )
    .option('--exploit <maturity>', 'exploit maturity from threat intel: attacked, poc or unreported')
    .action((vector: string, opts: ScoreOptions) => {
      process.exitCode = runScore(vector, opts, { stdout: process.stdout, stderr: process.stderr });
    });
}
