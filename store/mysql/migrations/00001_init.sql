-- 1: Vigil's journal on MariaDB/MySQL, as the SQLite store's schema at its
-- version 10: clusters, incidents and their steps, events, fence doubts, BMC
-- identities, maintenance, host returns, and leadership (leases per shard,
-- replicas, shard counts). Times are BIGINT nanoseconds (0: none), as in SQLite.
-- +goose Up
CREATE TABLE meta (
	name VARCHAR(64) NOT NULL PRIMARY KEY,
	value BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO meta (name, value) VALUES ('epoch', 0);
CREATE TABLE clusters (
	name VARCHAR(255) NOT NULL PRIMARY KEY,
	members MEDIUMTEXT NOT NULL,
	desired INT NOT NULL,
	policy VARCHAR(255) NOT NULL,
	source TEXT NOT NULL,
	priority INT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE incidents (
	id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
	kind VARCHAR(32) NOT NULL,
	subject VARCHAR(255) NOT NULL,
	cluster VARCHAR(255) NOT NULL,
	policy VARCHAR(255) NOT NULL,
	state VARCHAR(32) NOT NULL,
	reason TEXT NOT NULL,
	rule VARCHAR(255) NOT NULL,
	evidence MEDIUMTEXT NOT NULL,
	opened BIGINT NOT NULL,
	updated BIGINT NOT NULL,
	closed BIGINT NOT NULL,
	epoch BIGINT NOT NULL,
	fault VARCHAR(64) NOT NULL DEFAULT '',
	shard VARCHAR(255) NOT NULL DEFAULT 'all',
	INDEX incidents_closed (closed),
	INDEX incidents_subject (kind, subject, closed),
	INDEX incidents_shard (shard, closed)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE steps (
	id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
	incident BIGINT NOT NULL,
	seq INT NOT NULL,
	action VARCHAR(64) NOT NULL,
	server VARCHAR(255) NOT NULL,
	host VARCHAR(255) NOT NULL,
	target VARCHAR(255) NOT NULL,
	hard BOOLEAN NOT NULL,
	state VARCHAR(32) NOT NULL,
	rule VARCHAR(255) NOT NULL,
	error TEXT NOT NULL,
	retryable BOOLEAN NOT NULL,
	planned BIGINT NOT NULL,
	started BIGINT NOT NULL,
	issued BIGINT NOT NULL,
	finished BIGINT NOT NULL,
	deadline BIGINT NOT NULL,
	timeout BIGINT NOT NULL,
	attempt INT NOT NULL,
	prior INT NOT NULL DEFAULT -1,
	INDEX steps_incident (incident)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE events (
	id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
	at BIGINT NOT NULL,
	kind VARCHAR(64) NOT NULL,
	subject VARCHAR(255) NOT NULL,
	incident BIGINT NOT NULL,
	message TEXT NOT NULL,
	INDEX events_incident (incident),
	INDEX events_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE fence_doubts (host VARCHAR(255) NOT NULL PRIMARY KEY, reason TEXT NOT NULL, since BIGINT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE bmc_identities (host VARCHAR(255) NOT NULL PRIMARY KEY, identity TEXT NOT NULL, since BIGINT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE host_maintenance (host VARCHAR(255) NOT NULL PRIMARY KEY, reason TEXT NOT NULL, since BIGINT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE host_returns (host VARCHAR(255) NOT NULL PRIMARY KEY, at BIGINT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE leases (
	shard VARCHAR(255) NOT NULL PRIMARY KEY,
	holder VARCHAR(255) NOT NULL,
	addr VARCHAR(255) NOT NULL,
	epoch BIGINT NOT NULL,
	version BIGINT NOT NULL,
	ttl BIGINT NOT NULL,
	renewed BIGINT NOT NULL,
	since BIGINT NOT NULL,
	INDEX leases_epoch (epoch)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE replicas (
	id VARCHAR(255) NOT NULL PRIMARY KEY,
	addr VARCHAR(255) NOT NULL,
	host VARCHAR(255) NOT NULL,
	pid INT NOT NULL,
	version BIGINT NOT NULL,
	seen BIGINT NOT NULL,
	started BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE shard_counts (
	shard VARCHAR(255) NOT NULL PRIMARY KEY,
	epoch BIGINT NOT NULL,
	hosts INT NOT NULL,
	failed INT NOT NULL,
	at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
