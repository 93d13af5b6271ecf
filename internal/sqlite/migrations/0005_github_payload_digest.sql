-- The signature of a webhook covers its body, not X-GitHub-Delivery: a
-- signed payload re-sent under a new delivery id must still be a
-- duplicate. Each accepted delivery keeps its payload's SHA-256 (NULL for
-- records made before, or by a standalone App that sends none).
ALTER TABLE github_deliveries ADD COLUMN payload_sha256 BLOB;
CREATE UNIQUE INDEX github_deliveries_by_payload ON github_deliveries(payload_sha256)
	WHERE payload_sha256 IS NOT NULL;
