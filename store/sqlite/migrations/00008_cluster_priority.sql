-- 8 (issue 15): a cluster's restart priority (1-5; 0: its policy's).
-- +goose Up
ALTER TABLE clusters ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
