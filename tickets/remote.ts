// What each ticket system client provides: small remote primitives (find by external key, create,
// update, comment, transition), from which TicketSystem's idempotent operations are built once here.
// The PostgreSQL ledger (exactlyOnce.ts) wraps the same primitives for the exactly-once guarantee.
import { ApplicationFailure } from '@temporalio/activity';
import type { CampaignSummary, TicketRef, TicketStatusCategory, TicketSystem } from '../domain/ports.ts';
import { commentMarker, ticketView, type TicketView } from './content.ts';

export interface RemoteStatus {
  category: TicketStatusCategory;
  /** The system's own status (name or number), for the record. */
  remote: string;
}

/** A ticket seen changed by a poll. */
export interface RemoteChange {
  key: string;
  category: TicketStatusCategory;
  remote: string;
  /** The system's own modification time, used as the poll position. */
  modifiedAt: string;
}

export interface FindOptions {
  afterUnrecordedCreate?: boolean;
}

export interface RemoteTicketSystem extends TicketSystem {
  /** Run a sequence of calls in one remote session (GLPI logs in once); others just run fn. */
  session<T>(fn: () => Promise<T>): Promise<T>;
  view(unit: CampaignSummary): TicketView;
  /** What update() would write, for skipping unchanged updates. */
  contentHash(view: TicketView): string;
  /**
   * The ticket carrying the external key. `afterUnrecordedCreate`: an earlier create was sent and its
   * answer lost, so a miss may only mean the system's search has not caught up yet (Jira).
   */
  find(externalKey: string, opts?: FindOptions): Promise<TicketRef | undefined>;
  create(view: TicketView, unit: CampaignSummary): Promise<TicketRef & { number?: string }>;
  update(ref: TicketRef, view: TicketView, unit: CampaignSummary): Promise<void>;
  hasComment(ref: TicketRef, marker: string): Promise<boolean>;
  addComment(ref: TicketRef, text: string, marker: string): Promise<void>;
  remoteStatus(ref: TicketRef): Promise<RemoteStatus>;
  /** Move the ticket into the done category, or back to open. Called only when it is not there yet. */
  transition(ref: TicketRef, to: 'done' | 'open', note: string): Promise<void>;
  /** The category a close or reopen lands in (a reopen may land "in progress", per the status mapping). */
  landingCategory(to: 'done' | 'open'): TicketStatusCategory;
  /** Tickets of ours changed since a poll position (systems without webhooks). */
  changedSince?(position: string | undefined): Promise<{ changes: RemoteChange[]; position: string }>;
}

/** The marker line appended to comments, so a retried comment is recognised on the ticket. */
export function withMarker(text: string, marker: string): string {
  return `${text.trimEnd()}\n\n[${marker}]`;
}

/**
 * TicketSystem from the primitives, with no local state: upsert finds by the external key before
 * creating, comment looks for its marker before posting, close/reopen do nothing when the ticket is
 * already there. Safe to retry; the ledger adds the PostgreSQL record and the locking.
 */
export abstract class RemoteTicketSystemBase implements RemoteTicketSystem {
  abstract readonly name: string;
  protected abstract readonly dashboardUrl: string | undefined;

  async session<T>(fn: () => Promise<T>): Promise<T> {
    return await fn();
  }

  view(unit: CampaignSummary): TicketView {
    return ticketView(unit, this.dashboardUrl);
  }

  abstract contentHash(view: TicketView): string;
  abstract find(externalKey: string, opts?: FindOptions): Promise<TicketRef | undefined>;
  abstract create(view: TicketView, unit: CampaignSummary): Promise<TicketRef & { number?: string }>;
  abstract update(ref: TicketRef, view: TicketView, unit: CampaignSummary): Promise<void>;
  abstract hasComment(ref: TicketRef, marker: string): Promise<boolean>;
  abstract addComment(ref: TicketRef, text: string, marker: string): Promise<void>;
  abstract remoteStatus(ref: TicketRef): Promise<RemoteStatus>;
  abstract transition(ref: TicketRef, to: 'done' | 'open', note: string): Promise<void>;

  landingCategory(to: 'done' | 'open'): TicketStatusCategory {
    return to;
  }

  async upsert(unit: CampaignSummary): Promise<TicketRef> {
    return await this.session(async () => {
      const view = this.view(unit);
      const found = await this.find(view.externalKey);
      if (found) {
        await this.update(found, view, unit);
        return found;
      }
      const { number: _number, ...ref } = await this.create(view, unit);
      return ref;
    });
  }

  async comment(ref: TicketRef, text: string, idempotencyKey: string): Promise<void> {
    const marker = commentMarker(idempotencyKey);
    await this.session(async () => {
      if (!(await this.hasComment(ref, marker))) await this.addComment(ref, text, marker);
    });
  }

  async close(ref: TicketRef, resolution: string): Promise<void> {
    await this.session(async () => {
      if ((await this.remoteStatus(ref)).category !== 'done') {
        await this.transition(ref, 'done', resolution);
        return;
      }
      // Closed already (by a person): tell them how the fix was verified, once.
      const marker = commentMarker(`${this.name}:${ref.key}:verified:${resolution}`);
      try {
        if (!(await this.hasComment(ref, marker))) await this.addComment(ref, resolution, marker);
      } catch (err) {
        // Some systems refuse notes on closed tickets; the note is a courtesy, the close stands.
        if (!(err instanceof ApplicationFailure && err.nonRetryable)) throw err;
      }
    });
  }

  async reopen(ref: TicketRef, reason: string): Promise<void> {
    await this.session(async () => {
      if ((await this.remoteStatus(ref)).category === 'done') await this.transition(ref, 'open', reason);
    });
  }

  async status(ref: TicketRef): Promise<TicketStatusCategory> {
    return await this.session(async () => (await this.remoteStatus(ref)).category);
  }
}
