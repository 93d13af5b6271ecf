-- A hibernated member's snapshot: its size in GB, NULL while the member has
-- none. It is set when the member becomes hibernated (its server deleted,
-- only the snapshot left), cleared when a start restores a server from it,
-- and kept when the cluster ends so that the release deletes the snapshot.
-- The snapshot's id at the backend lives in the member's data.
ALTER TABLE servers ADD COLUMN snapshot_gb REAL;
