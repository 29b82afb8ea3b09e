-- Foundation schema. PostgreSQL owns facts: the inventory, what scanners observed, threat intel,
-- the read model of exposures and an append-only audit log. Temporal owns process.

create table scopes (
  name        text primary key,
  config      jsonb not null default '{}'::jsonb,
  updated_at  timestamptz not null default now()
);

create table assets (
  id            bigserial primary key,
  -- Canonical identity: "host:<fqdn-or-hostname>", "ip:<addr>", "image:<repo>@<digest>", "cloud:<id>", "app:<url>".
  identity_key  text not null unique,
  kind          text not null check (kind in ('host', 'image', 'cloud', 'application', 'repository')),
  hostname      text,
  fqdn          text,
  ips           text[] not null default '{}',
  mac           text,
  os            text,
  image_repo    text,
  image_tag     text,
  image_digest  text,
  cloud_id      text,
  url           text,
  tags          text[] not null default '{}',
  scope         text references scopes (name) on update cascade on delete set null,
  criticality   text not null default 'medium' check (criticality in ('low', 'medium', 'high', 'critical')),
  first_seen    timestamptz not null default now(),
  last_seen     timestamptz not null default now(),
  retired_at    timestamptz
);
create index assets_scope on assets (scope) where retired_at is null;

-- One imported report (or one connector run).
create table scans (
  id            bigserial primary key,
  scanner       text not null,
  format        text not null,
  source        text not null,
  file_sha256   text,
  scan_ref      text,
  scope         text references scopes (name) on update cascade on delete set null,
  started_at    timestamptz,
  finished_at   timestamptz,
  imported_at   timestamptz not null default now(),
  finding_count integer not null default 0
);

-- Threat intel about one weakness key (CVE id or scanner rule id); feeds add history tables.
create table vulnerabilities (
  key          text primary key,
  aliases      text[] not null default '{}',
  title        text,
  description  text,
  updated_at   timestamptz not null default now()
);

-- One weakness on one asset over time: the unit of the lifecycle workflow. The id is deterministic
-- (see domain/exposure.ts) so the workflow id, the row and every event agree.
create table exposures (
  id              text primary key,
  asset_id        bigint not null references assets (id),
  vuln_key        text not null,
  scope           text,
  state           text not null default 'open',
  priority        text,
  sla_due         timestamptz,
  policy_version  text,
  owner           text,
  first_seen      timestamptz not null,
  last_seen       timestamptz not null,
  resolved_at     timestamptz,
  updated_at      timestamptz not null default now(),
  unique (asset_id, vuln_key)
);
create index exposures_state on exposures (state);
create index exposures_scope_state on exposures (scope, state);

-- Append-only audit log: every transition, decision and side effect, with who, why and evidence.
-- idempotency_key makes at-least-once activities write each event exactly once.
create table events (
  id               bigserial primary key,
  exposure_id      text,
  at               timestamptz not null default now(),
  type             text not null,
  actor            text not null default 'system',
  reason           text,
  data             jsonb not null default '{}'::jsonb,
  idempotency_key  text unique
);
create index events_exposure on events (exposure_id, id);

create or replace function events_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'events is append-only';
end $$;
create trigger events_no_update before update or delete on events
  for each row execute function events_append_only();

-- Liveness records written by the health-probe workflow (proves Temporal → worker → PostgreSQL).
create table worker_heartbeats (
  probe_id     text primary key,
  worker       text not null,
  at           timestamptz not null default now()
);
