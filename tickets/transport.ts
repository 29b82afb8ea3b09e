// How the ticket clients talk HTTP: a timeout on every request, 429 answers waited out for their
// Retry-After (bounded, longer waits handed to Temporal's retry as nextRetryDelay), and failures
// sorted into what a retry can fix (5xx, timeouts, network) and what it cannot (validation, auth).
import { ApplicationFailure, Context } from '@temporalio/activity';
import { durationMs } from '../domain/config.ts';

export interface TransportPolicy {
  system: string;
  timeoutMs: number;
  maxRetryAfterMs: number;
  rateLimitRetries: number;
}

export function transportPolicy(
  system: string,
  cfg: { timeout: string; maxRetryAfter: string; rateLimitRetries: number },
): TransportPolicy {
  return {
    system,
    timeoutMs: durationMs(cfg.timeout),
    maxRetryAfterMs: durationMs(cfg.maxRetryAfter),
    rateLimitRetries: cfg.rateLimitRetries,
  };
}

/** A non-2xx answer, with the server's own message (never the request's credentials). */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly serverMessage: string,
    readonly retryAfterMs?: number,
  ) {
    super(`HTTP ${status}: ${serverMessage}`);
    this.name = 'HttpStatusError';
  }
}

/** Failure types the workflows can tell apart. */
export const failureTypes = {
  rejected: 'TicketRequestRejected',
  auth: 'TicketAuthFailed',
  notFound: 'TicketNotFound',
  rateLimited: 'TicketRateLimited',
  unavailable: 'TicketSystemUnavailable',
} as const;

function currentActivity(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/** Abort on the request timeout, or when Temporal cancels the activity. */
export function requestSignal(timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  const ctx = currentActivity();
  return ctx ? AbortSignal.any([timeout, ctx.cancellationSignal]) : timeout;
}

export async function pause(ms: number): Promise<void> {
  const ctx = currentActivity();
  if (!ctx) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return;
  }
  // Heartbeat through the wait, in slices, so a long pause does not look like a dead worker.
  for (let left = ms; left > 0; left -= 1000) {
    ctx.heartbeat();
    await ctx.sleep(Math.min(1000, left));
  }
  ctx.heartbeat();
}

/** Retry-After is either delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Translate a failed attempt into the Temporal failure that says whether retrying can help. */
export function toActivityFailure(policy: TransportPolicy, op: string, err: unknown): Error {
  if (err instanceof ApplicationFailure) return err;
  const what = `${policy.system} ${op}`;
  if (err instanceof HttpStatusError) {
    const msg = `${what} failed with HTTP ${err.status}: ${err.serverMessage}`;
    if (err.status === 401)
      return ApplicationFailure.nonRetryable(
        `${msg}; check the credentials in integrations.${policy.system}`,
        failureTypes.auth,
      );
    if (err.status === 403)
      return ApplicationFailure.nonRetryable(
        `${msg}; check the permissions (or data policies) of the integration user`,
        failureTypes.rejected,
      );
    if (err.status === 404) return ApplicationFailure.nonRetryable(msg, failureTypes.notFound);
    if (err.status === 429)
      return ApplicationFailure.create({
        message: msg,
        type: failureTypes.rateLimited,
        nextRetryDelay: err.retryAfterMs ?? undefined,
      });
    if (err.status === 408 || err.status === 425 || err.status >= 500)
      return ApplicationFailure.retryable(msg, failureTypes.unavailable);
    return ApplicationFailure.nonRetryable(msg, failureTypes.rejected);
  }
  const e = err instanceof Error ? err : new Error(String(err));
  const timedOut = e.name === 'TimeoutError' || /timeout/i.test(e.message);
  return ApplicationFailure.retryable(
    `${what} failed: ${timedOut ? `no answer within the timeout (${policy.timeoutMs} ms)` : e.message}`,
    failureTypes.unavailable,
  );
}

/**
 * Run one request, waiting out 429s: up to `rateLimitRetries` times when Retry-After is within
 * `maxRetryAfter`; otherwise the activity fails retryably with the server's delay as nextRetryDelay.
 */
export async function withRateLimit<T>(
  policy: TransportPolicy,
  op: string,
  attempt: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  for (let tries = 0; ; tries++) {
    // A heartbeat per request: a worker that died mid-call is noticed after the heartbeat timeout.
    currentActivity()?.heartbeat();
    try {
      return await attempt(requestSignal(policy.timeoutMs));
    } catch (err) {
      if (err instanceof HttpStatusError && err.status === 429) {
        const wait = err.retryAfterMs ?? Math.min(1000 * 2 ** tries, policy.maxRetryAfterMs);
        if (tries < policy.rateLimitRetries && wait <= policy.maxRetryAfterMs) {
          await pause(wait);
          continue;
        }
        throw toActivityFailure(policy, op, new HttpStatusError(429, err.serverMessage, wait));
      }
      throw toActivityFailure(policy, op, err);
    }
  }
}

export interface JsonResponse {
  status: number;
  headers: Headers;
  body: unknown;
}

/**
 * fetch + JSON with the policy above. `describeError` pulls the server's message out of an error
 * body (each system has its own shape).
 */
export async function fetchJson(
  policy: TransportPolicy,
  op: string,
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown },
  describeError: (body: unknown, text: string) => string,
): Promise<JsonResponse> {
  return await withRateLimit(policy, op, async (signal) => {
    const res = await fetch(url, {
      method: init.method ?? 'GET',
      headers: {
        accept: 'application/json',
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...init.headers,
      },
      body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
      signal,
    });
    const text = await res.text();
    let body: unknown = undefined;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
    }
    if (!res.ok)
      throw new HttpStatusError(
        res.status,
        describeError(body, text).slice(0, 500) || res.statusText,
        parseRetryAfter(res.headers.get('retry-after')),
      );
    return { status: res.status, headers: res.headers, body };
  });
}

/** Basic authorization header value. */
export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}
