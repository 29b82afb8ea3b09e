// GLPI as a ticket system: integrations.glpi, the legacy REST API client (always polled: GLPI has no
// outbound webhooks), and its doctor check (a session opened and closed again).
import type { TicketSystemModule } from '../module.ts';
import { httpJson, trimUrl } from '../../runtime/probe.ts';
import { GlpiTicketSystem } from './client.ts';
import { glpiSchema, type GlpiConfig } from './config.ts';

export const glpi: TicketSystemModule<GlpiConfig> = {
  name: 'glpi',
  configSchema: glpiSchema,
  create: (cfg, deps) => new GlpiTicketSystem(cfg, deps),
  pollInterval: (cfg) => cfg.pollInterval,
  async doctor(cfg, secret) {
    const headers: Record<string, string> = { authorization: `user_token ${secret(cfg.userToken)}` };
    if (cfg.appToken) headers['app-token'] = secret(cfg.appToken);
    const session = (await httpJson(`${trimUrl(cfg.url)}/initSession`, headers)) as {
      session_token?: string;
    };
    if (session.session_token)
      await httpJson(`${trimUrl(cfg.url)}/killSession`, {
        'session-token': session.session_token,
        ...(headers['app-token'] ? { 'app-token': headers['app-token'] } : {}),
      }).catch(() => undefined);
    return `${cfg.url}, session opened`;
  },
};
