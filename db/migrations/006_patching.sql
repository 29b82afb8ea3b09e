-- Patch rollouts and their per-host jobs: the record of what was planned, who approved it, what ran
-- on each host and what it printed (the evidence). Temporal drives the rollout; these rows make
-- every step idempotent (a retried activity finds its row) and make the per-scope concurrency limit
-- hold across rollouts (hosts being patched are rows in state 'applying' with a live lease).
-- Written with "if not exists" so applying it to a database that already has it changes nothing.

create table if not exists patch_rollouts (
  -- The rollout workflow's id.
  id               text primary key,
  unit_id          text not null,
  scope            text not null,
  executor         text not null,
  -- The exposures the unit closes: the audit events of the rollout are written to each.
  exposure_ids     text[] not null default '{}',
  -- The PatchPlan (activities/ports.ts) shown for approval, and its text.
  plan             jsonb not null,
  summary          text not null,
  status           text not null check (status in
                     ('blocked', 'awaiting-approval', 'approved', 'rejected', 'succeeded', 'failed')),
  decided_by       text,
  decided_at       timestamptz,
  decision_comment text,
  outcome          text,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  finished_at      timestamptz
);
create index if not exists patch_rollouts_unit on patch_rollouts (unit_id, created_at);

create table if not exists patch_jobs (
  rollout_id       text not null references patch_rollouts (id),
  host             text not null,
  unit_id          text not null,
  scope            text not null,
  executor         text not null,
  -- The one-host slice of the approved plan that this job applies.
  plan             jsonb not null,
  status           text not null check (status in ('applying', 'succeeded', 'failed')),
  -- Captured output of the commands or the remote job: the evidence of what was done.
  output           text,
  reboot_required  boolean,
  -- The remote system's job id (a Satellite job invocation).
  remote_job_id    text,
  attempts         integer not null default 0,
  -- While applying, the slot is held until then; a crashed rollout's slot frees itself.
  lease_until      timestamptz,
  started_at       timestamptz not null default now(),
  finished_at      timestamptz,
  primary key (rollout_id, host)
);
create index if not exists patch_jobs_scope_applying on patch_jobs (scope, lease_until) where status = 'applying';
