-- The id the cluster that claims a member will have, drawn when the member
-- is created or rebuilt, so that the backend labels the node while it
-- makes the member ready rather than while a create waits. Never shown
-- before the claim; a member destroyed unclaimed takes its id with it.
ALTER TABLE servers ADD COLUMN reserved_cluster_id TEXT;
CREATE UNIQUE INDEX servers_reserved_cluster_id ON servers (reserved_cluster_id) WHERE reserved_cluster_id IS NOT NULL;
