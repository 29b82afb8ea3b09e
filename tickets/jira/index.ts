// Jira Cloud as a ticket system: integrations.jira, the REST v3 client, and its doctor check (the
// same search the client runs, which proves the URL, the credentials and the project).
import type { TicketSystemModule } from '../module.ts';
import { basicCredentials, httpJson, trimUrl } from '../../runtime/probe.ts';
import { JiraTicketSystem } from './client.ts';
import { jiraSchema, type JiraConfig } from './config.ts';

export const jira: TicketSystemModule<JiraConfig> = {
  name: 'jira',
  configSchema: jiraSchema,
  create: (cfg, deps) => new JiraTicketSystem(cfg, deps),
  async doctor(cfg, secret) {
    const authorization =
      'accessToken' in cfg.auth
        ? `Bearer ${secret(cfg.auth.accessToken)}`
        : basicCredentials(cfg.auth.email, secret(cfg.auth.apiToken));
    await httpJson(
      `${trimUrl(cfg.url)}/rest/api/3/search/jql?jql=${encodeURIComponent(`project = ${cfg.project}`)}&maxResults=1&fields=summary`,
      { authorization },
    );
    return `${cfg.url}, project ${cfg.project} searchable`;
  },
};
