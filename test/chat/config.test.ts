// The chat sections of ctem.yaml are validated with errors that name the field, and Teams
// authentication is off only when development mode is asked for explicitly.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../domain/config.ts';
import { slackConfigOf } from '../../chat/slack/config.ts';
import { teamsConfigOf } from '../../chat/teams/config.ts';
import { alertRulesOf } from '../../chat/alerts.ts';
import { snoozeChoicesFor } from '../../chat/decisions.ts';
import { OLIVIA_AAD, chatWorld, installActivity, postActivity, type ChatWorld } from './support.ts';

describe('chat configuration', () => {
  it('names the field that is wrong', () => {
    expect(() => slackConfigOf({ slack: { botToken: 'env:T' } })).toThrow(
      /integrations\.slack\.signingSecret: HTTP mode needs the signing secret/,
    );
    expect(() =>
      slackConfigOf({ slack: { botToken: 'xoxb-literal-token', signingSecret: 'env:S' } }),
    ).toThrow(/integrations\.slack\.botToken: must be a secret reference/);
    expect(() => slackConfigOf({ slack: { mode: 'socket', botToken: 'env:T' } })).toThrow(
      /integrations\.slack\.appToken/,
    );
    expect(() =>
      teamsConfigOf({ teams: { appId: 'a', tenantId: 't', clientSecret: 'env:X', authentication: 'off' } }),
    ).toThrow(/integrations\.teams\.authentication/);
    expect(
      teamsConfigOf({ teams: { appId: 'a', tenantId: 't', clientSecret: 'env:X' } })?.authentication,
    ).toBe('production');
    const config = parseConfig(`
version: 1
scopes:
  - name: prod
    alerts: { newExposure: {}, slaBreached: yes }
  - name: dev
    alerts: { newExposure: { priority: [Act, Soon] } }
`);
    expect(() => alertRulesOf(config, config.scopes[0]!)).toThrow(
      /scopes\[0\]\.alerts\.newExposure: give at least one of priority, kev, contextualCvssAtLeast/,
    );
    expect(() => alertRulesOf(config, config.scopes[1]!)).toThrow(
      /scopes\[1\]\.alerts\.newExposure\.priority\[1\]/,
    );
  });

  it('offers snooze durations up to the scope maximum only', () => {
    const config = parseConfig(`
version: 1
scopes:
  - name: tight
    lifecycle: { maxSnooze: 10d }
  - name: default
`);
    expect(snoozeChoicesFor(config, 'tight').map((c) => c.days)).toEqual([1, 3, 7, 10]);
    expect(snoozeChoicesFor(config, 'default').map((c) => c.days)).toEqual([1, 3, 7, 14, 30]);
  });
});

describe('the chat examples in ctem.example.yaml', () => {
  const example = readFileSync(path.resolve(import.meta.dirname, '../../ctem.example.yaml'), 'utf8');
  /** The commented block between "# [name]" and "# [end name]", uncommented. */
  const block = (name: string): Record<string, unknown> => {
    const lines = example.split('\n');
    const from = lines.indexOf(`# [${name}]`);
    const to = lines.indexOf(`# [end ${name}]`);
    expect(from, `# [${name}] in ctem.example.yaml`).toBeGreaterThanOrEqual(0);
    expect(to).toBeGreaterThan(from);
    return parseYaml(
      lines
        .slice(from + 1, to)
        .map((l) => l.replace(/^# ?/, ''))
        .join('\n'),
    ) as Record<string, unknown>;
  };

  it('are valid Slack (HTTP and Socket Mode) and Teams settings, and the scope alert rules load', () => {
    const chat = block('chat example').integrations as Record<string, unknown>;
    expect(slackConfigOf(chat)).toMatchObject({ mode: 'http', signingSecret: 'env:SLACK_SIGNING_SECRET' });
    expect(teamsConfigOf(chat)).toMatchObject({
      authentication: 'production',
      perConversationIntervalMs: 143,
    });
    const socket = block('slack socket mode example').integrations as Record<string, unknown>;
    expect(slackConfigOf(socket)).toMatchObject({ mode: 'socket', appToken: 'env:SLACK_APP_TOKEN' });

    const config = parseConfig(example, 'ctem.example.yaml');
    const production = config.scopes.find((s) => s.name === 'production')!;
    expect(alertRulesOf(config, production)).toMatchObject({
      newExposure: { priority: ['Act'], kev: true, contextualCvssAtLeast: 9 },
      slaBreached: true,
      endOfLife: true,
    });
    // The same file with the chat block switched on still loads.
    const uncommented = example.replace(
      /# \[chat example\]\n([\s\S]*?)# \[end chat example\]/,
      (_m, body: string) => body.replace(/^# ?/gm, ''),
    );
    const withChat = parseConfig(uncommented, 'ctem.example.yaml');
    expect(slackConfigOf(withChat.integrations)?.botToken).toBe('env:SLACK_BOT_TOKEN');
  });
});

describe('Teams development mode', () => {
  let world: ChatWorld;
  beforeAll(async () => {
    world = await chatWorld({ teamsAuthentication: 'development' });
  });

  it('accepts unauthenticated activities only because the configuration says development', async () => {
    const res = await postActivity(world, installActivity(world, OLIVIA_AAD, 'a:1dev-chat'), undefined);
    expect(res.status).toBe(200);
    const { rows } = await world.db.pool.query(
      `select conversation_id from teams_conversations where subject = 'person:olivia'`,
    );
    expect(rows).toEqual([{ conversation_id: 'a:1dev-chat' }]);
  });
});
