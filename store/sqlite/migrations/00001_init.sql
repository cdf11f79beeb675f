-- 1: clusters, incidents, steps, events and the epoch counter.
-- +goose Up
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
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
);
