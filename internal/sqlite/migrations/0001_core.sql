-- Accounts own clusters; tokens authenticate as an account.
CREATE TABLE accounts (
	id                   INTEGER PRIMARY KEY,
	name                 TEXT NOT NULL UNIQUE,
	max_clusters         INTEGER NOT NULL,
	max_minutes_to_live  INTEGER NOT NULL,
	created_at           INTEGER NOT NULL
);

-- Tokens are stored as the SHA-256 of the secret; prefix is the public part
-- shown in listings.
CREATE TABLE tokens (
	id                INTEGER PRIMARY KEY,
	account_id        INTEGER NOT NULL REFERENCES accounts(id),
	prefix            TEXT NOT NULL,
	hash              BLOB NOT NULL UNIQUE,
	allow_privileged  INTEGER NOT NULL DEFAULT 0,
	service           INTEGER NOT NULL DEFAULT 0,
	description       TEXT NOT NULL DEFAULT '',
	created_at        INTEGER NOT NULL,
	revoked_at        INTEGER
);

-- Pool members: warm servers (or local control planes) and the clusters
-- they serve. cluster_id is UNIQUE so that a member can never serve two
-- clusters at once.
CREATE TABLE servers (
	id           TEXT PRIMARY KEY,
	backend      TEXT NOT NULL,
	k8s_version  TEXT NOT NULL,
	size         TEXT NOT NULL,
	privileged   INTEGER NOT NULL,
	state        TEXT NOT NULL,
	cluster_id   TEXT UNIQUE,
	data         TEXT NOT NULL DEFAULT '{}',
	failure      TEXT NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	ready_at     INTEGER
);
CREATE INDEX servers_by_flavor ON servers(state, k8s_version, size, privileged, ready_at);

CREATE TABLE clusters (
	id                  TEXT PRIMARY KEY,
	account_id          INTEGER NOT NULL REFERENCES accounts(id),
	status              TEXT NOT NULL,
	k8s_version         TEXT NOT NULL,
	size                TEXT NOT NULL,
	privileged          INTEGER NOT NULL,
	keep_cluster        INTEGER NOT NULL,
	minutes_to_live     INTEGER NOT NULL,
	notification_email  TEXT NOT NULL,
	server_id           TEXT,
	api_server          TEXT NOT NULL DEFAULT '',
	run_repository      TEXT NOT NULL DEFAULT '',
	run_repository_id   INTEGER NOT NULL DEFAULT 0,
	run_id              INTEGER NOT NULL DEFAULT 0,
	run_attempt         INTEGER NOT NULL DEFAULT 0,
	run_job             TEXT NOT NULL DEFAULT '',
	run_runner          TEXT NOT NULL DEFAULT '',
	run_ref             TEXT NOT NULL DEFAULT '',
	run_sha             TEXT NOT NULL DEFAULT '',
	run_event           TEXT NOT NULL DEFAULT '',
	run_workflow_ref    TEXT NOT NULL DEFAULT '',
	run_actor           TEXT NOT NULL DEFAULT '',
	run_pull_request    INTEGER NOT NULL DEFAULT 0,
	run_installation_id INTEGER NOT NULL DEFAULT 0,
	run_verified        INTEGER NOT NULL DEFAULT 0,
	queued_ms           INTEGER NOT NULL DEFAULT 0,
	claimed_ms          INTEGER NOT NULL DEFAULT 0,
	ready_ms            INTEGER NOT NULL DEFAULT 0,
	warm                INTEGER NOT NULL DEFAULT 0,
	created_at          INTEGER NOT NULL,
	expires_at          INTEGER NOT NULL,
	stopped_at          INTEGER,
	terminated_at       INTEGER,
	warned_at           INTEGER
);
CREATE INDEX clusters_by_account ON clusters(account_id, status, created_at);
CREATE INDEX clusters_by_deadline ON clusters(status, expires_at);
CREATE INDEX clusters_by_run ON clusters(run_repository_id, run_id, run_attempt);

-- Every state change of a cluster or pool server.
CREATE TABLE events (
	id        INTEGER PRIMARY KEY,
	time      INTEGER NOT NULL,
	subject   TEXT NOT NULL,
	type      TEXT NOT NULL,
	from_state TEXT NOT NULL DEFAULT '',
	to_state  TEXT NOT NULL DEFAULT '',
	cause     TEXT NOT NULL,
	actor     TEXT NOT NULL DEFAULT '',
	message   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_by_subject ON events(subject, time);
CREATE INDEX events_by_time ON events(time);
