// How a campaign shows its cells: the query views, and the row each exposure leaves in PostgreSQL.
// Pure functions of the cells and the time.
import type { CampaignView, CampaignWorkflowInput, ExposureView } from '../../contracts/campaign.ts';
import type { CampaignRef, ExposureRow } from '../../contracts/lifecycle.ts';
import { terminalStates, type ExposureState } from '../../domain/exposure.ts';
import { clockRuns, type Cell } from '../../domain/lifecycle.ts';
import { effectiveDue } from '../../domain/sla.ts';
import type { TicketRef } from '../../domain/ports.ts';

const iso = (ms: number) => new Date(ms).toISOString();
const RANK: Record<string, number> = { Act: 3, Attend: 2, 'Track*': 1, Track: 0 };

function slaDueOf(c: Cell, nowMs: number): string | undefined {
  return terminalStates.includes(c.state) ? undefined : iso(effectiveDue(c.clock, nowMs));
}

export function exposureRow(ref: CampaignRef, c: Cell, nowMs: number): ExposureRow {
  const due = slaDueOf(c, nowMs);
  return {
    exposureId: c.id,
    assetId: c.assetId,
    weaknessKey: c.weaknessKey,
    scope: ref.scope,
    campaignId: ref.campaignId,
    shard: ref.shard,
    state: c.state,
    priority: c.priority,
    ...(due ? { slaDue: due } : {}),
    policyVersion: c.policyVersion,
    ...(ref.owner ? { owner: ref.owner } : {}),
    ...(c.contextualCvss !== undefined ? { contextualCvss: c.contextualCvss } : {}),
    ...(c.kev !== undefined ? { kev: c.kev } : {}),
    escalationLevel: c.level,
    slaPaused: c.clock.pausedSinceMs !== undefined,
    ...(c.slaBreachedAt ? { slaBreachedAt: c.slaBreachedAt } : {}),
    ...(c.state === 'snoozed' && c.snoozedUntil ? { snoozedUntil: c.snoozedUntil } : {}),
    ...(c.state === 'risk-accepted' && c.riskAccepted
      ? { riskAcceptedUntil: c.riskAccepted.until, riskAcceptedBy: c.riskAccepted.by }
      : {}),
    ...(c.fixedAt ? { fixedAt: c.fixedAt } : {}),
    ...(c.verifiedBy ? { verifiedAt: c.verifiedBy.at, verifiedScanId: c.verifiedBy.scanId } : {}),
    ...(c.resolvedAt ? { resolvedAt: c.resolvedAt } : {}),
    ...(c.state === 'resolved' && c.resolvedAt
      ? { exposureSeconds: Math.round((Date.parse(c.resolvedAt) - Date.parse(c.firstSeen)) / 1000) }
      : {}),
    firstSeen: c.firstSeen,
    lifecycle: c.lifecycle,
    seq: c.seq,
  };
}

export function exposureView(input: CampaignWorkflowInput, c: Cell, nowMs: number): ExposureView {
  const due = slaDueOf(c, nowMs);
  return {
    exposureId: c.id,
    campaignId: input.campaignId,
    scope: input.scope,
    assetId: c.assetId,
    weaknessKey: c.weaknessKey,
    state: c.state,
    priority: c.priority,
    ...(due ? { slaDue: due } : {}),
    slaPaused: c.clock.pausedSinceMs !== undefined,
    slaStart: iso(c.clock.startMs),
    ...(input.owner ? { owner: input.owner } : {}),
    policyVersion: c.policyVersion,
    ...(c.contextualCvss !== undefined ? { contextualCvss: c.contextualCvss } : {}),
    ...(c.kev !== undefined ? { kev: c.kev } : {}),
    ...(c.rollout ? { patchRolloutId: c.rollout } : {}),
    escalationLevel: c.level,
    ...(c.slaBreachedAt ? { slaBreachedAt: c.slaBreachedAt } : {}),
    unverifiedWindows: c.unverifiedWindows,
    ...(c.snoozedUntil && c.state === 'snoozed' ? { snoozedUntil: c.snoozedUntil } : {}),
    ...(c.state === 'risk-accepted' && c.riskAccepted
      ? {
          riskAccepted: {
            by: c.riskAccepted.by,
            until: c.riskAccepted.until,
            justification: c.riskAccepted.justification,
          },
        }
      : {}),
    ...(c.fixedAt ? { fixedAt: c.fixedAt } : {}),
    ...(c.verifiedBy ? { verifiedBy: c.verifiedBy } : {}),
    firstSeen: c.firstSeen,
    ...(c.resolvedAt ? { resolvedAt: c.resolvedAt } : {}),
  };
}

export function campaignView(
  input: CampaignWorkflowInput,
  cells: Cell[],
  extra: { round: number; ticket?: TicketRef; wakeAtMs?: number },
): CampaignView {
  const states: Partial<Record<ExposureState, number>> = {};
  let nextDue: number | undefined;
  let priority: string | undefined;
  for (const c of cells) {
    states[c.state] = (states[c.state] ?? 0) + 1;
    if (clockRuns.includes(c.state) && c.clock.pausedSinceMs === undefined) {
      const due = c.clock.dueMs + c.clock.pausedMs;
      if (nextDue === undefined || due < nextDue) nextDue = due;
    }
    if (
      !terminalStates.includes(c.state) &&
      (priority === undefined || (RANK[c.priority] ?? -1) > (RANK[priority] ?? -1))
    )
      priority = c.priority;
  }
  return {
    campaignId: input.campaignId,
    shard: input.shard,
    scope: input.scope,
    ...(input.owner ? { owner: input.owner } : {}),
    states,
    exposures: cells.length,
    assets: new Set(cells.map((c) => c.assetId)).size,
    ...(nextDue !== undefined ? { nextDue: iso(nextDue) } : {}),
    ...(priority ? { priority } : {}),
    ...(extra.ticket ? { ticket: extra.ticket } : {}),
    round: extra.round,
    ...(extra.wakeAtMs !== undefined ? { wakeAt: iso(extra.wakeAtMs) } : {}),
  };
}
