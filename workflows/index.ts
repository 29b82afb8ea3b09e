// Every workflow type the worker registers. Workflow code runs in Temporal's deterministic sandbox:
// no Node built-ins and no I/O here (eslint enforces it); activities are imported as types only.
export { healthProbe } from './health.ts';
export { campaignWorkflow } from './campaign/workflow.ts';
export { patchRollout } from './patch.ts';
export {
  scheduledScanCycle,
  scheduledFeedSync,
  scheduledDigest,
  scheduledOwnerQueues,
  scheduledEscalations,
} from './schedules.ts';
export { ticketStatusPoll } from './tickets.ts';
