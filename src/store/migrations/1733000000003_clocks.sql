-- Up Migration

-- The regulatory clocks of a report (src/core/calendar.ts), one row per running or paused clock.
-- A clock that was met or stopped is deleted; whether it was met on time is in the event that met
-- it. A breach is recorded once: breached_at is set in the same statement that writes its event.
CREATE TABLE report_clocks (
  report_seq         bigint NOT NULL REFERENCES reports (seq),
  clock              text NOT NULL CHECK (clock IN ('verification', 'follow_up', 'auto_close')),
  -- Whose clock it is: the agency that must follow up (null for the central verification).
  agency_slug        text,
  started_at         timestamptz NOT NULL,
  working_days       integer NOT NULL,
  due_at             timestamptz,
  paused_at          timestamptz,
  remaining_at_pause integer,
  breached_at        timestamptz,
  PRIMARY KEY (report_seq, clock),
  CHECK ((due_at IS NULL) = (paused_at IS NOT NULL))
);
CREATE INDEX report_clocks_due ON report_clocks (due_at) WHERE due_at IS NOT NULL;

CREATE INDEX report_events_type_at ON report_events (type, at);

-- Down Migration
DROP INDEX report_events_type_at;
DROP TABLE report_clocks;
