-- ChatOps (Slack, Teams): where each notification was posted, so a later call with the same key
-- updates the message in place; Teams conversation references for proactive sends; Slack request
-- ids already processed (retries and replays); the outbox that paces sends within rate limits.

-- One row per notification key per conversation: what the message shows and, once posted, where it
-- is. Sends render from `model` at send time, so the message always shows the latest model.
create table chat_messages (
  transport         text not null check (transport in ('slack', 'teams')),
  -- Where we send: Slack channel or user id, Teams conversation id.
  conversation      text not null,
  notification_key  text not null,
  -- Slack "<channel id>/<ts>" (a DM sent to a user id lands in a D… channel), Teams activity id;
  -- null until the first post succeeds.
  message_ref       text,
  -- The OwnerNotification, each exposure's latest state and the decisions taken from chat.
  model             jsonb not null,
  posted_at         timestamptz not null default now(),
  updated_at        timestamptz not null default now(),
  primary key (transport, conversation, notification_key)
);
create index chat_messages_key on chat_messages (notification_key);
create index chat_messages_ref on chat_messages (transport, message_ref);

-- Where the bot may write proactively in Teams: captured from the activities Teams sends us
-- (installation, messages, card actions). `subject` is "person:<id>" for a personal chat or
-- "conversation:<id>" for a channel or group chat.
create table teams_conversations (
  subject          text primary key,
  conversation_id  text not null,
  service_url      text not null,
  tenant_id        text,
  bot_id           text,
  -- The Teams user this personal chat is with (from.aadObjectId, else from.id).
  user_id          text,
  updated_at       timestamptz not null default now()
);

-- Slack requests already handled: Slack re-sends an event (X-Slack-Retry-Num) when it did not see
-- an ack in time, and a captured request could be replayed within the signature window.
create table slack_seen_requests (
  request_id  text primary key,
  seen_at     timestamptz not null default now()
);
create index slack_seen_requests_at on slack_seen_requests (seen_at);

-- The send queue. A "message" send makes the conversation's message show its current model (post
-- it, or edit it in place); pending sends of the same message coalesce into one, so a burst of
-- changes becomes one send. An "ephemeral" send carries its own payload.
create table chat_outbox (
  id                bigserial primary key,
  transport         text not null check (transport in ('slack', 'teams')),
  conversation      text not null,
  -- Idempotency key: the notification key for posts/updates, a unique id for ephemerals.
  notification_key  text not null,
  kind              text not null check (kind in ('message', 'ephemeral')),
  payload           jsonb not null default '{}'::jsonb,
  status            text not null default 'pending' check (status in ('pending', 'sending', 'sent', 'failed')),
  attempts          integer not null default 0,
  last_error        text,
  message_ref       text,
  created_at        timestamptz not null default now(),
  claimed_at        timestamptz,
  finished_at       timestamptz
);
create unique index chat_outbox_pending on chat_outbox (transport, conversation, notification_key)
  where status = 'pending';
create index chat_outbox_open on chat_outbox (status, id) where status in ('pending', 'sending');

-- The next free send slot per conversation, shared by every process, so the rate limit holds
-- across replicas; a 429 pushes it to now + Retry-After.
create table chat_send_slots (
  transport     text not null,
  conversation  text not null,
  next_at       timestamptz not null,
  primary key (transport, conversation)
);

-- Scope alerts raised (rule × subject: an exposure, an exposure's breach, an asset and its OS), so
-- each fires once; recorded before sending and marked sent after, so a failed send is retried.
create table chat_alerts_sent (
  scope       text not null,
  rule        text not null,
  subject     text not null,
  model       jsonb not null,
  created_at  timestamptz not null default now(),
  sent_at     timestamptz,
  primary key (scope, rule, subject)
);
create index chat_alerts_unsent on chat_alerts_sent (created_at) where sent_at is null;

-- How far the alert dispatcher has read the audit log; null until its first pass, which starts at
-- the end of the log (history does not alert).
create table chat_alert_cursor (
  id             integer primary key check (id = 1),
  last_event_id  bigint
);
insert into chat_alert_cursor (id, last_event_id) values (1, null);
