-- Campaigns: one remediation (a package upgrade, an advisory, a configuration change, or one
-- weakness with no known fix) in one scope for one owner, across every asset it applies to
-- (domain/campaign.ts). What people decide on, tickets are opened for, patches roll out by and
-- escalations are aggregated by. They replace the per-asset remediation units: a campaign's durable
-- process (workflows/campaign/) holds its exposures' lifecycles.

create table campaigns (
  id          text primary key,
  scope       text not null,
  owner       text,
  -- "pkg:deb:openssl", "advisory:KB5034441", "config:AVD-DS-0002", "weakness:CVE-2024-1234".
  fix_key     text not null,
  kind        text not null check (kind in ('package', 'advisory', 'config', 'weakness')),
  -- What is upgraded, applied or fixed, without the version.
  subject     text not null,
  -- TicketRef of the campaign's ticket once opened ({system, key, url}).
  ticket      jsonb,
  -- Workflow shards in use (a large campaign is held by several workflows: "~2", "~3"…).
  shards      integer not null default 1,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  unique (scope, owner, fix_key)
);
create index campaigns_owner on campaigns (owner, scope);

alter table exposures
  add column campaign_id     text,
  add column campaign_shard  integer,
  -- When ctem first learned of the exposure: its SLA clock starts here, not at the scanner's
  -- first-seen date (which is kept and shown), so a backlog import is not overdue on arrival.
  add column learned_at      timestamptz,
  -- Where the SLA clock of the current lifecycle started: learned_at, moved later by the scope's
  -- onboarding grace for exposures learned while the scope was onboarding.
  add column sla_start       timestamptz;
-- Rows from before: ctem learned of them when it first saw them (first_seen is the best it knows).
update exposures set learned_at = least(first_seen, updated_at) where learned_at is null;
alter table exposures alter column learned_at set default now();
alter table exposures alter column learned_at set not null;
create index exposures_campaign on exposures (campaign_id, campaign_shard);

-- Patch rollouts, their jobs and notifications belong to a campaign now.
alter table patch_rollouts rename column unit_id to campaign_id;
alter index patch_rollouts_unit rename to patch_rollouts_campaign;
alter table patch_jobs rename column unit_id to campaign_id;
alter table notifications rename column unit_id to campaign_id;

-- Ticket groups: a campaign by default (the old "unit" grouping becomes it).
alter table ticket_units rename column unit_id to campaign_id;
alter index ticket_units_by_unit rename to ticket_units_by_campaign;
alter table tickets drop constraint tickets_group_by_check;
update tickets set group_by = 'campaign' where group_by = 'unit';
alter table tickets alter column group_by set default 'campaign';
alter table tickets add constraint tickets_group_by_check
  check (group_by in ('campaign', 'exposure', 'asset', 'fix'));

-- Escalations waiting to be sent, aggregated: one message per audience (a person or a channel) per
-- window lists every campaign that escalated to it meanwhile. Written by the campaign workflows
-- (idempotent by key), claimed and marked by the sender (lifecycle/escalations.ts).
create table escalation_items (
  key          text primary key,
  -- "person:<id>" or "slack:<channel>" / "teams:<conversation>".
  audience     text not null,
  scope        text not null,
  campaign_id  text not null,
  level        integer not null,
  kind         text not null,
  line         text not null,
  exposure_ids text[] not null default '{}',
  created_at   timestamptz not null default now(),
  -- The notification key of the aggregated message that carried it; null until sent.
  sent_key     text
);
create index escalation_items_unsent on escalation_items (audience, created_at) where sent_key is null;

-- The daily "your queue" message per person and day (lifecycle/queue.ts), and the onboarding
-- summary per person and baseline import: sent once each.
create table owner_digests (
  key         text primary key,
  person      text not null,
  kind        text not null check (kind in ('queue', 'onboarding')),
  campaigns   integer not null,
  exposures   integer not null,
  receipt     jsonb,
  at          timestamptz not null default now()
);
