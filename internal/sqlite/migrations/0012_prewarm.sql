-- Pre-warming from queued CI jobs. prewarm_flavors is what each job (by
-- GitHub App installation, repository id, workflow name and job name)
-- asked for the last time it made a cluster, and which account taught it.
CREATE TABLE prewarm_flavors (
	installation_id  INTEGER NOT NULL CHECK (installation_id > 0),
	repository_id    INTEGER NOT NULL CHECK (repository_id > 0),
	workflow         TEXT NOT NULL,
	job              TEXT NOT NULL,
	k8s_version      TEXT NOT NULL,
	size             TEXT NOT NULL,
	privileged       INTEGER NOT NULL,
	account_id       INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	learned_at       INTEGER NOT NULL,
	creates          INTEGER NOT NULL DEFAULT 1,
	PRIMARY KEY (installation_id, repository_id, workflow, job)
);

-- prewarm_jobs are the workflow jobs GitHub said were queued (id:
-- workflow_job.id, the job's check run id), so that the create that comes
-- from one teaches its flavor, and a restart finds the pre-warms under
-- way (until > now, state queued). until is 0 when no pre-warm was
-- started. Old rows are pruned.
CREATE TABLE prewarm_jobs (
	id               INTEGER PRIMARY KEY CHECK (id > 0),
	installation_id  INTEGER NOT NULL CHECK (installation_id > 0),
	repository_id    INTEGER NOT NULL CHECK (repository_id > 0),
	repository       TEXT NOT NULL,
	workflow         TEXT NOT NULL,
	job              TEXT NOT NULL,
	run_id           INTEGER NOT NULL,
	run_attempt      INTEGER NOT NULL,
	queued_at        INTEGER NOT NULL,
	state            TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'created', 'completed')),
	k8s_version      TEXT NOT NULL DEFAULT '',
	size             TEXT NOT NULL DEFAULT '',
	privileged       INTEGER NOT NULL DEFAULT 0,
	until            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX prewarm_jobs_open ON prewarm_jobs(installation_id, until) WHERE state = 'queued';
CREATE INDEX prewarm_jobs_by_run ON prewarm_jobs(repository_id, run_id);
CREATE INDEX prewarm_jobs_by_age ON prewarm_jobs(queued_at);
