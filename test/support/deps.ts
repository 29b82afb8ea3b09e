// The dependencies a test runs with, built by the product's own composition root (app/compose.ts)
// with the test's registry; what a composition starts (a chat runtime) is stopped after the file.
import { afterAll } from 'vitest';
import { pino } from 'pino';
import { compose, type ComposeOptions, type Composition } from '../../app/compose.ts';
import type { Deps } from '../../runtime/deps.ts';

const open: Composition[] = [];
afterAll(() => {
  for (const c of open.splice(0)) c.stop();
});

export type TestComposeOptions = Partial<ComposeOptions> & Pick<ComposeOptions, 'pool' | 'config'>;

export function testComposition(opts: TestComposeOptions): Composition {
  const c = compose({
    baseDir: process.cwd(),
    log: pino({ level: process.env.CTEM_TEST_LOG ?? 'silent' }),
    ...opts,
  });
  open.push(c);
  return c;
}

export function testDeps(opts: TestComposeOptions): Deps {
  return testComposition(opts).deps;
}
