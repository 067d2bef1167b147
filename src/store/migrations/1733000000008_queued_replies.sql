-- Up Migration

-- Replies waiting to be sent: intake writes them 'queued' in the commit that files the reports and
-- hands them to notify in a job. A reply still queued long after (the job lost with Redis's data) is
-- found by the deadline sweep through this index, which stays as small as the backlog.
CREATE INDEX messages_queued_out ON messages (created_at, id) WHERE direction = 'out' AND status = 'queued';

-- Down Migration
DROP INDEX messages_queued_out;
