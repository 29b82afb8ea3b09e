// ServiceNow as a ticket system: integrations.servicenow, the Table API client (polled too when a
// pollInterval is set, a safety net for missed outbound REST calls), and its doctor check.
import type { TicketSystemModule } from '../module.ts';
import { basicCredentials, httpJson, trimUrl } from '../../runtime/probe.ts';
import { ServiceNowTicketSystem } from './client.ts';
import { serviceNowSchema, type ServiceNowConfig } from './config.ts';

export const servicenow: TicketSystemModule<ServiceNowConfig> = {
  name: 'servicenow',
  configSchema: serviceNowSchema,
  create: (cfg, deps) => new ServiceNowTicketSystem(cfg, deps),
  pollInterval: (cfg) => cfg.pollInterval,
  async doctor(cfg, secret) {
    const authorization =
      'token' in cfg.auth
        ? `Bearer ${secret(cfg.auth.token)}`
        : basicCredentials(cfg.auth.username, secret(cfg.auth.password));
    await httpJson(`${trimUrl(cfg.url)}/api/now/table/${cfg.table}?sysparm_limit=1&sysparm_fields=sys_id`, {
      authorization,
    });
    return `${cfg.url}, table ${cfg.table} readable`;
  },
};
