// The ingest activities as the worker registers them: a report file in, a bad file refused for good.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { testDatabase } from '../support/db.ts';
import { createIngestActivities } from '../../activities/ingest.ts';
import { configSchema } from '../../domain/config.ts';
import { testDeps } from '../support/deps.ts';

describe('ingest activities', () => {
  it('ingests a report file relative to the config folder, and fails a broken one as non-retryable', async () => {
    const db = await testDatabase();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ctem-ingest-activity-'));
    writeFileSync(
      path.join(dir, 'scan.xml'),
      `<?xml version="1.0"?><nmaprun scanner="nmap" start="1700000000"><host><status state="up"/><address addr="192.0.2.7" addrtype="ipv4"/><ports><port protocol="tcp" portid="22"><state state="open"/><service name="ssh"/></port></ports></host></nmaprun>`,
    );
    writeFileSync(path.join(dir, 'broken.xml'), `<?xml version="1.0"?><nmaprun scanner="nmap"><host>`);
    const config = configSchema.parse({
      version: 1,
      scopes: [{ name: 'edge', match: { cidrs: ['192.0.2.0/24'] } }],
    });
    const activities = createIngestActivities(testDeps({ pool: db.pool, config, baseDir: dir }));
    const summary = await activities.ingestScanReport({ path: 'scan.xml', scope: 'edge', cycle: true });
    expect(summary).toMatchObject({ status: 'ingested', format: 'nmap', findings: 1, exposures: { new: 1 } });
    const err = await activities.ingestScanReport({ path: 'broken.xml' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as ApplicationFailure).message).toMatch(/broken\.xml/);
    expect(await activities.retireUnseenAssets()).toEqual([
      { scope: 'edge', scanId: summary.scanId, retired: [] },
    ]);
  });
});
