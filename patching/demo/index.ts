// The demo executor of `ctem demo` (changes no machine, and says so).
import type { PatchExecutorModule } from '../module.ts';
import { createDemoPatchExecutor } from './executor.ts';

export const demo: PatchExecutorModule = {
  name: 'demo',
  create: () => createDemoPatchExecutor(),
};
