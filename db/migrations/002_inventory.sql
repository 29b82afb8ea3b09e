-- Inventory and discovery: how scanners' assets resolve to one inventory asset, what each scan
-- observed and covered, and what changed per scan. Written by activities/ingest (set-based merges
-- from COPY staging tables); read by the lifecycle (scan_changes, exposures.present).

-- Every identifier an asset has been seen under. One host is reported by name by one scanner and by
-- address by another; matching on any strong identifier keeps it one asset (domain/inventory.ts
-- decides which identifiers may match which). The same IP may belong to several assets over time
-- (DHCP), so the key includes the asset.
create table asset_identifiers (
  kind        text not null check (kind in ('fqdn', 'hostname', 'ip', 'mac', 'image', 'cloud', 'url')),
  value       text not null,
  asset_id    bigint not null references assets (id) on delete cascade,
  first_seen  timestamptz not null default now(),
  last_seen   timestamptz not null default now(),
  primary key (kind, value, asset_id)
);
create index asset_identifiers_asset on asset_identifiers (asset_id);

-- A scan's place in the inventory's history.
alter table scans add column asset_count integer not null default 0;
-- When this scan is a full scan cycle of a scope (a connector's scheduled run, or `ctem ingest
-- --cycle`), the scope it counts for: assets of that scope absent from enough cycles are retired.
alter table scans add column cycle_scope text references scopes (name) on update cascade on delete set null;
-- A targeted check (e.g. an SSH package check) covers only these weakness keys on its assets; null
-- means every weakness the scanner reports.
alter table scans add column covered_keys text[];
alter table scans add column duration_ms integer;
-- The re-scan request (RescanRequest.requestId) a connector ran this scan for: a retried activity
-- finds its scan instead of launching another.
alter table scans add column request_id text;
create unique index scans_request_id on scans (request_id) where request_id is not null;
-- The same file ingested twice is the same scan.
create unique index scans_file_sha256 on scans (file_sha256) where file_sha256 is not null;
create index scans_cycle_scope on scans (cycle_scope, finished_at) where cycle_scope is not null;

-- The coverage of a scan: which assets it looked at. An asset a scan did not cover keeps its
-- exposures as they were, whatever the scan says about other assets.
create table scan_assets (
  scan_id   bigint not null references scans (id) on delete cascade,
  asset_id  bigint not null references assets (id) on delete cascade,
  primary key (scan_id, asset_id)
);
create index scan_assets_asset on scan_assets (asset_id);

-- Presence of an exposure as a whole: present while at least one scanner's latest word on it is
-- "present". absent_since is the time of the scan that last made it absent.
alter table exposures add column present boolean not null default true;
alter table exposures add column absent_since timestamptz;
alter table exposures add column first_scan_id bigint;
alter table exposures add column last_scan_id bigint;
alter table exposures add column last_absent_scan_id bigint;
-- Room on each page for a row's next version: a weekly re-scan rewrites last_seen of every exposure
-- it repeats, and with free space on the page those updates stay heap-only (no index writes).
alter table exposures set (fillfactor = 85);
-- "Which exposures did scan N create": the lifecycle's `new` set (see scan_changes for the others).
create index exposures_first_scan on exposures (first_scan_id);

-- One scanner's latest word on one exposure (asset × weakness), with the evidence of its latest
-- sighting. Several findings of one report on the same asset × weakness (one CVE in two packages)
-- collapse into one row: the most severe one's details, and how many there were. No foreign keys:
-- this is the hot table of a million-finding ingest, and ingest is its only writer.
create table observations (
  exposure_id        text not null,
  scanner            text not null,
  asset_id           bigint not null,
  vuln_key           text not null,
  present            boolean not null default true,
  first_seen         timestamptz not null,
  last_seen          timestamptz not null,
  first_scan_id      bigint not null,
  last_scan_id       bigint not null,
  absent_since       timestamptz,
  absent_scan_id     bigint,
  kind               text not null,
  title              text,
  severity           text not null,
  severity_reported  text,
  rule_id            text,
  port               integer,
  protocol           text,
  service            text,
  package_name       text,
  package_version    text,
  fixed_version      text,
  package_type       text,
  package_path       text,
  location           text,
  evidence           text,
  instances          integer not null default 1,
  primary key (exposure_id, scanner)
) with (fillfactor = 85);
-- The coverage lookup of the gone-diff: this scanner's present observations on the covered assets.
create index observations_coverage on observations (scanner, asset_id) where present;

-- What a scan changed, for the lifecycle: 'gone' (now absent from every scanner that saw it),
-- 'reappeared' (present again after being absent), 'retired' (closed because its asset was retired).
-- 'new' is exposures.first_scan_id = scan id (no copy of a million ids here).
create table scan_changes (
  scan_id      bigint not null references scans (id) on delete cascade,
  change       text not null check (change in ('gone', 'reappeared', 'retired')),
  exposure_id  text not null,
  primary key (scan_id, change, exposure_id)
);

-- Intel as scanner reports carry it. Kept apart from the feed tables (003) and only filling gaps in
-- the generic columns (title, description), so a report never overwrites what a feed said.
alter table vulnerabilities add column reported_cvss jsonb;
alter table vulnerabilities add column reported_epss real;
alter table vulnerabilities add column reported_epss_percentile real;
alter table vulnerabilities add column reported_exploit_available boolean;
alter table vulnerabilities add column reported_solution text;
alter table vulnerabilities add column reported_cwe text[];
alter table vulnerabilities add column reported_at timestamptz;
