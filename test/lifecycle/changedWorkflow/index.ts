// The campaign workflow with an unguarded change (a timer before anything else, as a careless edit
// might add): replaying a recorded history against it must fail. Used by replay.test.ts to prove
// the replay check catches determinism breaks.
import { sleep } from '@temporalio/workflow';
import { campaignWorkflow as current } from '../../../workflows/campaign/workflow.ts';
import type { CampaignWorkflowInput } from '../../../contracts/campaign.ts';

export async function campaignWorkflow(input: CampaignWorkflowInput): Promise<void> {
  await sleep('1 second');
  await current(input);
}
