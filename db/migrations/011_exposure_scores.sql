-- The contextual CVSS score (CVSS-BTE with the scope's requirements and the threat intel) and the
-- CISA KEV flag of an exposure's latest triage, as columns, so the queue, the digest and alerts can
-- sort and filter on them without parsing the reasons. Written with the decision: by the dispatcher
-- (set-based triage) and by the exposure workflow's row (re-scores included). Null score: no usable
-- CVSS vector.
alter table exposures add column if not exists cvss_contextual real;
alter table exposures add column if not exists kev boolean not null default false;

-- Rows judged before this migration: the score from the reason the policy wrote, the flag from
-- the current KEV catalog.
update exposures
   set cvss_contextual = (select (regexp_match(r.value, '^Contextual CVSS (\d+(?:\.\d+)?)'))[1]::real
                            from jsonb_array_elements_text(reasons) as r(value)
                           where r.value like 'Contextual CVSS %' limit 1)
 where jsonb_typeof(reasons) = 'array' and reasons::text like '%Contextual CVSS %';
update exposures e set kev = true
 where exists (select 1 from kev_entries k where k.cve = e.vuln_key and k.valid_to is null);

create index if not exists exposures_open_kev on exposures (scope) where kev and state not in ('resolved', 'false-positive', 'retired');
