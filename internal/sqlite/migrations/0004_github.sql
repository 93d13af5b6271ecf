-- The GitHub App: which account an installation acts as, and the webhook
-- deliveries already accepted (GitHub may deliver the same one twice, and
-- anyone may replay a captured one).
ALTER TABLE accounts ADD COLUMN github_installation_id INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX accounts_by_github_installation ON accounts(github_installation_id)
	WHERE github_installation_id <> 0;

CREATE TABLE github_deliveries (
	id           TEXT PRIMARY KEY, -- X-GitHub-Delivery
	event        TEXT NOT NULL,    -- X-GitHub-Event
	received_at  INTEGER NOT NULL
);
CREATE INDEX github_deliveries_by_time ON github_deliveries(received_at);
