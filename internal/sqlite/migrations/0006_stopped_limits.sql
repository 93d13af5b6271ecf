-- Stopped clusters are limited per account and end after the server's
-- maximum stopped lifetime: a stopped Hetzner server is billed in full and a
-- stopped local cluster keeps its etcd. Existing accounts get the default
-- limit of a new one (cluster.DefaultMaxStoppedClusters).
ALTER TABLE accounts ADD COLUMN max_stopped_clusters INTEGER NOT NULL DEFAULT 5;

-- stopped_expires_at is the deadline of a stopped cluster (NULL unless it
-- is stopped; clusters stopped before this migration get one at the next
-- sweep); stopped_warned_at records the warning mail a day before.
ALTER TABLE clusters ADD COLUMN stopped_expires_at INTEGER;
ALTER TABLE clusters ADD COLUMN stopped_warned_at INTEGER;
CREATE INDEX clusters_by_stopped_deadline ON clusters(status, stopped_expires_at);
