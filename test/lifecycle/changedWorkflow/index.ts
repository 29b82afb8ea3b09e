// The exposure workflow with an unguarded change (a timer before anything else, as a careless edit
// might add): replaying a recorded history against it must fail. Used by replay.test.ts to prove
// the replay check catches determinism breaks.
import { sleep } from '@temporalio/workflow';
import { exposureWorkflow as current } from '../../../workflows/exposure/workflow.ts';
import type { ExposureWorkflowInput } from '../../../contracts/exposureInput.ts';

export async function exposureWorkflow(input: ExposureWorkflowInput) {
  await sleep('1 second');
  return await current(input);
}
