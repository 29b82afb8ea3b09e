// Slack request signatures (v0): HMAC-SHA256 of "v0:{timestamp}:{raw body}" with the signing
// secret, compared in constant time. The timestamp must be within five minutes of now in BOTH
// directions: Bolt's own check rejects only old requests, so a request stamped in the future
// (captured, or from a skewed clock) would stay replayable for longer than the window.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_WINDOW_SECONDS = 300;

export type SignatureCheck = { ok: true } | { ok: false; reason: string };

export function slackSignature(signingSecret: string, timestamp: string, rawBody: Buffer | string): string {
  return `v0=${createHmac('sha256', signingSecret).update(`v0:${timestamp}:`).update(rawBody).digest('hex')}`;
}

export function verifySlackSignature(opts: {
  signingSecret: string;
  timestamp: string | undefined;
  signature: string | undefined;
  rawBody: Buffer;
  nowMs: number;
}): SignatureCheck {
  const { timestamp, signature } = opts;
  if (!timestamp || !/^\d{1,12}$/.test(timestamp))
    return { ok: false, reason: 'missing or malformed X-Slack-Request-Timestamp' };
  if (!signature || !/^v0=[0-9a-f]{64}$/.test(signature))
    return { ok: false, reason: 'missing or malformed X-Slack-Signature' };
  const skew = Math.floor(opts.nowMs / 1000) - Number(timestamp);
  if (skew > SIGNATURE_WINDOW_SECONDS)
    return { ok: false, reason: `request timestamp is ${skew} s old (limit ${SIGNATURE_WINDOW_SECONDS} s)` };
  if (skew < -SIGNATURE_WINDOW_SECONDS)
    return {
      ok: false,
      reason: `request timestamp is ${-skew} s in the future (limit ${SIGNATURE_WINDOW_SECONDS} s)`,
    };
  const expected = Buffer.from(slackSignature(opts.signingSecret, timestamp, opts.rawBody), 'utf8');
  const given = Buffer.from(signature, 'utf8');
  // Both are "v0=" + 64 hex characters here, so the lengths match and the compare is constant-time.
  if (expected.length !== given.length || !timingSafeEqual(expected, given))
    return { ok: false, reason: 'signature mismatch' };
  return { ok: true };
}
