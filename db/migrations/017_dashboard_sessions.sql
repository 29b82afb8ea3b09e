-- Dashboard sessions shared by every ctem process behind one address: the key that signs session
-- cookies when dashboard.sessionSecret is not set (made once by the first process, 32 random bytes
-- from Node's CSPRNG), and the sessions signed out before they expire (kept until they would have).
create table if not exists dashboard_session_key (
  singleton boolean primary key default true check (singleton),
  key bytea not null check (octet_length(key) = 32),
  created_at timestamptz not null default now()
);
create table if not exists dashboard_signed_out (
  session_id text primary key,
  expires_at timestamptz not null
);
create index if not exists dashboard_signed_out_expires on dashboard_signed_out (expires_at);
