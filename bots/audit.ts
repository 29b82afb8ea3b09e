// Inbound requests refused before anything acts on them (a Slack request with a bad or stale
// signature, a Teams activity without a valid JWT, a ticket webhook with a wrong secret) go to the
// audit log as `request-refused` events, with no exposure: who knocked, on which endpoint, why it
// was refused, and a hash of what they sent (never the body itself, never a header value).
//
// A flood of forged requests must not flood the append-only audit log: each endpoint may write at
// most `perMinute` such rows a minute per process; past that, refusals are counted and the next row
// written says how many were left out.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Pool } from '../runtime/pool.ts';

export type InboundChannel = 'slack' | 'teams' | 'jira' | 'servicenow';

export interface RefusedRequest {
  channel: InboundChannel;
  route: string;
  status: number;
  reason: string;
  remote?: string | undefined;
  body?: Buffer | undefined;
}

type RefusalListener = (r: RefusedRequest) => void;
const listeners = new Set<RefusalListener>();

/** Called for every refused request of this process (the metrics count them). */
export function onRequestRefused(listener: RefusalListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export class RefusalAudit {
  private readonly windows = new Map<InboundChannel, { start: number; written: number; left: number }>();

  constructor(
    private readonly pool: Pool,
    private readonly log: Logger,
    private readonly perMinute = 600,
    private readonly now: () => number = Date.now,
  ) {}

  /** Record the refusal; never throws (the caller has already answered or is about to). */
  async record(r: RefusedRequest): Promise<void> {
    for (const l of listeners) {
      try {
        l(r);
      } catch {
        // A metrics listener must not stop the audit.
      }
    }
    this.log.warn(
      { channel: r.channel, route: r.route, status: r.status, reason: r.reason, remote: r.remote },
      'inbound request refused',
    );
    const t = this.now();
    let w = this.windows.get(r.channel);
    if (!w || t - w.start >= 60_000) {
      w = { start: t, written: 0, left: w?.left ?? 0 };
      this.windows.set(r.channel, w);
    }
    if (w.written >= this.perMinute) {
      w.left++;
      return;
    }
    w.written++;
    const left = w.left;
    w.left = 0;
    const data = {
      channel: r.channel,
      route: r.route,
      status: r.status,
      ...(r.remote ? { remote: r.remote } : {}),
      ...(r.body
        ? { bodySha256: createHash('sha256').update(r.body).digest('hex'), bytes: r.body.length }
        : {}),
      ...(left > 0 ? { notRecordedBefore: left } : {}),
    };
    try {
      await this.pool.query(
        `insert into events (exposure_id, type, actor, reason, data) values (null, 'request-refused', $1, $2, $3)`,
        [`unauthenticated:${r.channel}`, r.reason, JSON.stringify(data)],
      );
    } catch (err) {
      w.left += 1;
      this.log.error({ err, channel: r.channel }, 'could not record a refused request in the audit log');
    }
  }
}
