// ServiceNow outbound REST: a business rule on the ticket table POSTs the changed record here with a
// shared secret in a header (integrations.servicenow.inboundHeader, default X-Ctem-Secret). A state
// change of one of our tickets becomes a ticketChanged signal to the campaign workflows holding its
// exposures.
//
// In ServiceNow: a REST Message "ctem" (POST https://<ctem>/webhooks/servicenow, header
// X-Ctem-Secret = the secret, content {"sys_id": "${sys_id}", "number": "${number}",
// "state": "${state}", "correlation_id": "${correlation_id}", "sys_updated_by": "${sys_updated_by}"}),
// and an async business rule on incident, after update, condition `state changes` AND
// `correlation_id starts with ctem-` (new tickets carry "ctem-cmp-…", those of earlier releases
// "ctem-ru-…"), that sends it.
import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Handler } from '../http.ts';
import { readBody, sendJson } from '../http.ts';
import type { ServiceNowConfig } from '../../tickets/servicenow/config.ts';
import { ServiceNowTicketSystem } from '../../tickets/servicenow/client.ts';
import { applyInboundTicketChange, signalThroughClient } from '../../tickets/inbound.ts';
import type { TicketWebhookDeps } from './deps.ts';
import { RefusalAudit } from '../audit.ts';

/** Constant-time comparison that does not leak the secret's length either (both sides hashed). */
export function sameSecret(given: string | undefined, expected: string): boolean {
  if (!given) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

const recordSchema = z.object({
  sys_id: z.string().regex(/^[0-9a-f]{32}$/, 'must be a sys_id'),
  state: z.union([z.string(), z.number()]).transform(String),
  number: z.string().optional(),
  correlation_id: z.string().optional(),
  sys_updated_by: z.string().optional(),
});

export function serviceNowWebhookHandler(cfg: ServiceNowConfig, deps: TicketWebhookDeps): Handler {
  const sn = new ServiceNowTicketSystem(cfg, { readSecret: deps.readSecret, baseDir: deps.baseDir });
  const secretRef = cfg.inboundSecret!;
  const headerName = cfg.inboundHeader.toLowerCase();
  const audit = new RefusalAudit(deps.pool, deps.log);
  return async (req, res) => {
    let raw: Buffer;
    try {
      raw = await readBody(req);
    } catch {
      sendJson(res, 413, { error: 'request body too large' });
      return;
    }
    const header = req.headers[headerName];
    if (!sameSecret(Array.isArray(header) ? header[0] : header, deps.readSecret(secretRef))) {
      sendJson(res, 401, { error: 'secret does not match' });
      await audit.record({
        channel: 'servicenow',
        route: '/webhooks/servicenow',
        status: 401,
        reason: `missing or wrong shared secret in ${cfg.inboundHeader}`,
        remote: req.socket.remoteAddress,
        body: raw,
      });
      return;
    }
    let record: z.infer<typeof recordSchema>;
    try {
      record = recordSchema.parse(JSON.parse(raw.toString('utf8')));
    } catch {
      sendJson(res, 400, { error: 'expected {"sys_id": "<32 hex>", "state": "<number>", …}' });
      return;
    }
    try {
      const outcome = await applyInboundTicketChange(
        deps.pool,
        {
          system: 'servicenow',
          key: record.sys_id,
          category: sn.categoryOfState(record.state),
          remote: record.state,
          actor: record.sys_updated_by,
          via: 'webhook',
        },
        signalThroughClient(deps.client),
      );
      sendJson(res, 200, outcome);
    } catch (err) {
      deps.log.error(
        { err, ticket: record.sys_id },
        'ServiceNow change could not be delivered to the workflows',
      );
      sendJson(res, 503, { error: 'could not deliver the change now; retry' });
    }
  };
}
