// What each ticket system client provides: small remote primitives (find by external key, create,
// update, comment, transition), from which TicketSystem's idempotent operations are built once here.
// The PostgreSQL ledger (exactlyOnce.ts) wraps the same primitives for the exactly-once guarantee.
import { ApplicationFailure } from '@temporalio/activity';
import type { CampaignSummary, TicketRef, TicketStatusCategory, TicketSystem } from '../domain/ports.ts';
import { commentMarker, externalKeyFor } from './content.ts';
import { fittedView, fitText, type TicketView } from './view.ts';

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
  /** The most characters written in one description or comment (integrations.<name>.textLimit). */
  readonly textLimit: number;
  /**
   * What the ticket of a campaign (or a ticket group) says, its lists cut so the description fits
   * the text limit. `externalKey`: the key the ledger has for the ticket (default: a new one).
   */
  view(campaign: CampaignSummary, externalKey?: string): TicketView;
  /** What update() would write, for skipping unchanged updates. */
  contentHash(view: TicketView): string;
  /**
   * The ticket carrying the external key. `afterUnrecordedCreate`: an earlier create was sent and its
   * answer lost, so a miss may only mean the system's search has not caught up yet (Jira).
   */
  find(externalKey: string, opts?: FindOptions): Promise<TicketRef | undefined>;
  create(view: TicketView, campaign: CampaignSummary): Promise<TicketRef & { number?: string }>;
  update(ref: TicketRef, view: TicketView, campaign: CampaignSummary): Promise<void>;
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
  abstract readonly textLimit: number;

  async session<T>(fn: () => Promise<T>): Promise<T> {
    return await fn();
  }

  /** The description as sent: ADF for Jira, text or HTML for the others. */
  protected abstract describe(view: TicketView): unknown;
  /** Its size in characters, as the system counts it against the text limit. */
  protected describedSize(described: unknown): number {
    return typeof described === 'string' ? described.length : JSON.stringify(described).length;
  }

  /** How many characters a comment takes as sent, its marker included (ADF and HTML add markup). */
  protected commentSize(text: string, marker: string): number {
    return withMarker(text, marker).length;
  }

  /** A comment or note cut to the text limit, saying what it left out. */
  protected fitted(text: string, marker: string): string {
    return fitText(text, (t) => this.commentSize(t, marker) <= this.textLimit);
  }

  view(campaign: CampaignSummary, externalKey = externalKeyFor(campaign.id)): TicketView {
    return fittedView(
      campaign,
      {
        externalKey,
        ...(this.dashboardUrl ? { dashboardUrl: this.dashboardUrl } : {}),
        limit: this.textLimit,
        system: this.name,
      },
      (view) => this.describe(view),
      (described) => this.describedSize(described),
    ).view;
  }

  abstract contentHash(view: TicketView): string;
  abstract find(externalKey: string, opts?: FindOptions): Promise<TicketRef | undefined>;
  abstract create(view: TicketView, campaign: CampaignSummary): Promise<TicketRef & { number?: string }>;
  abstract update(ref: TicketRef, view: TicketView, campaign: CampaignSummary): Promise<void>;
  abstract hasComment(ref: TicketRef, marker: string): Promise<boolean>;
  abstract addComment(ref: TicketRef, text: string, marker: string): Promise<void>;
  abstract remoteStatus(ref: TicketRef): Promise<RemoteStatus>;
  abstract transition(ref: TicketRef, to: 'done' | 'open', note: string): Promise<void>;

  landingCategory(to: 'done' | 'open'): TicketStatusCategory {
    return to;
  }

  async upsert(campaign: CampaignSummary): Promise<TicketRef> {
    return await this.session(async () => {
      const view = this.view(campaign);
      const found = await this.find(view.externalKey);
      if (found) {
        await this.update(found, view, campaign);
        return found;
      }
      const { number: _number, ...ref } = await this.create(view, campaign);
      return ref;
    });
  }

  async comment(ref: TicketRef, text: string, idempotencyKey: string): Promise<void> {
    const marker = commentMarker(idempotencyKey);
    await this.session(async () => {
      if (!(await this.hasComment(ref, marker)))
        await this.addComment(ref, this.fitted(text, marker), marker);
    });
  }

  async close(ref: TicketRef, text: string): Promise<void> {
    await this.session(async () => {
      // The marker is of the whole text, so a retry with the same text is recognised.
      const marker = commentMarker(`${this.name}:${ref.key}:verified:${text}`);
      const resolution = this.fitted(text, marker);
      if ((await this.remoteStatus(ref)).category !== 'done') {
        await this.transition(ref, 'done', resolution);
        return;
      }
      // Closed already (by a person): tell them how the fix was verified, once.
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
      if ((await this.remoteStatus(ref)).category === 'done')
        await this.transition(ref, 'open', this.fitted(reason, commentMarker(reason)));
    });
  }

  async status(ref: TicketRef): Promise<TicketStatusCategory> {
    return await this.session(async () => (await this.remoteStatus(ref)).category);
  }
}
