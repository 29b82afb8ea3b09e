// The guards of the house (.dependency-cruiser.cjs, run by `npm run check`) catch what they are for:
// a small project laid out like this one, with one deliberate violation of each rule, is checked
// with the project's own configuration, and every violation is named.
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'ctem-guards-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(rel: string, text: string): void {
  mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
  writeFileSync(path.join(dir, rel), text);
}

async function violations(): Promise<string[]> {
  cpSync(path.join(root, '.dependency-cruiser.cjs'), path.join(dir, '.dependency-cruiser.cjs'));
  cpSync(path.join(root, 'tsconfig.json'), path.join(dir, 'tsconfig.json'));
  const bin = path.join(root, 'node_modules/dependency-cruiser/bin/dependency-cruiser.mjs');
  const out = await run(
    process.execPath,
    [bin, '--config', '.dependency-cruiser.cjs', '--output-type', 'json', '.'],
    {
      cwd: dir,
      maxBuffer: 16 * 1024 * 1024,
    },
  ).catch((err: { stdout: string }) => ({ stdout: err.stdout }));
  const report = JSON.parse(out.stdout) as {
    summary: { violations: { rule: { name: string }; from: string; to: string }[] };
  };
  return report.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`).sort();
}

describe('the guards of the house', () => {
  it('name every import cycle, impure domain module and import against the layers', async () => {
    file('domain/exposure.ts', "export type State = 'open';\n");
    // A cycle held only by a type import still counts.
    file('lifecycle/a.ts', "import { b } from './b.ts';\nexport const a = (): number => b();\n");
    file(
      'lifecycle/b.ts',
      "import type { a } from './a.ts';\nexport const b = (): ReturnType<typeof a> => 1;\n",
    );
    file(
      'domain/impure.ts',
      "import { readFileSync } from 'node:fs';\nexport const read = () => readFileSync('x');\n",
    );
    file('domain/upward.ts', "import { a } from '../lifecycle/a.ts';\nexport const up = a;\n");
    file('app/main.ts', 'export const services = {};\n');
    file('cli/main.ts', "import { services } from '../app/main.ts';\nexport const s = services;\n");
    file('activities/lifecycle.ts', 'export const act = 1;\n');
    file('bots/app.ts', "import { act } from '../activities/lifecycle.ts';\nexport const bot = act;\n");
    file('tickets/jira.ts', "import { bot } from '../bots/app.ts';\nexport const j = bot;\n");
    file('workflows/flow.ts', "import { a } from '../lifecycle/a.ts';\nexport const f = a;\n");
    file(
      'workflows/typed.ts',
      "import type { act } from '../activities/lifecycle.ts';\nexport type T = typeof act;\n",
    );
    expect(await violations()).toEqual(
      [
        'capabilities-below-adapters: tickets/jira.ts → bots/app.ts',
        'bots-are-adapters: bots/app.ts → activities/lifecycle.ts',
        'cli-is-an-adapter: cli/main.ts → app/main.ts',
        'domain-is-pure: domain/impure.ts → fs',
        'domain-is-pure: domain/upward.ts → lifecycle/a.ts',
        'domain-no-builtins: domain/impure.ts → fs',
        'no-cycle: lifecycle/a.ts → lifecycle/b.ts',
        'nothing-imports-the-composition-root: cli/main.ts → app/main.ts',
        'workflows-are-deterministic: workflows/flow.ts → lifecycle/a.ts',
      ].sort(),
    );
  }, 60_000);
});
