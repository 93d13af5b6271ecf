-- A webhook delivery's work outlives the process that accepted it: it is
-- accepted (its payload kept, so that a restarted App resumes it), then
-- done (the payload dropped) or given up with the reason. attempts counts
-- the tries begun; next_attempt_at is when the next is due (ms, 0: now).
-- Deliveries recorded before were handled or dropped: they are done.
ALTER TABLE github_deliveries ADD COLUMN state TEXT NOT NULL DEFAULT 'done'
	CHECK (state IN ('accepted', 'done', 'given-up'));
ALTER TABLE github_deliveries ADD COLUMN payload BLOB;
ALTER TABLE github_deliveries ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE github_deliveries ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE github_deliveries ADD COLUMN reason TEXT NOT NULL DEFAULT '';
CREATE INDEX github_deliveries_pending ON github_deliveries(received_at) WHERE state = 'accepted';

-- The numeric id of the job a cluster was made in (its check run id), so
-- that a workflow_job delivery ends that job's clusters and no other's
-- (0: not known).
ALTER TABLE clusters ADD COLUMN run_job_id INTEGER NOT NULL DEFAULT 0;
