// How an exposure enters its lifecycle, in one place for every path that admits one (the
// set-based dispatcher for a scan's new exposures, the dispatcher again for one that came back):
// triaged → validated (the scan that saw it, and the exploitation and exposure the triage found) →
// the owner asked → awaiting-decision. Pure: the dispatcher writes these as events in bulk, the
// workflow records them one by one.

/** The triage reasons that validate an exposure: its exploitation and its exposure. */
export function validationEvidence(reasons: readonly string[]): string[] {
  return reasons.filter((r) => /^(Exploitation|Exposure)\b/.test(r));
}

/** Why an exposure is validated: the scan that observed it, and its validation evidence. */
export function validatedReason(scanId: number, reasons: readonly string[]): string {
  const evidence = validationEvidence(reasons);
  return `observed by scan ${scanId}${evidence.length ? `; ${evidence.join(' ')}` : ''}`;
}

/** Why the owner is asked: a new exposure, or one back after it was closed. */
export function decisionWhy(reopenedFrom?: string): string {
  return reopenedFrom ? `back after ${reopenedFrom}` : 'new exposure';
}

/** The key of the decision request a scan's exposures of one unit share (one message per unit). */
export function decisionRequestKey(campaignId: string, scanId: number): string {
  return `${campaignId}:decision-request:scan:${scanId}`;
}

/** The awaiting-decision transition's reason. */
export function awaitingDecisionReason(why: string): string {
  return `owner asked to decide (${why})`;
}

/** The reopened transition's reason, for an exposure a scan sees again after it was closed. */
export function reopenedReason(scanId: number, weaknessKey: string, closedAs: string): string {
  return `scan ${scanId} sees ${weaknessKey} again after it was ${closedAs}`;
}
