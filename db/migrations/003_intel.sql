-- Threat intel: CISA KEV, FIRST EPSS, CVE records (CVE JSON 5 and NVD CVE API 2.0), and the runs
-- that loaded them.
--
-- History model: every intel row carries a validity range [valid_from, valid_to) in *source time* —
-- the KEV catalog's release time, the EPSS score date, a CVE record's own last-update time. A load
-- closes the current row of a key whose content changed and inserts the new version; an unchanged
-- key is left alone, so loading the same file twice writes nothing but its feed_runs row. "What did
-- we know on date D" is then `valid_from <= D and (valid_to is null or valid_to > D)`, and the current
-- view is `valid_to is null` (a partial unique index keeps exactly one current row per key).
-- Source time rather than load time, because a catalog loaded late still says what CISA published
-- that day; feed_runs keeps the load times for the audit trail.

create table feed_runs (
  id              bigserial primary key,
  feed            text not null check (feed in ('kev', 'epss', 'cve5', 'nvd')),
  source          text not null,
  -- KEV catalogVersion, EPSS model_version, NVD API format/version, CVE data version.
  source_version  text,
  -- KEV dateReleased, EPSS score_date, newest record update of a CVE tree or NVD page set.
  source_date     timestamptz,
  started_at      timestamptz not null default now(),
  finished_at     timestamptz,
  status          text not null default 'running' check (status in ('running', 'succeeded', 'failed')),
  records         integer not null default 0,
  added           integer not null default 0,
  changed         integer not null default 0,
  unchanged       integer not null default 0,
  removed         integer not null default 0,
  -- Records older than the version already held (an older file loaded after a newer one).
  stale           integer not null default 0,
  error           text,
  details         jsonb not null default '{}'::jsonb
);
create index feed_runs_feed on feed_runs (feed, id desc);

create table kev_entries (
  cve                 text not null,
  vendor_project      text,
  product             text,
  vulnerability_name  text,
  date_added          date not null,
  due_date            date,
  known_ransomware    text,
  required_action     text,
  short_description   text,
  notes               text,
  cwes                text[] not null default '{}',
  -- The catalog version this version of the entry first appeared in (not compared).
  catalog_version     text,
  valid_from          timestamptz not null,
  valid_to            timestamptz,
  run_id              bigint not null references feed_runs (id),
  primary key (cve, valid_from),
  check (valid_to is null or valid_to > valid_from)
);
create unique index kev_entries_current on kev_entries (cve) where valid_to is null;

create table epss_scores (
  cve            text not null,
  probability    real not null check (probability between 0 and 1),
  percentile     real not null check (percentile between 0 and 1),
  model_version  text not null,
  valid_from     timestamptz not null,
  valid_to       timestamptz,
  run_id         bigint not null references feed_runs (id),
  primary key (cve, valid_from),
  check (valid_to is null or valid_to > valid_from)
);
create unique index epss_scores_current on epss_scores (cve) where valid_to is null;

-- One CVE as one source describes it. `source` is 'cve5' (CVE JSON 5: CNA + ADP containers) or 'nvd'.
create table cve_records (
  source                 text not null check (source in ('cve5', 'nvd')),
  cve                    text not null,
  -- CVE5 cveMetadata.state (PUBLISHED, REJECTED) or NVD vulnStatus.
  state                  text not null,
  published_at           timestamptz,
  updated_at             timestamptz not null,
  title                  text,
  description            text,
  cwes                   text[] not null default '{}',
  -- The preferred CVSS vector: v4.0 over v3.1 over v3.0; the CNA's (or NVD Primary) over others.
  cvss_vector            text,
  cvss_base_score        real,
  cvss_source            text,
  -- Every CVSS metric of the record: [{version, vector, baseScore, source}].
  cvss_all               jsonb not null default '[]'::jsonb,
  -- CISA ADP SSVC assessment (CVE5 only).
  ssvc_exploitation      text check (ssvc_exploitation in ('none', 'public poc', 'active')),
  ssvc_automatable       text check (ssvc_automatable in ('no', 'yes')),
  ssvc_technical_impact  text check (ssvc_technical_impact in ('partial', 'total')),
  ssvc_assessed_at       timestamptz,
  -- KEV flag as the record carries it (CVE5 ADP "kev" metric, NVD cisaExploitAdd).
  kev_date_added         date,
  valid_from             timestamptz not null,
  valid_to               timestamptz,
  run_id                 bigint not null references feed_runs (id),
  primary key (source, cve, valid_from),
  check (valid_to is null or valid_to > valid_from)
);
create unique index cve_records_current on cve_records (source, cve) where valid_to is null;

-- The policy that judged an exposure, by content hash (policy_version is in 001).
alter table exposures add column policy_hash text;
alter table exposures add column decided_at timestamptz;
create index exposures_vuln_key on exposures (vuln_key);
-- Room on each page for the new version of a row: a re-score rewrites priority and deadline of many
-- exposures at once, and with free space (and no index on those columns) PostgreSQL updates in place
-- (HOT) instead of touching every index of the table.
alter table exposures set (fillfactor = 85);
