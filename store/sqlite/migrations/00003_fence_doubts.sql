-- 3: hosts whose fence device Vigil does not trust, until an operator says so.
-- +goose Up
CREATE TABLE fence_doubts (host TEXT PRIMARY KEY, reason TEXT NOT NULL, since INTEGER NOT NULL);
