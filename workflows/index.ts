// Every workflow type the worker registers. Workflow code runs in Temporal's deterministic sandbox:
// no Node built-ins and no I/O here (eslint enforces it); activities are imported as types only.
export { healthProbe } from './health.ts';
