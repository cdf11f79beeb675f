-- 10 (issue 16): compaction removes events by age: find them without a full scan.
-- +goose Up
CREATE INDEX events_at ON events (at);
