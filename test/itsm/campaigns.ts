// Driving campaigns through the real lifecycle for the ticket tests: scan changes dispatched to the
// campaign workflows (lifecycle/dispatch.ts), the owner's decisions through the decision API
// (lifecycle/decide.ts), and the campaign's ticket as the campaign records it.
import type { Client } from '@temporalio/client';
import type { Config } from '../../domain/config.ts';
import type { TicketRef } from '../../domain/ports.ts';
import type { Pool } from '../../runtime/pool.ts';
import { dispatchChanges, type ChangeKind } from '../../lifecycle/dispatch.ts';
import { decideCampaign, decideExposures } from '../../lifecycle/decide.ts';
import { readCampaign } from '../../lifecycle/campaigns.ts';
import type { ComposeOptions } from '../../app/compose.ts';
import { testDeps } from '../support/deps.ts';
import { eventually } from '../lifecycle/support.ts';

/** Generous: the machine may be loaded; nothing here measures speed. */
export const WAIT = 240_000;

const olivia = { personId: 'olivia', via: 'api' as const };

export function campaignDriver(opts: {
  client: Client;
  pool: Pool;
  config: Config;
  taskQueue: string;
  registry?: ComposeOptions['registry'];
  /** Heartbeat timeout of the campaign's outside calls (the crash test lowers it). */
  heartbeatTimeoutMs?: number;
}) {
  const deps = testDeps({
    pool: opts.pool,
    config: opts.config,
    ...(opts.registry ? { registry: opts.registry } : {}),
  });
  return {
    /** What a scan said about some exposures, dispatched to their campaigns. */
    dispatch: async (ids: string[], change: ChangeKind, scan: { scanId: number; at: string }) =>
      await dispatchChanges(
        deps,
        opts.client,
        ids.map((exposureId) => ({ exposureId, change, scanId: scan.scanId, at: scan.at })),
        {
          taskQueue: opts.taskQueue,
          ...(opts.heartbeatTimeoutMs ? { heartbeatTimeoutMs: opts.heartbeatTimeoutMs } : {}),
        },
      ),
    /** The owner approves the whole campaign: every exposure waiting for a decision. */
    approveCampaign: async (campaignId: string) => {
      const r = await decideCampaign(opts.client, opts.pool, campaignId, { kind: 'approve', actor: olivia });
      if (r.applied.length === 0) throw new Error(`approval of ${campaignId} refused: ${r.reason}`);
      return r;
    },
    /** The owner approves some exposures (an exception, or newcomers to a running campaign). */
    approve: async (ids: string[]) => {
      const r = await decideExposures(opts.client, opts.pool, ids, { kind: 'approve', actor: olivia });
      for (const [id, a] of r) if (!a.ok) throw new Error(`approval of ${id} refused: ${a.reason}`);
      return r;
    },
    /** The campaign's ticket, once its first approval round has opened it. */
    ticketOf: async (campaignId: string): Promise<TicketRef> =>
      (await eventually(
        `the ticket of ${campaignId}`,
        () => readCampaign(opts.pool, campaignId),
        (c) => c?.ticket !== undefined,
        WAIT,
      ))!.ticket!,
  };
}
