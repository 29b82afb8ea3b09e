// What a ticket shows of its campaign (tickets/view.ts builds it; the templates in tickets/content.ts
// render it). Its own file so both import it without importing each other.

export interface ListedExposure {
  id: string;
  weaknessKey: string;
  title: string;
  asset: string;
  state: string;
  priority: string;
}

export interface HostLine {
  name: string;
  /** Exposures on the host still open, and all of them. */
  open: number;
  exposures: number;
  /** The most urgent priority among its open exposures. */
  priority: string;
}

export interface TicketView {
  /** The ticket's title: "[CTEM Act] Upgrade openssl to 3.0.8 or later on 120 assets". */
  summary: string;
  /** The ticket group: the campaign id under the default grouping. */
  campaignId: string;
  /** The key written on the ticket, by which it is found again after a crash. */
  externalKey: string;
  scope: string;
  owner?: string;
  action: string;
  priority: string;
  /** The earliest SLA deadline among the open exposures (ISO time). */
  slaDue?: string;
  /** YYYY-MM-DD of the SLA deadline (Jira's duedate). */
  slaDueDate?: string;
  /** What the ticket covers, whatever the lists below show. */
  totals: {
    exposures: number;
    open: number;
    assets: number;
    states: { state: string; count: number }[];
    /** "3 remediating, 1 verifying, 2 resolved". */
    statesText: string;
  };
  /** The most urgent exposures (open ones first). */
  exposures: ListedExposure[];
  /** Exposures not listed. */
  moreExposures: number;
  /** The hosts with the most urgent open exposures. */
  hosts: HostLine[];
  /** Hosts not listed. */
  moreHosts: number;
  reasons: string[];
  moreReasons: number;
  fixes: string[];
  url?: string;
  /** Every asset of the ticket, for linking it to them (GLPI); templates list `hosts`. */
  assets: string[];
}
