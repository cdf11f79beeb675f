-- 5: the kind of failure a server incident answers (model.Fault*): it picks its ladder.
-- +goose Up
ALTER TABLE incidents ADD COLUMN fault TEXT NOT NULL DEFAULT '';
