-- Chat messages about campaigns: reminders and escalations are posted as replies in the thread of
-- the campaign's original message (Slack thread_ts, Teams reply chain), and every message showing a
-- campaign is updated in place after a decision on it, wherever the decision was taken.

-- The message reference of the original a message was posted under as a reply (Slack
-- "<channel>/<ts>", Teams activity id); null for a message of its own.
alter table chat_messages add column thread_ref text;

-- The campaigns a message shows: one for a campaign's message, many for a daily queue or an
-- escalation digest. A decision on a campaign finds the messages to update through it.
alter table chat_messages add column campaign_ids text[] not null default '{}';
create index chat_messages_campaigns on chat_messages using gin (campaign_ids);

update chat_messages set campaign_ids = array[model -> 'notification' -> 'campaign' ->> 'id']
 where model -> 'notification' -> 'campaign' ? 'id';
