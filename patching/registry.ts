// The patch executors ctem knows, one line each (scopes[].patch.executor names one).
import type { PatchExecutorModule } from './module.ts';
import { demo } from './demo/index.ts';
import { satellite } from './satellite/index.ts';
import { ssh } from './ssh/index.ts';
import { wsus } from './wsus/index.ts';

/** Add one line per patch executor. */
export const patchExecutors: readonly PatchExecutorModule[] = [ssh, satellite, wsus, demo];
