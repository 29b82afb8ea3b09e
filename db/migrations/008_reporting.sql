-- Reporting: indexes for the weekly digest's windows. The digest reads the exposures read model
-- and the audit log as they are (no snapshot tables): a week's figures and the week before come
-- from the same timestamps, so history is recomputed, never stored twice.

-- "Verified fixed this week" (time to remediate) and "breached this week".
create index if not exists exposures_verified_at on exposures (verified_at) where verified_at is not null;
create index if not exists exposures_sla_breached_at on exposures (sla_breached_at) where sla_breached_at is not null;
-- Risk acceptances expiring soon.
create index if not exists exposures_risk_accepted_until on exposures (risk_accepted_until) where risk_accepted_until is not null;
