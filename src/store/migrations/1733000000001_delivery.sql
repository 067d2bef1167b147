-- Up Migration

-- A long SMS reply is several submits, each with its own SMSC message id, and each gets its own
-- delivery receipt: keep every part's id, and each part's last known state.
ALTER TABLE messages ADD COLUMN transport_ids text[] NOT NULL DEFAULT '{}';
ALTER TABLE messages ADD COLUMN delivery jsonb NOT NULL DEFAULT '{}';
CREATE INDEX messages_transport_ids ON messages USING gin (transport_ids);

-- A long SMS whose parts did not all arrive in time is filed anyway, marked so operators know.
ALTER TABLE reports ADD COLUMN incomplete boolean NOT NULL DEFAULT false;

-- Down Migration
ALTER TABLE reports DROP COLUMN incomplete;
DROP INDEX messages_transport_ids;
ALTER TABLE messages DROP COLUMN delivery, DROP COLUMN transport_ids;
