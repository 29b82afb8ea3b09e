-- Tickets in external queues (Jira, ServiceNow, GLPI). A ticket belongs to a ticket group: by default
-- one remediation unit, or, as scopes[].tickets.groupBy says, one exposure, one asset or one fix
-- across assets. Together with the external key written on the ticket itself (a Jira label, a
-- ServiceNow correlation_id, a GLPI externalid) this makes ticket creation exactly-once: a retried
-- activity finds the row, or, after a crash between the remote create and this record, finds the
-- ticket by its external key.

create table tickets (
  system             text not null,
  -- The remediation unit id, or "exposure:…", "asset:…", "fix:…" for other groupings.
  group_key          text not null,
  group_by           text not null default 'unit' check (group_by in ('unit', 'exposure', 'asset', 'fix')),
  -- The key written on the ticket ("ctem-ru-<hash of group key>"); the search key after a crash.
  external_key       text not null,
  -- The remote ticket key (Jira "SEC-12", ServiceNow sys_id, GLPI id); null until the create is known.
  ticket_key         text,
  ticket_number      text,
  ticket_url         text,
  scope              text,
  -- Exposures of the group's units when last synced: the workflows an inbound change is signalled to.
  exposure_ids       text[] not null default '{}',
  -- Last status category we know of ('open' | 'in-progress' | 'done'), ours or the remote's. An
  -- inbound change is only signalled when it differs, so our own close does not echo back.
  last_status        text check (last_status in ('open', 'in-progress', 'done')),
  remote_status      text,
  -- Hash of the content last written, so an unchanged group costs no remote update.
  content_hash       text,
  created_at         timestamptz not null default now(),
  updated_at         timestamptz not null default now(),
  status_changed_at  timestamptz,
  primary key (system, group_key),
  unique (system, external_key)
);
create unique index tickets_remote_key on tickets (system, ticket_key) where ticket_key is not null;

-- The units in each ticket group, with the part of the unit the ticket shows (its summary): the
-- ticket is rendered from all members together.
create table ticket_units (
  system      text not null,
  group_key   text not null,
  unit_id     text not null,
  summary     jsonb not null,
  updated_at  timestamptz not null default now(),
  primary key (system, group_key, unit_id),
  foreign key (system, group_key) references tickets (system, group_key)
);
create index ticket_units_by_unit on ticket_units (system, unit_id);

-- Comments posted through TicketSystem.comment, keyed by the caller's idempotency key. The same key
-- is also written as a marker in the comment text, so a crash after posting is caught remotely.
create table ticket_comments (
  system           text not null,
  ticket_key       text not null,
  idempotency_key  text not null,
  marker           text not null,
  posted_at        timestamptz,
  primary key (system, ticket_key, idempotency_key)
);

-- Where each polling reader of a ticket system got to (GLPI has no outbound webhooks).
create table ticket_poll_cursors (
  system      text primary key,
  position    text not null,
  updated_at  timestamptz not null default now()
);
