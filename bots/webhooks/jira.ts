// Jira Cloud webhook: Jira POSTs issue events here, signed with the webhook's secret
// (X-Hub-Signature: sha256=<HMAC-SHA256 of the raw body>). A status change of one of our tickets
// becomes a ticketChanged signal to the campaign workflows holding its exposures.
//
// In Jira: Settings → System → WebHooks → create, URL https://<ctem>/webhooks/jira, a secret (the
// same as integrations.jira.webhookSecret), event "Issue updated", JQL filter `labels = ctem`.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Handler } from '../http.ts';
import { readBody, sendJson } from '../http.ts';
import type { JiraConfig } from '../../tickets/jira/config.ts';
import { JiraTicketSystem } from '../../tickets/jira/client.ts';
import { applyInboundTicketChange, signalThroughClient } from '../../tickets/inbound.ts';
import type { TicketWebhookDeps } from './deps.ts';
import { RefusalAudit } from '../audit.ts';

/** Constant-time check of "sha256=<hex>" against the HMAC of the raw body. */
export function verifyHubSignature(raw: Buffer, secret: string, header: string | undefined): boolean {
  const m = /^sha256=([0-9a-fA-F]{64})$/.exec(header?.trim() ?? '');
  if (!m) return false;
  const expected = createHmac('sha256', secret).update(raw).digest();
  const given = Buffer.from(m[1]!, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const statusSchema = z.object({
  name: z.string().optional(),
  statusCategory: z.object({ key: z.string() }).partial().optional(),
});

const jiraEventSchema = z.object({
  webhookEvent: z.string(),
  user: z
    .object({ displayName: z.string().optional(), accountId: z.string().optional() })
    .partial()
    .optional(),
  issue: z
    .object({
      key: z.string().min(1),
      fields: z.object({ status: statusSchema.optional() }).passthrough().optional(),
    })
    .passthrough()
    .optional(),
});

export function jiraWebhookHandler(cfg: JiraConfig, deps: TicketWebhookDeps): Handler {
  const jira = new JiraTicketSystem(cfg, { readSecret: deps.readSecret, baseDir: deps.baseDir });
  const secretRef = cfg.webhookSecret!;
  const audit = new RefusalAudit(deps.pool, deps.log);
  return async (req, res) => {
    let raw: Buffer;
    try {
      raw = await readBody(req);
    } catch {
      sendJson(res, 413, { error: 'request body too large' });
      return;
    }
    const header = req.headers['x-hub-signature'];
    if (!verifyHubSignature(raw, deps.readSecret(secretRef), Array.isArray(header) ? header[0] : header)) {
      sendJson(res, 401, { error: 'signature does not match' });
      await audit.record({
        channel: 'jira',
        route: '/webhooks/jira',
        status: 401,
        reason: 'missing or wrong X-Hub-Signature (HMAC-SHA256 of the body with the webhook secret)',
        remote: req.socket.remoteAddress,
        body: raw,
      });
      return;
    }
    let event: z.infer<typeof jiraEventSchema>;
    try {
      event = jiraEventSchema.parse(JSON.parse(raw.toString('utf8')));
    } catch {
      sendJson(res, 400, { error: 'not a Jira issue event' });
      return;
    }
    const status = event.issue?.fields?.status;
    if (!event.issue || !status || !/^jira:issue_(updated|created)$/.test(event.webhookEvent)) {
      sendJson(res, 202, { ignored: `event ${event.webhookEvent} carries no issue status` });
      return;
    }
    const mapped = jira.categoryOfStatus(status);
    try {
      const outcome = await applyInboundTicketChange(
        deps.pool,
        {
          system: 'jira',
          key: event.issue.key,
          category: mapped.category,
          remote: mapped.remote,
          actor: event.user?.displayName ?? event.user?.accountId,
          via: 'webhook',
        },
        signalThroughClient(deps.client),
      );
      sendJson(res, 200, outcome);
    } catch (err) {
      // Not recorded: Jira retries a 5xx, and the ledger still says the old status.
      deps.log.error(
        { err, ticket: event.issue.key },
        'Jira webhook could not be delivered to the workflows',
      );
      sendJson(res, 503, { error: 'could not deliver the change now; retry' });
    }
  };
}
