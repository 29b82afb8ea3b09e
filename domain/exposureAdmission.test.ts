import { describe, expect, it } from 'vitest';
import {
  awaitingDecisionReason,
  decisionRequestKey,
  decisionWhy,
  reopenedReason,
  validatedReason,
  validationEvidence,
} from './exposureAdmission.ts';

describe('exposure admission', () => {
  const reasons = [
    'Exploitation: active (CISA KEV, added 2024-01-10)',
    'Exposure: open (the asset faces the internet)',
    'Technical impact: total (CVSS C:H/I:H)',
  ];

  it('validates on the exploitation and exposure the triage found, in the scan that saw it', () => {
    expect(validationEvidence(reasons)).toEqual(reasons.slice(0, 2));
    expect(validatedReason(42, reasons)).toBe(
      'observed by scan 42; Exploitation: active (CISA KEV, added 2024-01-10) Exposure: open (the asset faces the internet)',
    );
    expect(validatedReason(7, ['Technical impact: partial'])).toBe('observed by scan 7');
  });

  it('asks the owner once per unit and scan, saying whether the exposure is new or back', () => {
    expect(decisionRequestKey('ru:prod:olivia:abc', 42)).toBe('ru:prod:olivia:abc:decision-request:scan:42');
    expect(awaitingDecisionReason(decisionWhy())).toBe('owner asked to decide (new exposure)');
    expect(awaitingDecisionReason(decisionWhy('resolved'))).toBe(
      'owner asked to decide (back after resolved)',
    );
    expect(reopenedReason(43, 'CVE-2024-1', 'resolved')).toBe(
      'scan 43 sees CVE-2024-1 again after it was resolved',
    );
  });
});
