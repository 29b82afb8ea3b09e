-- The exposure lifecycle's read model. Temporal owns the process; these tables are what it has
-- done, written by idempotent activities: the current row of each exposure (extended here), the
-- remediation units that group tickets, messages and patch jobs, and the side effects already done.

alter table exposures
  add column if not exists lifecycle_seq       integer not null default 0,
  add column if not exists reasons             jsonb not null default '[]'::jsonb,
  add column if not exists remediation_unit_id text,
  add column if not exists escalation_level    integer not null default -1,
  add column if not exists sla_paused          boolean not null default false,
  add column if not exists sla_breached_at     timestamptz,
  add column if not exists snoozed_until       timestamptz,
  add column if not exists risk_accepted_until timestamptz,
  add column if not exists risk_accepted_by    text,
  add column if not exists fixed_at            timestamptz,
  add column if not exists verified_at         timestamptz,
  add column if not exists verified_scan_id    bigint,
  -- First seen → verified fixed, in seconds: the exposure time a CISO digest reports.
  add column if not exists exposure_seconds    bigint,
  add column if not exists workflow_run        text;
create index if not exists exposures_unit on exposures (remediation_unit_id);
create index if not exists exposures_sla_due on exposures (sla_due) where resolved_at is null;

-- What one person does to close a group of exposures (domain/remediation.ts).
create table remediation_units (
  id          text primary key,
  scope       text not null,
  owner       text,
  asset_id    bigint not null references assets (id),
  fix_key     text not null,
  action      text not null,
  -- TicketRef of the unit's ticket once opened ({system, key, url}).
  ticket      jsonb,
  -- The patch plan and result once applied: the idempotency record of the patch job.
  patch       jsonb,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now()
);
create index remediation_units_ticket on remediation_units ((ticket ->> 'system'), (ticket ->> 'key'));

-- Notifications sent (or honestly skipped), one row per idempotency key: a retried activity, or a
-- second exposure of the same unit, finds the row and sends nothing again.
create table notifications (
  key          text primary key,
  kind         text not null,
  unit_id      text,
  exposure_id  text,
  level        integer,
  recipients   text[] not null default '{}',
  receipt      jsonb not null,
  at           timestamptz not null default now()
);

-- Targeted re-scans requested for verification, one per request id.
create table rescan_requests (
  request_id   text primary key,
  exposure_id  text not null,
  scope        text not null,
  not_before   timestamptz not null,
  ticket       jsonb not null,
  at           timestamptz not null default now()
);

-- Temporal workflow ids the dispatcher started per scan: a retried dispatch starts nothing twice,
-- and the benchmark reads fan-out latency from it.
create table lifecycle_dispatches (
  scan_id      bigint not null,
  exposure_id  text not null,
  change       text not null,
  at           timestamptz not null default now(),
  primary key (scan_id, exposure_id, change)
);
