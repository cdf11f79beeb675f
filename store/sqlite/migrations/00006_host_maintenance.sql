-- 6: hosts an operator put in maintenance (outlives restarts), and when Vigil last
-- forced each host's service up again (host return): a force-down journaled
-- before it is undone.
-- +goose Up
CREATE TABLE host_maintenance (host TEXT PRIMARY KEY, reason TEXT NOT NULL, since INTEGER NOT NULL);
CREATE TABLE host_returns (host TEXT PRIMARY KEY, at INTEGER NOT NULL);
