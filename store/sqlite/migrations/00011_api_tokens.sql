-- 11: the API's bearer tokens, by the SHA-256 of each (the token itself is never
-- stored); revoked ones stay listed until a new token takes the name.
-- +goose Up
CREATE TABLE api_tokens (name TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, created INTEGER NOT NULL,
	last_used INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0);
