// The digest's chat summaries: a Slack Block Kit message and a Teams Adaptive Card. Short by
// design (the headline numbers, why the score moved, the worst scope), linking to the dashboard
// for the charts. Built as plain objects, so no scanner text can break out of a JSON string.
import type { DigestView } from './render.ts';

const SLACK_TEXT_LIMIT = 2900;

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Slack mrkdwn: &, < and > must be escaped so a scope name cannot forge a link or a mention. */
function mrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export interface SlackMessage {
  text: string;
  blocks: Record<string, unknown>[];
}

export function digestSlackMessage(view: DigestView): SlackMessage {
  const fields = view.headlines
    .slice(0, 8)
    .map((h) => ({ type: 'mrkdwn', text: mrkdwn(`*${h.label}*\n${h.value}  (${h.change})`) }));
  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(`CTEM weekly digest ${view.week}`, 150) } },
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: mrkdwn(
          `*Exposure health ${view.health}/100* (${view.healthChange} vs last week) · ${view.period}`,
        ),
      },
    },
    { type: 'section', fields },
  ];
  if (view.movements.length)
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: clip(
          mrkdwn(`*Why it moved*\n${view.movements.map((m) => `• ${m}`).join('\n')}`),
          SLACK_TEXT_LIMIT,
        ),
      },
    });
  if (view.scopeRows.length)
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: clip(
          mrkdwn(
            `*Scopes*\n${view.scopeRows.map((s) => `• ${s.scope}: health ${s.health} (${s.healthChange}), ${s.open} open, ${s.overdue} past SLA, ${s.dueNextWeek} due next week`).join('\n')}`,
          ),
          SLACK_TEXT_LIMIT,
        ),
      },
    });
  if (view.dashboardUrl)
    blocks.push({
      type: 'actions',
      elements: [
        {
          type: 'button',
          text: { type: 'plain_text', text: 'Open the dashboard' },
          url: view.dashboardUrl,
          action_id: 'open_dashboard',
        },
      ],
    });
  return { text: `CTEM weekly digest ${view.week}: health ${view.health} (${view.healthChange})`, blocks };
}

/** An Adaptive Card 1.4 (what Teams renders), as the attachment content of a webhook message. */
export function digestTeamsCard(view: DigestView): Record<string, unknown> {
  const body: Record<string, unknown>[] = [
    {
      type: 'TextBlock',
      size: 'Large',
      weight: 'Bolder',
      text: `CTEM weekly digest ${view.week}`,
      wrap: true,
    },
    { type: 'TextBlock', text: view.period, isSubtle: true, spacing: 'None', wrap: true },
    {
      type: 'ColumnSet',
      columns: [
        {
          type: 'Column',
          width: 'auto',
          items: [
            {
              type: 'TextBlock',
              text: String(view.health),
              size: 'ExtraLarge',
              weight: 'Bolder',
              color: view.health >= 60 ? 'Good' : view.health >= 40 ? 'Warning' : 'Attention',
            },
          ],
        },
        {
          type: 'Column',
          width: 'stretch',
          verticalContentAlignment: 'Center',
          items: [
            {
              type: 'TextBlock',
              text: `Exposure health out of 100, ${view.healthChange} vs last week (${view.healthBefore})`,
              wrap: true,
            },
          ],
        },
      ],
    },
    {
      type: 'FactSet',
      facts: view.headlines.map((h) => ({ title: h.label, value: `${h.value} (${h.change})` })),
    },
  ];
  if (view.movements.length)
    body.push(
      { type: 'TextBlock', text: 'Why it moved', weight: 'Bolder', wrap: true },
      ...view.movements
        .slice(0, 8)
        .map((m) => ({ type: 'TextBlock', text: `• ${m}`, wrap: true, spacing: 'None' })),
    );
  if (view.scopeRows.length)
    body.push({
      type: 'FactSet',
      facts: view.scopeRows.map((s) => ({
        title: s.scope,
        value: `health ${s.health} (${s.healthChange}), ${s.open} open, ${s.overdue} past SLA`,
      })),
    });
  return {
    type: 'AdaptiveCard',
    $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
    version: '1.4',
    body,
    ...(view.dashboardUrl
      ? { actions: [{ type: 'Action.OpenUrl', title: 'Open the dashboard', url: view.dashboardUrl }] }
      : {}),
  };
}
