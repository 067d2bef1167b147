-- Up Migration

-- A report's upload is reserved when the report is acknowledged, before the intake worker claims it:
-- a second report naming the same token is refused at once (not filed silently without its file),
-- and the cleanup of abandoned uploads leaves reserved ones alone while intake catches up.
ALTER TABLE attachments ADD COLUMN reserved_at timestamptz;

-- Down Migration
ALTER TABLE attachments DROP COLUMN reserved_at;
