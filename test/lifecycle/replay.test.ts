// Every recorded workflow history (test/lifecycle/histories/*.json: campaign workflows recorded from
// the lifecycle tests, patch rollouts from test/patching/rollout.test.ts, with CTEM_RECORD_HISTORIES=1)
// must replay against the current workflow code. A change that alters the commands an existing
// history produced fails here, in CI, before it can break running workflows; guard such changes with
// patched() (see workflows/campaign/workflow.ts).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { describe, expect, inject, it } from 'vitest';
import { historyFromFixture } from './histories.ts';

const dir = path.join(import.meta.dirname, 'histories');
const fixtures = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort();

describe('replaying recorded workflow histories', () => {
  it('has recorded histories covering the lifecycle paths', () => {
    expect(fixtures).toEqual(
      expect.arrayContaining([
        // Campaigns: every path of an exposure's lifecycle inside its campaign.
        'campaign-approved-rollout-verified.json',
        'campaign-bare-scope.json',
        'campaign-continued-as-new.json',
        'campaign-human-close-verified.json',
        'campaign-later-generation.json',
        'campaign-reassigned.json',
        'campaign-reopened.json',
        'campaign-rescored-ticket-refreshed.json',
        'campaign-risk-accepted-expired.json',
        'campaign-sla-ladder.json',
        'campaign-snoozed-and-back.json',
        // Patch rollouts, the campaign's child.
        'patch-rollout-canary-then-rest.json',
        'patch-rollout-failed-canary.json',
        'patch-rollout-rejected.json',
        'patch-rollout-satellite.json',
      ]),
    );
  });

  it.each(fixtures)('replays %s against the current code', async (file) => {
    const history = historyFromFixture(readFileSync(path.join(dir, file), 'utf8'));
    await Worker.runReplayHistory(
      { workflowBundle: { codePath: inject('workflowBundlePath') } },
      history,
      file,
    );
  });

  it('fails on an unguarded change to the workflow', async () => {
    const { code } = await bundleWorkflowCode({
      workflowsPath: path.join(import.meta.dirname, 'changedWorkflow', 'index.ts'),
      logger: {
        log: () => undefined,
        trace: () => undefined,
        debug: () => undefined,
        info: () => undefined,
        warn: () => undefined,
        error: () => undefined,
      },
    });
    const history = historyFromFixture(
      readFileSync(path.join(dir, 'campaign-approved-rollout-verified.json'), 'utf8'),
    );
    await expect(Worker.runReplayHistory({ workflowBundle: { code } }, history)).rejects.toBeInstanceOf(
      DeterminismViolationError,
    );
  });
});
