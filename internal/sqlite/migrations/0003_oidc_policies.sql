-- OIDC policies admit verified CI tokens (GitHub Actions, GitLab CI) to an
-- account. They match on numeric ids, which unlike names are never reused.
-- Zero and '' mean "any"; see auth.Policy for the matching rules.
CREATE TABLE oidc_policies (
	id                   INTEGER PRIMARY KEY,
	account_id           INTEGER NOT NULL REFERENCES accounts(id),
	issuer               TEXT NOT NULL,
	repository_owner_id  INTEGER NOT NULL CHECK (repository_owner_id > 0),
	repository_id        INTEGER NOT NULL DEFAULT 0 CHECK (repository_id >= 0),
	ref                  TEXT NOT NULL DEFAULT '',
	environment          TEXT NOT NULL DEFAULT '',
	event                TEXT NOT NULL DEFAULT '',
	allow_privileged     INTEGER NOT NULL DEFAULT 0,
	created_at           INTEGER NOT NULL
);
-- Two policies with the same conditions would make the account a token
-- lands in depend on their order.
CREATE UNIQUE INDEX oidc_policies_by_owner
	ON oidc_policies(issuer, repository_owner_id, repository_id, ref, environment, event);
