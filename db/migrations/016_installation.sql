-- One row naming this installation. Campaign ids (and so the campaign and rollout workflow ids and
-- the external keys written on tickets) hash it with the fix, so two installations sharing one
-- Temporal namespace (staging beside production on one cluster, or a test run's databases beside
-- each other) never address each other's workflows.
create table if not exists installation (
  singleton boolean primary key default true check (singleton),
  id text not null default substr(md5(random()::text || clock_timestamp()::text), 1, 16),
  created_at timestamptz not null default now()
);
insert into installation (singleton) values (true) on conflict do nothing;
