-- 2: the cloud's count of the step's kind of action before its intent (see model.Step.Prior).
-- +goose Up
ALTER TABLE steps ADD COLUMN prior INTEGER NOT NULL DEFAULT -1;
