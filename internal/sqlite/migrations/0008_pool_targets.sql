-- The warm-pool targets of the server, written at every start, so that
-- `provisioner pool status` shows what the running server works towards
-- rather than flags of its own. pool_targets_recorded has one row once a
-- server has started on this database.
CREATE TABLE pool_targets (
	k8s_version TEXT NOT NULL,
	size        TEXT NOT NULL,
	privileged  INTEGER NOT NULL,
	target      INTEGER NOT NULL,
	PRIMARY KEY (k8s_version, size, privileged)
);
CREATE TABLE pool_targets_recorded (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	backend     TEXT NOT NULL,
	recorded_at INTEGER NOT NULL
);
