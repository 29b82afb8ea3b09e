// What a patch executor is to ctem, in one interface: its name (`scopes[].patch.executor`), how it
// is built for a scope (its `integrations.<name>` section validated on the way), and its doctor
// checks. Each executor is a folder (patching/ssh/, patching/satellite/, patching/wsus/,
// patching/demo/) exporting one module, registered with one line in patching/registry.ts. An
// executor that applies advisories by id also says which ids it recognises (PatchExecutor.advisoriesIn).
import type { Config, SecretRef } from '../domain/config.ts';
import type { PatchExecutor } from '../domain/ports.ts';
import type { PatchExecutorContext } from './executors.ts';

/** One `ctem doctor` check: its name ("ssh:web-01"), and the round trip that says what it proved. */
export interface ExecutorCheck {
  name: string;
  check(): Promise<string>;
}

export interface PatchExecutorModule {
  readonly name: string;
  /** The executor a scope uses, guarded (patching/executors.ts); throws a non-retryable failure on a config mistake. */
  create(ctx: PatchExecutorContext): PatchExecutor;
  /** Checks of its configured section; none when ctem.yaml does not configure it. */
  doctor?(config: Config, secret: (ref: SecretRef) => string): ExecutorCheck[];
}
