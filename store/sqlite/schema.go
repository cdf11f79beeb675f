package sqlite

// migrations are applied in order; PRAGMA user_version records how many ran.
// Append only: never edit a migration that has shipped.
var migrations = []string{
	`CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
	INSERT INTO meta (key, value) VALUES ('epoch', 0);
	CREATE TABLE clusters (
		name TEXT PRIMARY KEY,
		members TEXT NOT NULL,
		desired INTEGER NOT NULL,
		policy TEXT NOT NULL
	);
	CREATE TABLE incidents (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		kind TEXT NOT NULL,
		subject TEXT NOT NULL,
		cluster TEXT NOT NULL,
		policy TEXT NOT NULL,
		state TEXT NOT NULL,
		reason TEXT NOT NULL,
		rule TEXT NOT NULL,
		evidence TEXT NOT NULL,
		opened INTEGER NOT NULL,
		updated INTEGER NOT NULL,
		closed INTEGER NOT NULL,
		epoch INTEGER NOT NULL
	);
	CREATE INDEX incidents_open ON incidents (closed) WHERE closed = 0;
	CREATE INDEX incidents_subject ON incidents (kind, subject, closed);
	CREATE TABLE steps (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		incident INTEGER NOT NULL REFERENCES incidents (id),
		seq INTEGER NOT NULL,
		action TEXT NOT NULL,
		server TEXT NOT NULL,
		host TEXT NOT NULL,
		target TEXT NOT NULL,
		hard INTEGER NOT NULL,
		state TEXT NOT NULL,
		rule TEXT NOT NULL,
		error TEXT NOT NULL,
		retryable INTEGER NOT NULL,
		planned INTEGER NOT NULL,
		started INTEGER NOT NULL,
		issued INTEGER NOT NULL,
		finished INTEGER NOT NULL,
		deadline INTEGER NOT NULL,
		timeout INTEGER NOT NULL,
		attempt INTEGER NOT NULL
	);
	CREATE INDEX steps_incident ON steps (incident);
	CREATE TABLE events (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		at INTEGER NOT NULL,
		kind TEXT NOT NULL,
		subject TEXT NOT NULL,
		incident INTEGER NOT NULL,
		message TEXT NOT NULL
	);`,
	// 2: the cloud's count of the step's kind of action before its intent (see model.Step.Prior).
	`ALTER TABLE steps ADD COLUMN prior INTEGER NOT NULL DEFAULT -1;`,
	// 3: hosts whose fence device Vigil does not trust, until an operator says so.
	`CREATE TABLE fence_doubts (host TEXT PRIMARY KEY, reason TEXT NOT NULL, since INTEGER NOT NULL);`,
	// 4: the identity each host's BMC gave when first read, compared with every later read.
	`CREATE TABLE bmc_identities (host TEXT PRIMARY KEY, identity TEXT NOT NULL, since INTEGER NOT NULL);`,
	// 5: the kind of failure a server incident answers (model.Fault*): it picks its ladder.
	`ALTER TABLE incidents ADD COLUMN fault TEXT NOT NULL DEFAULT '';`,
	// 6: hosts an operator put in maintenance (outlives restarts), and when Vigil last
	// forced each host's service up again (host return): a force-down journaled
	// before it is undone.
	`CREATE TABLE host_maintenance (host TEXT PRIMARY KEY, reason TEXT NOT NULL, since INTEGER NOT NULL);
	CREATE TABLE host_returns (host TEXT PRIMARY KEY, at INTEGER NOT NULL);`,
	// 7: where a cluster's members come from (model.ClusterSource as JSON; '' for a list of IDs).
	`ALTER TABLE clusters ADD COLUMN source TEXT NOT NULL DEFAULT '';`,
	// 8 (issue 15): a cluster's restart priority (1-5; 0: its policy's).
	`ALTER TABLE clusters ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;`,
	// 9 (issue 16): leadership as leases per shard (a conditional update of a row:
	// Galera-safe), the replicas sharing the store, the host counts each shard's
	// leader publishes, and the shard of each incident.
	`CREATE TABLE leases (shard TEXT PRIMARY KEY, holder TEXT NOT NULL, addr TEXT NOT NULL, epoch INTEGER NOT NULL,
		version INTEGER NOT NULL, ttl INTEGER NOT NULL, renewed INTEGER NOT NULL, since INTEGER NOT NULL);
	CREATE TABLE replicas (id TEXT PRIMARY KEY, addr TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
		version INTEGER NOT NULL, seen INTEGER NOT NULL, started INTEGER NOT NULL);
	CREATE TABLE shard_counts (shard TEXT PRIMARY KEY, epoch INTEGER NOT NULL, hosts INTEGER NOT NULL, failed INTEGER NOT NULL, at INTEGER NOT NULL);
	ALTER TABLE incidents ADD COLUMN shard TEXT NOT NULL DEFAULT 'all';
	CREATE INDEX events_incident ON events (incident);
	CREATE INDEX incidents_closed ON incidents (closed);`,
}
