-- Up Migration

-- Which outbound message each transport id (an SMSC message id, one per SMS segment) belongs to, for
-- delivery receipts. The GIN index on messages.transport_ids answered one receipt at a time; for a
-- batch of receipts the planner read the whole messages table instead (162 ms for 50 receipts over
-- 20,000 messages), and keeping the GIN index up to date cost every reply's mark. A B-tree on
-- (channel, transport_id) answers a batch with one probe per receipt.
CREATE TABLE outbound_parts (
  channel      text NOT NULL,
  transport_id text NOT NULL,
  message_id   bigint NOT NULL REFERENCES messages (id),
  PRIMARY KEY (channel, transport_id)
);
INSERT INTO outbound_parts (channel, transport_id, message_id)
  SELECT DISTINCT ON (channel, part) channel, part, id
  FROM messages, unnest(transport_ids) AS part
  WHERE direction = 'out'
  ORDER BY channel, part, id DESC;
DROP INDEX messages_transport_ids;

-- Down Migration
CREATE INDEX messages_transport_ids ON messages USING gin (transport_ids);
DROP TABLE outbound_parts;
