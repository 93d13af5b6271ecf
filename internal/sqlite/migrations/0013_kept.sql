-- Clusters kept for debugging: a CI job failed and its cleanup, instead of
-- terminating the cluster, moved its deadline (keep-on-failure). kept_at is
-- when (NULL: never kept); kept_reason what the job said. The GitHub App
-- leaves such clusters alone when their run completes.
ALTER TABLE clusters ADD COLUMN kept_at INTEGER;
ALTER TABLE clusters ADD COLUMN kept_reason TEXT NOT NULL DEFAULT '';
