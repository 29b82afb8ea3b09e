// Slack over Socket Mode (integrations.slack.mode: socket): the bot opens the connection itself
// (apps.connections.open with the app-level token, then a WebSocket), so nothing listens for Slack;
// envelopes come in over the socket and are acknowledged there, and decisions work as over HTTP.
import { beforeAll, describe, expect, it } from 'vitest';
import { decisionsOf, view } from '../lifecycle/support.ts';
import { blockAction, chatWorld, until, waitForSlackMessage, type ChatWorld } from './support.ts';

let world: ChatWorld;
beforeAll(async () => {
  world = await chatWorld({ slackMode: 'socket' });
  await until(
    'the socket connected',
    () => world.slack.socketCount,
    (n) => n > 0,
  );
});

describe('Slack Socket Mode', () => {
  it('acknowledges a click envelope over the socket and applies the decision', async () => {
    expect(world.slack.callsTo('apps.connections.open').length).toBeGreaterThanOrEqual(1);
    // No HTTP endpoint is mounted in Socket Mode.
    expect((await fetch(`${world.baseUrl}/slack/events`, { method: 'POST', body: '{}' })).status).toBe(404);
    const [id] = await world.exposures({ weaknesses: ['CVE-2099-7001'], host: 'socket-approve' });
    const message = await waitForSlackMessage(world, 'D0OLIVIA', 'CVE-2099-7001');
    const payload = blockAction({
      user: 'U0OLIVIA',
      channel: message.channel,
      ts: message.ts,
      actionId: 'ctem_all_approve',
      value: 'all',
    });
    const ack = await world.slack.sendEnvelope('interactive', payload);
    expect(typeof ack.envelope_id).toBe('string');
    await until(
      'approved',
      () => view(world.temporal.client, world.db.pool, id!),
      (v) => v.state !== 'awaiting-decision',
    );
    // Re-delivered (no ack seen by Slack): acknowledged again, not applied twice.
    await world.slack.sendEnvelope('interactive', payload, { retry_attempt: 1, retry_reason: 'timeout' });
    await until(
      'message updated',
      () => message.updates,
      (n) => n > 0,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(await decisionsOf(world.db.pool, id!)).toEqual([{ kind: 'approve', by: 'olivia' }]);
    // Handled twice, the second approve would have been refused (and recorded): it was not handled.
    const { rows } = await world.db.pool.query(
      `select 1 from events where exposure_id = $1 and type = 'decision-refused'`,
      [id],
    );
    expect(rows).toHaveLength(0);
  }, 120_000);
});
