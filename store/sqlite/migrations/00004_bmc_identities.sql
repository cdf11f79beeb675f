-- 4: the identity each host's BMC gave when first read, compared with every later read.
-- +goose Up
CREATE TABLE bmc_identities (host TEXT PRIMARY KEY, identity TEXT NOT NULL, since INTEGER NOT NULL);
