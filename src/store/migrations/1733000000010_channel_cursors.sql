-- Up Migration

-- Where a pull channel stands in its provider's stream (X: the newest mention filed, and a poll under
-- way; later a mailbox's UIDVALIDITY and last UID, a bot's update offset). Kept in PostgreSQL beside
-- the reports, so a restart resumes where the last stored message left it.
CREATE TABLE channel_cursors (
  channel    text NOT NULL,
  account    text NOT NULL,
  cursor     jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (channel, account)
);

-- Down Migration
DROP TABLE channel_cursors;
