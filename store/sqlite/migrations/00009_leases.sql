-- 9 (issue 16): leadership as leases per shard (a conditional update of a row:
-- Galera-safe), the replicas sharing the store, the host counts each shard's
-- leader publishes, and the shard of each incident.
-- +goose Up
CREATE TABLE leases (shard TEXT PRIMARY KEY, holder TEXT NOT NULL, addr TEXT NOT NULL, epoch INTEGER NOT NULL,
	version INTEGER NOT NULL, ttl INTEGER NOT NULL, renewed INTEGER NOT NULL, since INTEGER NOT NULL);
CREATE TABLE replicas (id TEXT PRIMARY KEY, addr TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
	version INTEGER NOT NULL, seen INTEGER NOT NULL, started INTEGER NOT NULL);
CREATE TABLE shard_counts (shard TEXT PRIMARY KEY, epoch INTEGER NOT NULL, hosts INTEGER NOT NULL, failed INTEGER NOT NULL, at INTEGER NOT NULL);
ALTER TABLE incidents ADD COLUMN shard TEXT NOT NULL DEFAULT 'all';
CREATE INDEX events_incident ON events (incident);
CREATE INDEX incidents_closed ON incidents (closed);
