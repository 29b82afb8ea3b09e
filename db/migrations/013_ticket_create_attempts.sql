-- A remote ticket create that was sent but whose answer was never recorded (the worker died, the
-- connection broke). Written and committed before the create is sent, deleted with the ticket
-- key's record. When a retry finds a row here, the ticket may exist already although a search does
-- not show it yet (Jira's search index lags behind writes), so the search is repeated for a while
-- before a second create is risked. No foreign key: the row is written while the group's tickets
-- row is locked by the same upsert.
create table ticket_create_attempts (
  system        text not null,
  group_key     text not null,
  attempted_at  timestamptz not null default now(),
  attempts      integer not null default 1,
  primary key (system, group_key)
);
