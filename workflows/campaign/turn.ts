// What one turn of a campaign's main loop gathered from its cells' steps: the records to write (with
// each changed exposure's row), and the requests to merge — one decision request for every cell that
// asks, one message per topic, one ticket update per action, one re-scan per fix time.
import type { CampaignRef, ExposureRow, LifecycleRecord } from '../../contracts/lifecycle.ts';
import type { Cell, Effect, RecordEffect } from '../../domain/lifecycle.ts';
import type { EscalationAudience } from '../../domain/sla.ts';
import { exposureRow } from './views.ts';

interface Notice {
  notification: 'reminder' | 'escalation';
  level: number;
  audiences: EscalationAudience[];
  lines: string[];
  exposureIds: string[];
}

export class Turn {
  private recs: {
    exposureId: string;
    lifecycle: string;
    effect: RecordEffect;
    atMs: number;
    policyVersion: string;
  }[] = [];
  /** The latest state of every cell that recorded something, for its row. */
  private readonly latest = new Map<string, Cell>();
  /** Exposure → why the owner is asked. */
  readonly asks = new Map<string, string>();
  /** Topic → one message. */
  readonly notices = new Map<string, Notice>();
  readonly tickets = new Map<'comment' | 'reopen' | 'refresh', { texts: string[]; exposureIds: string[] }>();
  /** Fix time → one re-scan of the assets fixed then. */
  readonly rescans = new Map<
    string,
    { exposureIds: string[]; assetIds: number[]; weaknessKeys: string[]; window: number }
  >();

  constructor(private readonly ref: CampaignRef) {}

  take(cell: Cell, effects: Effect[], atMs: number): void {
    for (const e of effects) {
      switch (e.kind) {
        case 'record':
          this.recs.push({
            exposureId: cell.id,
            lifecycle: cell.lifecycle,
            effect: e,
            atMs,
            policyVersion: cell.policyVersion,
          });
          this.latest.set(cell.id, cell);
          break;
        case 'askOwner':
          this.asks.set(cell.id, e.why);
          break;
        case 'notify': {
          const n = this.notices.get(e.topic) ?? {
            notification: e.notification,
            level: e.level,
            audiences: e.audiences,
            lines: [],
            exposureIds: [],
          };
          n.lines.push(e.line);
          n.exposureIds.push(cell.id);
          this.notices.set(e.topic, n);
          break;
        }
        case 'ticket': {
          const t = this.tickets.get(e.action) ?? { texts: [], exposureIds: [] };
          if (!t.texts.includes(e.text)) t.texts.push(e.text);
          t.exposureIds.push(cell.id);
          this.tickets.set(e.action, t);
          break;
        }
        case 'rescan': {
          const r = this.rescans.get(e.fixedAt) ?? {
            exposureIds: [],
            assetIds: [],
            weaknessKeys: [],
            window: 0,
          };
          r.exposureIds.push(cell.id);
          r.assetIds.push(cell.assetId);
          r.weaknessKeys.push(cell.weaknessKey);
          r.window = Math.max(r.window, cell.unverifiedWindows);
          this.rescans.set(e.fixedAt, r);
          break;
        }
      }
    }
    // A later step of the same cell in this turn leaves the row it shows.
    if (this.latest.has(cell.id)) this.latest.set(cell.id, cell);
  }

  isEmpty(): boolean {
    return this.recs.length === 0 && !this.hasRequests();
  }

  hasRecords(): boolean {
    return this.recs.length > 0;
  }

  hasRequests(): boolean {
    return this.asks.size + this.notices.size + this.tickets.size + this.rescans.size > 0;
  }

  /**
   * The records so far, the last one of each exposure carrying its row as the turn leaves it; they
   * leave the turn (its requests stay, for the main loop).
   */
  takeRecords(nowMs: number): LifecycleRecord[] {
    const recs = this.recs;
    this.recs = [];
    const lastOf = new Map<string, number>();
    recs.forEach((r, i) => lastOf.set(r.exposureId, i));
    const records = recs.map((r, i) => {
      const cell = this.latest.get(r.exposureId)!;
      const e = r.effect;
      const row: ExposureRow | undefined =
        lastOf.get(r.exposureId) === i ? exposureRow(this.ref, cell, nowMs) : undefined;
      return {
        // The lifecycle the record was made in (a closed one may be followed by a new one).
        key: `${r.exposureId}:${r.lifecycle}:${e.seq}`,
        exposureId: r.exposureId,
        type: e.type,
        actor: e.actor ?? 'system',
        reason: e.reason,
        at: new Date(r.atMs).toISOString(),
        data: {
          seq: e.seq,
          campaignId: this.ref.campaignId,
          ...(e.from !== undefined ? { from: e.from, to: e.to } : {}),
          policyVersion: r.policyVersion,
          ...(e.inputs !== undefined ? { inputs: e.inputs } : {}),
          ...(e.evidence !== undefined ? { evidence: e.evidence } : {}),
        },
        ...(row ? { row } : {}),
      };
    });
    this.latest.clear();
    return records;
  }
}
