-- Re-scoring: the deadline the policy (capped by the scope's SLA windows) last gave an exposure,
-- apart from sla_due. sla_due is the deadline the owner works to, which the lifecycle moves by the
-- time spent snoozed or risk-accepted; comparing a fresh decision with it would find every paused
-- exposure "changed" at every feed sync.
--
-- Written by the re-score when it applies a decision, and taken from sla_due whenever a lifecycle
-- (re)starts on the row — the moment its deadline is the triage decision, before any pause. The
-- trigger fires only for statements that set workflow_run (the lifecycle's writers), never for
-- ingest's updates. Null means "as sla_due".
alter table exposures add column if not exists policy_due timestamptz;

create or replace function exposures_policy_due_on_new_lifecycle() returns trigger
language plpgsql as $$
begin
  new.policy_due := new.sla_due;
  return new;
end $$;

create trigger exposures_policy_due_on_new_lifecycle
  before update of workflow_run on exposures
  for each row when (new.workflow_run is distinct from old.workflow_run)
  execute function exposures_policy_due_on_new_lifecycle();
