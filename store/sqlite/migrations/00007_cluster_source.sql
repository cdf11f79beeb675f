-- 7: where a cluster's members come from (model.ClusterSource as JSON; '' for a list of IDs).
-- +goose Up
ALTER TABLE clusters ADD COLUMN source TEXT NOT NULL DEFAULT '';
