-- Up Migration

-- For the statistics per agency (src/store/stats.ts), measured by scripts/bench/stats.ts over a
-- million reports. Index-only scans below rely on VACUUM having marked the pages all-visible, as
-- autovacuum does on a table that only grows.

-- A window of dates is a range of `at`. The table is appended in the order of time, so a BRIN index
-- finds a window's block ranges in a few kilobytes (a B-tree on `at` would take ~150 MB per million
-- reports for the same plans). report_events_type_at (type, at) does not serve: its leading column
-- says nothing of where the rows lie, and the planner reads the whole table for a month instead.
-- autosummarize: a block range is summarized once full, not at the next VACUUM.
CREATE INDEX report_events_at ON report_events USING brin (at) WITH (autosummarize = on);

-- Each verification counts for the agency of the report's first disposition at or after it: one
-- probe per verification, answered from this index alone (the agency is in `data`). Without it, each
-- probe reads all of the report's events from the table: twice as slow over a year.
CREATE INDEX report_events_disposed ON report_events (report_seq, at, id) INCLUDE (data) WHERE type = 'disposed';

-- The verifications of a window, on time and not, without reading the table (which holds them one
-- row in six): ~30 MB per million reports; the statement repeats these predicates word for word.
CREATE INDEX report_events_verified_on_time ON report_events (at) INCLUDE (report_seq)
  WHERE type = 'verified' AND data->'onTime'->'verification' = 'true';
CREATE INDEX report_events_verified_late ON report_events (at) INCLUDE (report_seq)
  WHERE type = 'verified' AND NOT COALESCE(data->'onTime'->'verification' = 'true', false);

-- Down Migration
DROP INDEX report_events_verified_late;
DROP INDEX report_events_verified_on_time;
DROP INDEX report_events_disposed;
DROP INDEX report_events_at;
