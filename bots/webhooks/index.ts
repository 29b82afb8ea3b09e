// Inbound ticket changes on the one HTTP server: POST /webhooks/jira and POST /webhooks/servicenow,
// each registered only when its system and its secret are configured. (GLPI is polled instead:
// workflows/tickets.ts.)
import type { Config } from '../../domain/config.ts';
import { resolveSecret } from '../../runtime/config.ts';
import type { HttpServer } from '../http.ts';
import { configuredTicketSystems } from '../../tickets/systems.ts';
import type { JiraConfig } from '../../tickets/jira/config.ts';
import type { ServiceNowConfig } from '../../tickets/servicenow/config.ts';
import type { TicketWebhookDeps } from './deps.ts';
import { jiraWebhookHandler } from './jira.ts';
import { serviceNowWebhookHandler } from './servicenow.ts';

export function registerTicketWebhooks(
  http: HttpServer,
  config: Config,
  deps: Omit<TicketWebhookDeps, 'readSecret'> & { readSecret?: TicketWebhookDeps['readSecret'] },
): string[] {
  const full: TicketWebhookDeps = {
    ...deps,
    readSecret: deps.readSecret ?? ((ref) => resolveSecret(ref, process.env, deps.baseDir)),
  };
  // Every configured system's section is validated here, at start, whichever have webhooks.
  const sections = new Map(configuredTicketSystems(config).map(({ module, cfg }) => [module.name, cfg]));
  const cfg = {
    jira: sections.get('jira') as JiraConfig | undefined,
    servicenow: sections.get('servicenow') as ServiceNowConfig | undefined,
  };
  const routes: string[] = [];
  if (cfg.jira?.webhookSecret) {
    http.route('POST', '/webhooks/jira', jiraWebhookHandler(cfg.jira, full));
    routes.push('/webhooks/jira');
  } else if (cfg.jira) deps.log.warn('integrations.jira has no webhookSecret: Jira changes are not received');
  if (cfg.servicenow?.inboundSecret) {
    http.route('POST', '/webhooks/servicenow', serviceNowWebhookHandler(cfg.servicenow, full));
    routes.push('/webhooks/servicenow');
  } else if (cfg.servicenow)
    deps.log.warn('integrations.servicenow has no inboundSecret: ServiceNow changes are not received');
  return routes;
}
