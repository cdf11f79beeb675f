-- 2: the API's bearer tokens, by the SHA-256 of each (the token itself is never
-- stored); revoked ones stay listed until a new token takes the name.
-- +goose Up
CREATE TABLE api_tokens (name VARCHAR(255) NOT NULL PRIMARY KEY, hash CHAR(64) NOT NULL UNIQUE, created BIGINT NOT NULL,
	last_used BIGINT NOT NULL DEFAULT 0, revoked BIGINT NOT NULL DEFAULT 0) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
