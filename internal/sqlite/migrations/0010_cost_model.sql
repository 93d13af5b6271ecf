-- The price list the server priced the pool with, written at every start
-- (the built-in prices, Hetzner's live ones, the operator's --price), so
-- that `provisioner pool status` shows the euros the server's metrics
-- show. One row once a server has started on this database.
CREATE TABLE cost_model (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	model       TEXT NOT NULL,
	source      TEXT NOT NULL,
	recorded_at INTEGER NOT NULL
);
